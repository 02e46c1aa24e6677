use std::time::Duration;

use sentra_event_store::{Cursor, RecordedEvent};
use sqlx::Connection;
use tokio::sync::mpsc;

use crate::support::{deposit, env, meta, opened, tenant, wait_visible};

/// Collects everything a subscription delivers, committing after each batch.
fn spawn_reader(
    feed: sentra_event_store::Feed,
) -> (mpsc::UnboundedReceiver<RecordedEvent>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = tokio::spawn(async move {
        let mut subscription = feed.subscribe("reader", 100).await.unwrap();
        loop {
            let batch = subscription.next_batch().await.unwrap();
            for event in batch {
                tx.send(event).unwrap();
            }
            subscription.commit().await.unwrap();
        }
    });
    (rx, handle)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<RecordedEvent>) -> RecordedEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("reader stalled").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_committing_lower_position_is_never_skipped_and_holes_do_not_stall() {
    let env = env().await;
    let tenant = tenant();
    let feed = env.store.feed().with_poll_interval(Duration::from_millis(50));
    let (mut rx, reader) = spawn_reader(feed.clone());

    // A takes the lower position and stays open.
    let mut a = env.pool.acquire().await.unwrap();
    let mut a_tx = a.begin().await.unwrap();
    let a_out =
        env.store.append_in(&mut a_tx, tenant, "Account", "A", 0, vec![opened("a")], &meta(None)).await.unwrap();
    // B takes a higher position and commits first.
    let b_out = env.store.append(tenant, "Account", "B", 0, vec![opened("b")], &meta(None)).await.unwrap();
    assert!(a_out.events[0].position < b_out.events[0].position);

    // While A is open, B must not be delivered (delivering it would move the cursor past A).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(rx.try_recv().is_err(), "reader delivered past an open transaction");

    a_tx.commit().await.unwrap();
    let first = next(&mut rx).await;
    let second = next(&mut rx).await;
    assert_eq!((first.aggregate_id.as_str(), second.aggregate_id.as_str()), ("A", "B"));
    assert!(first.cursor() < second.cursor());

    // A rolled-back transaction leaves a hole in positions; the reader carries on.
    let mut c = env.pool.acquire().await.unwrap();
    let mut c_tx = c.begin().await.unwrap();
    env.store.append_in(&mut c_tx, tenant, "Account", "C", 0, vec![opened("c")], &meta(None)).await.unwrap();
    c_tx.rollback().await.unwrap();
    let d_out = env.store.append(tenant, "Account", "D", 0, vec![opened("d")], &meta(None)).await.unwrap();
    let third = next(&mut rx).await;
    assert_eq!(third.aggregate_id, "D");
    assert_eq!(third.position, d_out.events[0].position);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.try_recv().is_err(), "rolled-back event was delivered");
    reader.abort();

    // The order is stable: a fresh read from the start yields the same sequence.
    let all = feed.read_batch(Cursor::START, 100).await.unwrap();
    let order: Vec<&str> = all.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(order, ["A", "B", "D"]);
    assert_eq!(feed.checkpoint("reader").await.unwrap(), third.cursor());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_writers_are_all_delivered_once_in_feed_order() {
    let env = env().await;
    let tenant = tenant();
    let feed = env.store.feed().with_poll_interval(Duration::from_millis(20));
    let (mut rx, reader) = spawn_reader(feed.clone());
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = env.store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25u64 {
                store.append(tenant, "Account", &format!("w{w}"), i, vec![deposit(1)], &meta(None)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..200 {
        got.push(next(&mut rx).await);
    }
    reader.abort();
    let cursors: Vec<Cursor> = got.iter().map(RecordedEvent::cursor).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "feed order not strictly increasing");
    let mut positions: Vec<i64> = got.iter().map(|e| e.position).collect();
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions.len(), 200);
}

#[tokio::test]
async fn subscription_resumes_from_its_checkpoint() {
    let env = env().await;
    let tenant = tenant();
    for i in 0..5 {
        env.store.append(tenant, "Account", &format!("s{i}"), 0, vec![opened("x")], &meta(None)).await.unwrap();
    }
    wait_visible(&env.store, 5).await;
    let feed = env.store.feed();
    let mut sub = feed.subscribe("relay", 3).await.unwrap();
    let batch = sub.next_batch().await.unwrap();
    assert_eq!(batch.len(), 3);
    sub.commit().await.unwrap();
    let uncommitted = sub.next_batch().await.unwrap();
    assert_eq!(uncommitted.len(), 2);
    drop(sub);

    // Not committed: redelivered after a restart.
    let mut sub = feed.subscribe("relay", 10).await.unwrap();
    let again = sub.next_batch().await.unwrap();
    assert_eq!(again, uncommitted);
    assert_eq!(feed.lag("relay").await.unwrap().events, 2);
    sub.commit().await.unwrap();
    assert_eq!(feed.lag("relay").await.unwrap().events, 0);
    assert!(sub.poll().await.unwrap().is_none());
}

#[tokio::test]
async fn a_follower_from_the_head_sees_only_later_events_and_saves_no_checkpoint() {
    let env = env().await;
    let tenant = tenant();
    for i in 0..3 {
        env.store.append(tenant, "Account", &format!("old{i}"), 0, vec![opened("x")], &meta(None)).await.unwrap();
    }
    wait_visible(&env.store, 3).await;
    let feed = env.store.feed();
    let head = feed.head().await.unwrap();
    assert_eq!(feed.latest().await.unwrap(), head, "nothing in flight: the head is the newest event");
    let mut follower = feed.follow(head, 10).await;
    env.store.append(tenant, "Account", "new", 0, vec![opened("y")], &meta(None)).await.unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(10), follower.next_batch()).await.unwrap().unwrap();
    assert_eq!(batch.iter().map(|e| e.aggregate_id.as_str()).collect::<Vec<_>>(), ["new"]);
    assert!(follower.commit().await.is_err(), "a follower has no checkpoint to save");
    let saved: i64 =
        sqlx::query_scalar("SELECT count(*) FROM subscriber_checkpoints").fetch_one(&env.pool).await.unwrap();
    assert_eq!(saved, 0);
}
