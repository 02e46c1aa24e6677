use std::time::Duration;

use cqrs_es::persist::SemanticVersionEventUpcaster;
use sentra_event_store::{CommandError, Cursor, EventStoreError};
use serde_json::{Value, json};

use crate::support::{Account, AccountCommand, AccountEvent, env, env_with, meta, opened, tenant, wait_visible};

fn deposited_v1_to_v2() -> SemanticVersionEventUpcaster {
    SemanticVersionEventUpcaster::new(
        "Deposited",
        "2",
        Box::new(|payload: Value| {
            let euros = payload["Deposited"]["amount"].as_i64().unwrap_or(0);
            json!({ "Deposited": { "amount_cents": euros * 100, "currency": "EUR" } })
        }),
    )
}

#[tokio::test]
async fn v1_payload_is_upcast_to_v2_on_every_read() {
    let env = env_with(|b| b.upcaster(deposited_v1_to_v2())).await;
    let tenant = tenant();
    env.store.append(tenant, "Account", "acc", 0, vec![opened("ann")], &meta(None)).await.unwrap();
    // An event written by an older release, in the v1 shape.
    sqlx::query(
        "INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, event_id) \
         VALUES ($1, 'Account', 'acc', 2, 'Deposited', '1', '{\"Deposited\": {\"amount\": 5}}', gen_random_uuid())",
    )
    .bind(tenant)
    .execute(&env.pool)
    .await
    .unwrap();
    env.store
        .execute::<Account>(tenant, "acc", AccountCommand::Deposit { amount_cents: 250 }, &(), &meta(None))
        .await
        .unwrap();

    let loaded = env.store.load::<Account>(tenant, "acc").await.unwrap();
    assert_eq!(loaded.version, 3);
    assert_eq!(loaded.state.balance_cents, 750);
    assert_eq!(loaded.state.deposits, 2);

    wait_visible(&env.store, 3).await;
    let feed = env.store.feed().read_batch(Cursor::START, 10).await.unwrap();
    assert_eq!(feed[1].event_version, "2.0.0");
    assert_eq!(
        feed[1].decode::<AccountEvent>().unwrap(),
        AccountEvent::Deposited { amount_cents: 500, currency: "EUR".into() }
    );

    // Without the upcaster the old payload does not fit the current type.
    let plain = sentra_event_store::EventStore::new(env.pool.clone());
    assert!(matches!(plain.load::<Account>(tenant, "acc").await, Err(EventStoreError::Serialization(_))));
}

