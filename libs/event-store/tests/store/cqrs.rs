use std::collections::HashMap;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateError, CqrsFramework, EventStore as _};
use sentra_event_store::TENANT_METADATA_KEY;

use crate::support::{Account, AccountCommand, env_with, tenant};

#[tokio::test]
async fn cqrs_framework_runs_on_the_store_with_tenant_and_metadata() {
    let env = env_with(|b| b.snapshot_every("Account", 3)).await;
    let tenant = tenant();
    let event_store = PersistedEventStore::<_, Account>::new_snapshot_store(env.store.cqrs_repository(), 3);
    let cqrs = CqrsFramework::new(event_store, vec![], ());
    let metadata = HashMap::from([
        (TENANT_METADATA_KEY.to_owned(), tenant.to_string()),
        ("correlation_id".to_owned(), "c-9".to_owned()),
        ("actor".to_owned(), "svc:sales".to_owned()),
    ]);
    cqrs.execute_with_metadata("acc", AccountCommand::Open { owner: "cq".into() }, metadata.clone()).await.unwrap();
    for amount in [1, 2, 3, 4] {
        cqrs.execute_with_metadata("acc", AccountCommand::Deposit { amount_cents: amount }, metadata.clone())
            .await
            .unwrap();
    }

    // Without a tenant the command fails and nothing is appended.
    let err = cqrs.execute("acc", AccountCommand::Deposit { amount_cents: 100 }).await.unwrap_err();
    assert!(matches!(err, AggregateError::UnexpectedError(_)), "{err:?}");

    let loaded = env.store.load::<Account>(tenant, "acc").await.unwrap();
    assert_eq!((loaded.version, loaded.state.balance_cents), (5, 10));
    // The snapshot was rebuilt by the store at the boundary (3), not taken from cqrs-es.
    let (sequence, deposits): (i64, i64) =
        sqlx::query_as("SELECT sequence, (state->>'deposits')::bigint FROM snapshots")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((sequence, deposits), (3, 2));

    let events = env.store.read_stream(tenant, "Account", "acc").await.unwrap();
    assert!(events.iter().all(|e| e.tenant_id == tenant));
    assert_eq!(events[0].metadata["correlation_id"], "c-9");
    assert!(events[0].metadata.get(TENANT_METADATA_KEY).is_none());

    // cqrs-es reads back through the repository (snapshot + tail) with the tenant in metadata.
    let store = PersistedEventStore::<_, Account>::new_snapshot_store(env.store.cqrs_repository(), 3);
    let context = store.load_aggregate("acc").await.unwrap();
    assert_eq!(context.aggregate.balance_cents, 10);
    assert_eq!(context.current_sequence, 5);
    let envelopes = store.load_events("acc").await.unwrap();
    assert_eq!(envelopes[0].metadata[TENANT_METADATA_KEY], tenant.to_string());

    // A stale context is an optimistic-lock conflict.
    let plain = PersistedEventStore::<_, Account>::new_event_store(env.store.cqrs_repository());
    let stale = plain.load_aggregate("acc").await.unwrap();
    let mut fresh = plain.load_aggregate("acc").await.unwrap();
    let _ = &mut fresh;
    plain
        .commit(
            vec![crate::support::AccountEvent::Deposited { amount_cents: 1, currency: "EUR".into() }],
            fresh,
            metadata.clone(),
        )
        .await
        .unwrap();
    let err = plain
        .commit(
            vec![crate::support::AccountEvent::Deposited { amount_cents: 1, currency: "EUR".into() }],
            stale,
            metadata,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AggregateError::AggregateConflict), "{err:?}");
}
