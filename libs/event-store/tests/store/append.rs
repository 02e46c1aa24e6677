use std::collections::HashSet;
use std::sync::Arc;

use sentra_event_store::{EventStoreError, NewEvent, parse_tenant};
use serde_json::json;
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::support::{deposit, env, meta, opened, tenant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_racing_writers_conflict_and_stay_contiguous() {
    let env = env().await;
    let tenant = tenant();
    env.store.append(tenant, "Account", "acc-1", 0, vec![opened("alice")], &meta(None)).await.unwrap();

    // Round 1: everyone decides on version 1 at once: exactly one wins.
    let barrier = Arc::new(Barrier::new(32));
    let mut tasks = Vec::new();
    for task in 0..32i64 {
        let store = env.store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.append(tenant, "Account", "acc-1", 1, vec![deposit(task), deposit(task)], &meta(None)).await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(outcome) => {
                wins += 1;
                assert_eq!(outcome.version, 3);
            }
            Err(EventStoreError::Conflict { expected, actual }) => {
                assert_eq!(expected, 1);
                assert!(actual >= 1, "actual version {actual}");
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(wins, 1);

    // Round 2: every task retries until it gets in; each appends 3 events tagged with its id.
    let mut tasks = Vec::new();
    for task in 0..32i64 {
        let store = env.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u32;
            loop {
                let version = store.read_stream(tenant, "Account", "acc-1").await.unwrap().len() as u64;
                let events = (0..3).map(|_| deposit(1000 + task)).collect::<Vec<_>>();
                match store.append(tenant, "Account", "acc-1", version, events, &meta(None)).await {
                    Ok(_) => return conflicts,
                    Err(EventStoreError::Conflict { .. }) => conflicts += 1,
                    Err(other) => panic!("unexpected error {other:?}"),
                }
            }
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    assert!(conflicts > 0, "32 racing writers produced no conflict");

    let events = env.store.read_stream(tenant, "Account", "acc-1").await.unwrap();
    assert_eq!(events.len(), 1 + 2 + 32 * 3);
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=events.len() as u64).collect::<Vec<_>>());
    let ids: HashSet<Uuid> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), events.len());
    // Each winner's three events are contiguous, and each task appears exactly once.
    let round2 = &events[3..];
    let mut seen = HashSet::new();
    for chunk in round2.chunks(3) {
        let amount = chunk[0].payload["Deposited"]["amount_cents"].as_i64().unwrap();
        assert!(chunk.iter().all(|e| e.payload["Deposited"]["amount_cents"].as_i64() == Some(amount)));
        assert!(seen.insert(amount), "task {amount} appended twice");
    }
    assert_eq!(seen.len(), 32);
}

#[tokio::test]
async fn retried_request_appends_once_and_succeeds() {
    let env = env().await;
    let tenant = tenant();
    let first = env
        .store
        .append(tenant, "Account", "acc-1", 0, vec![opened("bob"), deposit(5)], &meta(Some("req-1")))
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert_eq!(first.version, 2);

    // Same request again, re-decided with fresh event ids and the same expected version.
    let again = env
        .store
        .append(tenant, "Account", "acc-1", 0, vec![opened("bob"), deposit(5)], &meta(Some("req-1")))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.events, first.events);

    // Same request decided on the new version (the client reloaded): still the first result.
    let reloaded =
        env.store.append(tenant, "Account", "acc-1", 2, vec![deposit(5)], &meta(Some("req-1"))).await.unwrap();
    assert!(reloaded.duplicate);
    assert_eq!(reloaded.events, first.events);

    // Retrying with the same event ids and no request id is also recognised.
    let event = deposit(7);
    let third = env.store.append(tenant, "Account", "acc-1", 2, vec![event.clone()], &meta(None)).await.unwrap();
    let third_again = env.store.append(tenant, "Account", "acc-1", 2, vec![event], &meta(None)).await.unwrap();
    assert!(third_again.duplicate);
    assert_eq!(third_again.events, third.events);

    let events = env.store.read_stream(tenant, "Account", "acc-1").await.unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(env.store.find_request(tenant, "req-1").await.unwrap().unwrap().events, first.events);
    assert!(env.store.find_request(tenant, "req-unknown").await.unwrap().is_none());

    // Metadata landed as a flat object.
    let metadata = events[0].typed_metadata().unwrap();
    assert_eq!(metadata, meta(Some("req-1")));
    assert_eq!(events[0].tenant_id, tenant);
}

#[tokio::test]
async fn stale_expected_version_is_a_conflict_with_the_actual_version() {
    let env = env().await;
    let tenant = tenant();
    env.store.append(tenant, "Account", "a", 0, vec![opened("x"), deposit(1)], &meta(None)).await.unwrap();
    let err = env.store.append(tenant, "Account", "a", 1, vec![deposit(1)], &meta(None)).await.unwrap_err();
    assert!(matches!(err, EventStoreError::Conflict { expected: 1, actual: 2 }), "{err:?}");
    let err = env.store.append(tenant, "Account", "a", 5, vec![deposit(1)], &meta(None)).await.unwrap_err();
    assert!(matches!(err, EventStoreError::Conflict { expected: 5, actual: 2 }), "{err:?}");
    assert_eq!(env.store.read_stream(tenant, "Account", "a").await.unwrap().len(), 2);
    // The message is safe to show: no database text.
    assert_eq!(err.to_string(), "aggregate changed concurrently (expected version 5)");
}