#[tokio::test]
async fn snapshot_plus_tail_and_fallback_when_snapshot_is_corrupt() {
    let env = env_with(|b| b.snapshot_every("Account", 5)).await;
    let tenant = tenant();
    env.store
        .execute::<Account>(tenant, "acc", AccountCommand::Open { owner: "zoe".into() }, &(), &meta(None))
        .await
        .unwrap();
    for i in 1..=11 {
        env.store
            .execute::<Account>(tenant, "acc", AccountCommand::Deposit { amount_cents: i }, &(), &meta(None))
            .await
            .unwrap();
    }
    let expected = Account { opened: true, owner: "zoe".into(), balance_cents: 66, deposits: 11 };
    let (sequence, state): (i64, Value) =
        sqlx::query_as("SELECT sequence, state FROM snapshots WHERE aggregate_id = 'acc'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(sequence, 10);
    assert_eq!(state["deposits"], 9);

    let loaded = env.store.load::<Account>(tenant, "acc").await.unwrap();
    assert_eq!(loaded.snapshot_version, Some(10));
    assert_eq!((loaded.version, &loaded.state), (12, &expected));

    // A snapshot that says something different proves the load uses it...
    sqlx::query("UPDATE snapshots SET state = jsonb_set(state, '{owner}', '\"snap\"')")
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(env.store.load::<Account>(tenant, "acc").await.unwrap().state.owner, "snap");

    // ...and one that no longer deserializes is ignored: full replay, same state.
    sqlx::query("UPDATE snapshots SET state = '{\"balance_cents\": \"not a number\"}'")
        .execute(&env.pool)
        .await
        .unwrap();
    let loaded = env.store.load::<Account>(tenant, "acc").await.unwrap();
    assert_eq!(loaded.snapshot_version, None);
    assert_eq!((loaded.version, &loaded.state), (12, &expected));
}

#[tokio::test]
async fn time_travel_by_sequence_and_by_time() {
    let env = env_with(|b| b.snapshot_every("Account", 2)).await;
    let tenant = tenant();
    env.store
        .execute::<Account>(tenant, "acc", AccountCommand::Open { owner: "tim".into() }, &(), &meta(None))
        .await
        .unwrap();
    for amount in [10, 20] {
        env.store
            .execute::<Account>(tenant, "acc", AccountCommand::Deposit { amount_cents: amount }, &(), &meta(None))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for amount in [30, 40] {
        env.store
            .execute::<Account>(tenant, "acc", AccountCommand::Deposit { amount_cents: amount }, &(), &meta(None))
            .await
            .unwrap();
    }

    let at2 = env.store.load_as_of_sequence::<Account>(tenant, "acc", 2).await.unwrap();
    assert_eq!((at2.version, at2.state.balance_cents), (2, 10));
    let at4 = env.store.load_as_of_sequence::<Account>(tenant, "acc", 4).await.unwrap();
    assert_eq!((at4.version, at4.state.balance_cents), (4, 60));
    assert_eq!(at4.snapshot_version, Some(4));
    let at_time = env.store.load_as_of_time::<Account>(tenant, "acc", between).await.unwrap();
    assert_eq!((at_time.version, at_time.state.balance_cents), (3, 30));
    let before =
        env.store.load_as_of_time::<Account>(tenant, "acc", between - chrono::Duration::hours(1)).await.unwrap();
    assert!(before.is_new());
    let now = env.store.load::<Account>(tenant, "acc").await.unwrap();
    assert_eq!((now.version, now.state.balance_cents), (5, 100));
}

/// Writes one event with a chosen `recorded_at` (hours from `base`), as an older release or a
/// slow transaction would have.
async fn recorded(
    pool: &sqlx::PgPool,
    tenant: uuid::Uuid,
    (kind, id, sequence): (&str, &str, i64),
    (event_type, version, payload): (&str, &str, Value),
    at: chrono::DateTime<chrono::Utc>,
) {
    sqlx::query(
        "INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, event_id, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, gen_random_uuid(), $8)",
    )
    .bind(tenant)
    .bind(kind)
    .bind(id)
    .bind(sequence)
    .bind(event_type)
    .bind(version)
    .bind(payload)
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn every_stream_of_a_type_as_of_a_time_is_one_tenants_cut_like_a_single_load() {
    let env = env_with(|b| b.upcaster(deposited_v1_to_v2())).await;
    let (tenant, other_tenant) = (tenant(), tenant());
    let as_of = chrono::Utc::now();
    let h = |hours: i64| as_of + chrono::Duration::hours(hours);
    let opened = |owner: &str| ("Opened", "1", json!({ "Opened": { "owner": owner } }));
    let deposited =
        |cents: i64| ("Deposited", "2", json!({ "Deposited": { "amount_cents": cents, "currency": "EUR" } }));
    let pool = &env.pool;
    recorded(pool, tenant, ("Account", "a1", 1), opened("ann"), h(-3)).await;
    // Written by an older release: read upcast.
    recorded(pool, tenant, ("Account", "a1", 2), ("Deposited", "1", json!({ "Deposited": { "amount": 5 } })), h(-2))
        .await;
    recorded(pool, tenant, ("Account", "a1", 3), deposited(100), h(1)).await;
    // Recorded "before" as_of but after an event that was not: history is a prefix, so it is out.
    recorded(pool, tenant, ("Account", "a1", 4), deposited(7), h(-1)).await;
    recorded(pool, tenant, ("Account", "a2", 1), opened("bob"), h(1)).await;
    recorded(pool, tenant, ("Account", "a3", 1), opened("cy"), h(-1)).await;
    recorded(pool, tenant, ("Other", "o1", 1), opened("not an account"), h(-1)).await;
    recorded(pool, other_tenant, ("Account", "b1", 1), opened("another tenant's"), h(-1)).await;

    let events = env.store.read_type_as_of(tenant, "Account", as_of).await.unwrap();
    let seen: Vec<(&str, u64)> = events.iter().map(|e| (e.aggregate_id.as_str(), e.sequence)).collect();
    assert_eq!(seen, [("a1", 1), ("a1", 2), ("a3", 1)]);
    assert_eq!(
        events[1].decode::<AccountEvent>().unwrap(),
        AccountEvent::Deposited { amount_cents: 500, currency: "EUR".into() }
    );
    let single = env.store.load_as_of_time::<Account>(tenant, "a1", as_of).await.unwrap();
    assert_eq!((single.version, single.state.balance_cents), (2, 500), "a single load agrees");
    assert!(env.store.read_type_as_of(other_tenant, "Account", h(-4)).await.unwrap().is_empty());
}

#[tokio::test]
async fn execute_reports_rejections_and_conflicts_typed() {
    let env = env().await;
    let tenant = tenant();
    let err = env
        .store
        .execute::<Account>(tenant, "acc", AccountCommand::Deposit { amount_cents: 1 }, &(), &meta(None))
        .await
        .unwrap_err();
    assert!(matches!(err, CommandError::Rejected(_)));
    let mut stale = env.store.load::<Account>(tenant, "acc").await.unwrap();
    env.store
        .execute::<Account>(tenant, "acc", AccountCommand::Open { owner: "o".into() }, &(), &meta(None))
        .await
        .unwrap();
    let err =
        env.store.commit(&mut stale, vec![AccountEvent::Opened { owner: "p".into() }], &meta(None)).await.unwrap_err();
    assert!(matches!(err, EventStoreError::Conflict { expected: 0, actual: 1 }));
}
