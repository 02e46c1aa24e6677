use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lapin::options::{BasicGetOptions, BasicNackOptions};
use lapin::{Connection, ConnectionProperties};
use sentra_bus::{Consumer, ConsumerConfig, header_str, header_u32, headers};
use sentra_testkit::amqp_url;

use crate::support::{
    Recorder, count, env, envelope, proto_envelope, publish_bytes, publish_raw, stop, stop_signal, wait_until,
};

type Running = (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<sentra_bus::Result<()>>);

fn spawn(consumer: &Arc<Consumer<Recorder>>) -> Running {
    let (tx, signal) = stop_signal();
    let consumer = consumer.clone();
    (tx, tokio::spawn(async move { consumer.run(signal).await }))
}

#[tokio::test]
async fn a_duplicate_delivery_has_one_effect() {
    let env = env().await;
    let recorder = Recorder::default();
    let config = ConsumerConfig::new(env.broker.clone(), "finance", "sales-orders", ["sales.order.*"]);
    assert_eq!(config.queue_name(), format!("{}finance.sales-orders", env.broker.prefix));
    let consumer = Arc::new(Consumer::new(config, env.pool.clone(), recorder.clone()));
    consumer.declare().await.unwrap();

    let duplicate = proto_envelope("sales.order.confirmed", "o-1", 1);
    let marker = envelope("sales.order.shipped", "o-1", 2);
    let unrelated = envelope("sales.lead.created", "l-1", 1);
    publish_raw(&env.broker, &duplicate).await;
    publish_raw(&env.broker, &duplicate).await;
    publish_raw(&env.broker, &unrelated).await;
    publish_raw(&env.broker, &marker).await;

    let (tx, task) = spawn(&consumer);
    // Deliveries are handled in order, so once the marker is in, both copies were handled.
    let pool = env.pool.clone();
    let marker_id = marker.event_id;
    wait_until("the marker to be processed", || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM effects WHERE message_id = $1")
                .bind(marker_id)
                .fetch_one(&pool)
                .await
                .unwrap()
                == 1
        }
    })
    .await;
    assert!(consumer.is_connected());
    stop(tx, task).await;

    let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM effects WHERE message_id = $1")
        .bind(duplicate.event_id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(effects, 1, "the duplicate must have one effect");
    let inbox: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = 'finance.sales-orders' AND message_id = $1")
            .bind(duplicate.event_id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(inbox, 1);
    assert_eq!(count(&env.pool, "SELECT count(*) FROM effects").await, 2, "the unbound lead event is not consumed");
    assert_eq!(count(&env.pool, "SELECT count(*) FROM inbox").await, 2);
    // The handler never even ran for the second copy.
    assert_eq!(recorder.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_failing_message_is_retried_then_dead_lettered_and_replayed() {
    let env = env().await;
    let recorder = Recorder::default();
    recorder.failing.store(true, Ordering::SeqCst);
    let config = ConsumerConfig::new(env.broker.clone(), "finance", "orders", ["sales.order.#"])
        .with_max_attempts(3)
        .with_retry_delay(Duration::from_millis(100), Duration::from_millis(300));
    let consumer = Arc::new(Consumer::new(config.clone(), env.pool.clone(), recorder.clone()));
    let (tx, task) = spawn(&consumer);
    wait_until("the consumer to connect", || async { consumer.is_connected() }).await;

    // A protobuf message: its envelope lives in headers, which every hop between queues keeps.
    let message = proto_envelope("sales.order.confirmed", "o-1", 1);
    publish_raw(&env.broker, &message).await;
    wait_until("the message to be dead-lettered", || async { consumer.dead_letter_count().await.unwrap() == 1 }).await;
    assert_eq!(recorder.calls.load(Ordering::SeqCst), 3, "three attempts, then the dead-letter queue");
    // Every failed attempt rolled back: no effect, no inbox row.
    assert_eq!(count(&env.pool, "SELECT count(*) FROM effects").await, 0);
    assert_eq!(count(&env.pool, "SELECT count(*) FROM inbox").await, 0);

    // The dead letter carries its story.
    {
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let dead = channel
            .basic_get(config.dead_letter_queue_name().as_str().into(), BasicGetOptions { no_ack: false })
            .await
            .unwrap()
            .expect("a dead letter");
        let properties = &dead.delivery.properties;
        assert_eq!(header_u32(properties, headers::ATTEMPTS), Some(3));
        assert!(header_str(properties, headers::ERROR).unwrap().contains("boom"));
        assert!(header_str(properties, headers::DEAD_LETTERED_AT).is_some());
        assert_eq!(properties.message_id().as_ref().unwrap().as_str(), message.event_id.to_string());
        assert_eq!(header_str(properties, headers::TENANT_ID).unwrap(), message.tenant_id.to_string());
        dead.delivery.acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.unwrap();
        connection.close(200, "done".into()).await.unwrap();
    }
    // Nothing further happens to it while it sits there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(recorder.calls.load(Ordering::SeqCst), 3);

    // The downstream recovers; replaying processes it once.
    recorder.failing.store(false, Ordering::SeqCst);
    assert_eq!(consumer.replay_dead_letters(10).await.unwrap(), 1);
    let pool = env.pool.clone();
    wait_until("the replayed message to be processed", || {
        let pool = pool.clone();
        async move { count(&pool, "SELECT count(*) FROM effects").await == 1 }
    })
    .await;
    assert_eq!(consumer.dead_letter_count().await.unwrap(), 0);
    assert_eq!(consumer.replay_dead_letters(10).await.unwrap(), 0);
    let processed: uuid::Uuid = sqlx::query_scalar("SELECT message_id FROM inbox").fetch_one(&env.pool).await.unwrap();
    assert_eq!(processed, message.event_id);
    assert_eq!(recorder.calls.load(Ordering::SeqCst), 4);
    stop(tx, task).await;
}

#[tokio::test]
async fn an_undecodable_body_is_dead_lettered_at_once() {
    let env = env().await;
    let recorder = Recorder::default();
    let config = ConsumerConfig::new(env.broker.clone(), "finance", "junk", ["sales.#"]);
    let consumer = Arc::new(Consumer::new(config, env.pool.clone(), recorder.clone()));
    consumer.declare().await.unwrap();
    publish_bytes(&env.broker, "sales.order.created", b"not json").await;
    let good = envelope("sales.order.created", "o-1", 1);
    publish_raw(&env.broker, &good).await;
    let (tx, task) = spawn(&consumer);
    let pool = env.pool.clone();
    wait_until("the good message", || {
        let pool = pool.clone();
        async move { count(&pool, "SELECT count(*) FROM effects").await == 1 }
    })
    .await;
    assert_eq!(consumer.dead_letter_count().await.unwrap(), 1);
    assert_eq!(recorder.calls.load(Ordering::SeqCst), 1, "the handler never sees the junk");
    stop(tx, task).await;
}