#[tokio::test]
async fn tenant_id_is_required_and_enforced() {
    let env = env().await;
    let err = env.store.append(Uuid::nil(), "Account", "a", 0, vec![opened("x")], &meta(None)).await.unwrap_err();
    assert!(matches!(err, EventStoreError::MissingTenant));
    assert!(matches!(parse_tenant(""), Err(EventStoreError::MissingTenant)));
    assert!(matches!(parse_tenant("00000000-0000-0000-0000-000000000000"), Err(EventStoreError::MissingTenant)));
    assert!(matches!(
        env.store.load::<crate::support::Account>(Uuid::nil(), "a").await,
        Err(EventStoreError::MissingTenant)
    ));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&env.pool).await.unwrap();
    assert_eq!(count, 0);

    // The schema refuses a nil tenant too.
    let raw = sqlx::query(
        "INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, event_id) \
         VALUES ('00000000-0000-0000-0000-000000000000', 'Account', 'a', 1, 'Opened', '1', '{}', gen_random_uuid())",
    )
    .execute(&env.pool)
    .await;
    assert!(raw.is_err());

    // An aggregate stays with its tenant.
    let owner = tenant();
    env.store.append(owner, "Account", "a", 0, vec![opened("x")], &meta(None)).await.unwrap();
    let other = tenant();
    let err = env.store.append(other, "Account", "a", 1, vec![deposit(1)], &meta(None)).await.unwrap_err();
    assert!(matches!(err, EventStoreError::TenantMismatch), "{err:?}");
    assert!(matches!(
        env.store.load::<crate::support::Account>(other, "a").await,
        Err(EventStoreError::TenantMismatch)
    ));
    let _ = NewEvent::new("Opened", "1", json!({}));
}

/// Concurrent appends are written together (write combining), yet every command gets the outcome
/// it would get alone: new aggregates succeed, stale versions conflict, a retried command is a
/// duplicate, a foreign tenant's aggregate is refused, and nobody else's events are lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn combined_appends_keep_each_commands_own_outcome() {
    let env = env().await;
    let (tenant, foreign) = (tenant(), tenant());
    env.store.append(tenant, "Account", "stale", 0, vec![opened("s"), deposit(1)], &meta(None)).await.unwrap();
    let retried = opened("d");
    env.store.append(tenant, "Account", "dup", 0, vec![retried.clone()], &meta(None)).await.unwrap();
    env.store.append(foreign, "Account", "foreign", 0, vec![opened("f")], &meta(None)).await.unwrap();

    #[derive(Debug)]
    enum Expect {
        New,
        Stale,
        Duplicate,
        Foreign,
    }
    let mut plan: Vec<Expect> = (0..40).map(|_| Expect::New).collect();
    plan.extend((0..4).map(|_| Expect::Stale));
    plan.extend((0..2).map(|_| Expect::Duplicate));
    plan.extend((0..2).map(|_| Expect::Foreign));
    let barrier = Arc::new(Barrier::new(plan.len()));
    let mut tasks = Vec::new();
    for (i, expect) in plan.into_iter().enumerate() {
        let (store, barrier, retried) = (env.store.clone(), barrier.clone(), retried.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let result = match expect {
                Expect::New => {
                    store
                        .append(
                            tenant,
                            "Account",
                            &format!("new-{i}"),
                            0,
                            vec![opened("n"), deposit(i as i64)],
                            &meta(None),
                        )
                        .await
                }
                Expect::Stale => store.append(tenant, "Account", "stale", 1, vec![deposit(7)], &meta(None)).await,
                Expect::Duplicate => store.append(tenant, "Account", "dup", 0, vec![retried], &meta(None)).await,
                Expect::Foreign => store.append(tenant, "Account", "foreign", 1, vec![deposit(7)], &meta(None)).await,
            };
            (expect, result)
        }));
    }
    for task in tasks {
        match task.await.unwrap() {
            (Expect::New, Ok(outcome)) => {
                assert_eq!((outcome.version, outcome.duplicate), (2, false));
                assert!(outcome.events[0].position < outcome.events[1].position, "{outcome:?}");
            }
            (Expect::Stale, Err(EventStoreError::Conflict { expected: 1, actual: 2 })) => {}
            (Expect::Duplicate, Ok(outcome)) => assert!(outcome.duplicate && outcome.version == 1, "{outcome:?}"),
            (Expect::Foreign, Err(EventStoreError::TenantMismatch)) => {}
            (expect, result) => panic!("{expect:?} got {result:?}"),
        }
    }

    let (rows, transactions): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT transaction_id::text) FROM events WHERE aggregate_id LIKE 'new-%'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(rows, 80);
    assert!(transactions < 40, "40 concurrent commands were never written together ({transactions} transactions)");
    for (id, length) in [("stale", 2), ("dup", 1)] {
        assert_eq!(env.store.read_stream(tenant, "Account", id).await.unwrap().len(), length, "{id}");
    }
    assert_eq!(env.store.read_stream(foreign, "Account", "foreign").await.unwrap().len(), 1);
    for i in 0..40 {
        let events = env.store.read_stream(tenant, "Account", &format!("new-{i}")).await.unwrap();
        assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(events[1].payload["Deposited"]["amount_cents"], json!(i));
    }

    // A command reusing another aggregate's event id fails the shared statement as a whole; it
    // alone is refused, everybody written with it is retried and written.
    let barrier = Arc::new(Barrier::new(22));
    let mut tasks = Vec::new();
    for i in 0..22 {
        let (store, barrier, retried) = (env.store.clone(), barrier.clone(), retried.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let events = if i < 2 { vec![retried] } else { vec![opened("w")] };
            (i, store.append(tenant, "Account", &format!("wave2-{i}"), 0, events, &meta(None)).await)
        }));
    }
    for task in tasks {
        match task.await.unwrap() {
            (i, result) if i < 2 => assert!(result.is_err(), "reused event id accepted: {result:?}"),
            (i, result) => assert_eq!(result.unwrap().version, 1, "wave2-{i}"),
        }
    }
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id LIKE 'wave2-%'")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(written, 20);
}
