use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sentra_event_store::{EventStoreError, Projection, ProjectionRunner, RecordedEvent};
use sqlx::{PgConnection, PgPool};

use crate::support::{AccountEvent, deposit, env, meta, opened, tenant, wait_visible};

#[derive(Clone, Copy)]
enum Fail {
    Never,
    ErrorAt(usize),
    PanicAt(usize),
}

/// Balance per account; the update is additive, so applying an event twice shows.
pub struct Balances {
    name: &'static str,
    table: &'static str,
    fail: Fail,
    applied: Arc<AtomicUsize>,
    /// Version 2 of the logic counts in tenths of a cent (amounts times 10).
    version: i32,
}

impl Balances {
    fn new(name: &'static str, table: &'static str, fail: Fail) -> Self {
        Self { name, table, fail, applied: Arc::new(AtomicUsize::new(0)), version: 1 }
    }

    fn version_2(mut self) -> Self {
        self.version = 2;
        self
    }
}

#[sentra_event_store::async_trait]
impl Projection for Balances {
    fn name(&self) -> &str {
        self.name
    }

    fn table(&self) -> &str {
        self.table
    }

    fn version(&self) -> i32 {
        self.version
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        table: &str,
        event: &RecordedEvent,
    ) -> sentra_event_store::Result<()> {
        let n = self.applied.fetch_add(1, Ordering::SeqCst) + 1;
        match self.fail {
            Fail::ErrorAt(at) if n == at => {
                return Err(EventStoreError::Projection("injected failure".into()));
            }
            Fail::PanicAt(at) if n == at => panic!("injected crash"),
            _ => {}
        }
        let amount = match event.decode::<AccountEvent>()? {
            AccountEvent::Opened { .. } => 0,
            AccountEvent::Deposited { amount_cents, .. } => amount_cents,
        } * if self.version == 2 { 10 } else { 1 };
        sqlx::query(&format!(
            "INSERT INTO {table} AS t (account_id, balance_cents, events, last_position) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (account_id) DO UPDATE SET balance_cents = t.balance_cents + excluded.balance_cents, \
             events = t.events + 1, last_position = excluded.last_position"
        ))
        .bind(&event.aggregate_id)
        .bind(amount)
        .bind(event.position)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

async fn dump(pool: &PgPool, table: &str) -> Vec<(String, i64, i64, i64)> {
    sqlx::query_as(&format!("SELECT account_id, balance_cents, events, last_position FROM {table} ORDER BY account_id"))
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn seed(store: &sentra_event_store::EventStore, prefix: &str, accounts: usize, deposits: u64) {
    let tenant = tenant();
    for a in 0..accounts {
        store.append(tenant, "Account", &format!("{prefix}{a}"), 0, vec![opened("o")], &meta(None)).await.unwrap();
    }
    for d in 0..deposits {
        for a in 0..accounts {
            store
                .append(
                    tenant,
                    "Account",
                    &format!("{prefix}{a}"),
                    d + 1,
                    vec![deposit((a as i64 + 1) * 100 + d as i64)],
                    &meta(None),
                )
                .await
                .unwrap();
        }
    }
}

/// The read tables, as a service's migration would create them.
async fn migrate(env: &crate::support::Env) {
    for table in ["balances", "balances_ref"] {
        let ddl = format!(
            "CREATE TABLE {table} (account_id text PRIMARY KEY, balance_cents bigint NOT NULL, \
             events bigint NOT NULL, last_position bigint NOT NULL); \
             CREATE INDEX {table}_balance_cents_idx ON {table} (balance_cents);"
        );
        sqlx::raw_sql(&ddl).execute(&env.pool).await.unwrap();
    }
}

async fn reference(store: &sentra_event_store::EventStore) -> Vec<(String, i64, i64, i64)> {
    let runner = ProjectionRunner::new(store, Balances::new("ref", "balances_ref", Fail::Never));
    let mut active = runner.try_activate().await.unwrap().unwrap();
    active.catch_up().await.unwrap();
    active.release().await.unwrap();
    dump(store.pool(), "balances_ref").await
}

async fn activate_eventually(
    runner: &ProjectionRunner<Balances>,
) -> sentra_event_store::ActiveProjection<'_, Balances> {
    for _ in 0..100 {
        if let Some(active) = runner.try_activate().await.unwrap() {
            return active;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("projection lock never released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_apply_and_checkpoint_then_restart_matches_uninterrupted() {
    let env = env().await;
    migrate(&env).await;
    seed(&env.store, "acc", 6, 9).await; // 60 events
    wait_visible(&env.store, 60).await;
    let expected = reference(&env.store).await;
    assert_eq!(expected.len(), 6);

    // Fails on the 23rd event: the third batch (21..30) rolls back as a whole.
    let failing =
        ProjectionRunner::new(&env.store, Balances::new("bal", "balances", Fail::ErrorAt(23))).with_batch_size(10);
    let mut active = failing.try_activate().await.unwrap().unwrap();
    assert!(active.catch_up().await.is_err());
    let events_applied: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(events), 0)::bigint FROM balances").fetch_one(&env.pool).await.unwrap();
    assert_eq!(events_applied, 20);
    assert_eq!(failing.lag().await.unwrap().events, 40);
    drop(active);

    // Crashes (panics) mid-batch in another task; the transaction is dropped with it.
    let store = env.store.clone();
    let crashed = tokio::spawn(async move {
        let runner =
            ProjectionRunner::new(&store, Balances::new("bal", "balances", Fail::PanicAt(15))).with_batch_size(10);
        let mut active = activate_eventually(&runner).await;
        active.catch_up().await
    })
    .await;
    assert!(crashed.unwrap_err().is_panic());
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT sum(events)::bigint FROM balances").fetch_one(&env.pool).await.unwrap(),
        30
    );

    let healthy = ProjectionRunner::new(&env.store, Balances::new("bal", "balances", Fail::Never)).with_batch_size(10);
    let mut active = activate_eventually(&healthy).await;
    assert_eq!(active.catch_up().await.unwrap(), 30);
    assert_eq!(dump(&env.pool, "balances").await, expected);
    assert_eq!(healthy.lag().await.unwrap().events, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_equals_live_and_swaps_atomically() {
    let env = env().await;
    migrate(&env).await;
    seed(&env.store, "acc", 4, 10).await;
    wait_visible(&env.store, 44).await;
    let runner = ProjectionRunner::new(&env.store, Balances::new("bal", "balances", Fail::Never)).with_batch_size(7);
    let mut active = runner.try_activate().await.unwrap().unwrap();
    active.catch_up().await.unwrap();
    let live = dump(&env.pool, "balances").await;
    let cursor = active.cursor();

    assert_eq!(active.rebuild().await.unwrap(), 44);
    assert_eq!(dump(&env.pool, "balances").await, live);
    assert_eq!(env.store.feed().checkpoint("bal").await.unwrap(), cursor);
    let leftover: bool =
        sqlx::query_scalar("SELECT to_regclass('balances_rebuild') IS NOT NULL").fetch_one(&env.pool).await.unwrap();
    assert!(!leftover);

    // Live processing continues on the swapped table, and a second rebuild still works.
    seed(&env.store, "more", 2, 3).await;
    wait_visible(&env.store, 52).await;
    assert_eq!(active.catch_up().await.unwrap(), 8);
    let live = dump(&env.pool, "balances").await;
    assert_eq!(live, reference(&env.store).await);
    active.rebuild().await.unwrap();
    assert_eq!(dump(&env.pool, "balances").await, live);
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'balances' AND schemaname = 'svc' ORDER BY 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(indexes.iter().all(|name| name.starts_with("balances_") && !name.contains("rebuild")), "{indexes:?}");
}

/// Runs `runner` until the returned sender fires.
fn run_in_background(
    runner: Arc<ProjectionRunner<Balances>>,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        runner
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (stop, task)
}

/// Waits until projection `name` is at `version`, not rebuilding, and caught up.
async fn wait_settled(env: &crate::support::Env, name: &str, version: i32) {
    for _ in 0..400 {
        let subscribers = env.store.feed().subscribers().await.unwrap();
        if subscribers
            .iter()
            .any(|s| s.name == name && s.version == version && s.rebuilding.is_none() && s.lag.events == 0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{name} never settled at version {version}: {:?}", env.store.feed().subscribers().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_rebuilds_in_the_background_and_swaps_in_with_every_event() {
    let env = env().await;
    migrate(&env).await;
    seed(&env.store, "acc", 4, 10).await;
    wait_visible(&env.store, 44).await;
    let fast = Duration::from_millis(20);
    let v1 = Arc::new(
        ProjectionRunner::new(&env.store, Balances::new("bal", "balances", Fail::Never)).with_poll_interval(fast),
    );
    let (stop, task) = run_in_background(v1);
    wait_settled(&env, "bal", 1).await;
    stop.send(()).unwrap();
    task.await.unwrap();
    let v1_rows = dump(&env.pool, "balances").await;

    // A release raises the version: the new instance rebuilds in small steps while events keep
    // coming, then swaps; every event, old and new, is in the new table once, computed the new way.
    let v2 = Arc::new(
        ProjectionRunner::new(&env.store, Balances::new("bal", "balances", Fail::Never).version_2())
            .with_batch_size(3)
            .with_poll_interval(fast),
    );
    let (stop, task) = run_in_background(v2);
    seed(&env.store, "late", 2, 5).await;
    wait_settled(&env, "bal", 2).await;
    let expected: Vec<_> = reference(&env.store)
        .await
        .into_iter()
        .map(|(id, balance, events, last)| (id, balance * 10, events, last))
        .collect();
    assert_eq!(dump(&env.pool, "balances").await, expected);
    assert_eq!(expected.len(), 6);
    assert!(v1_rows.iter().all(|row| expected.iter().any(|e| e.0 == row.0 && e.1 == row.1 * 10)));
    let leftover: bool =
        sqlx::query_scalar("SELECT to_regclass('balances_rebuild') IS NOT NULL").fetch_one(&env.pool).await.unwrap();
    assert!(!leftover);

    // An operator asks for a rebuild (sentra-ctl projections rebuild): the same rows come back.
    env.store.feed().request_rebuild("bal").await.unwrap();
    assert_eq!(env.store.feed().subscribers().await.unwrap().iter().find(|s| s.name == "bal").unwrap().version, 0);
    wait_settled(&env, "bal", 2).await;
    assert_eq!(dump(&env.pool, "balances").await, expected);
    assert!(matches!(
        env.store.feed().request_rebuild("nope").await,
        Err(EventStoreError::UnknownProjection(name)) if name == "nope"
    ));
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_a_migration_error_not_created_on_the_fly() {
    let env = env().await;
    let runner = ProjectionRunner::new(&env.store, Balances::new("bal", "balances", Fail::Never));
    assert!(matches!(runner.try_activate().await, Err(EventStoreError::MissingTable(table)) if table == "balances"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_runner_is_active_and_the_other_takes_over() {
    let env = env().await;
    migrate(&env).await;
    let one = ProjectionRunner::new(&env.store, Balances::new("bal", "balances", Fail::Never));
    let two = ProjectionRunner::new(&env.store, Balances::new("bal", "balances", Fail::Never));
    let active = one.try_activate().await.unwrap().unwrap();
    assert!(two.try_activate().await.unwrap().is_none());
    active.release().await.unwrap();
    let active = two.try_activate().await.unwrap().unwrap();
    assert!(one.try_activate().await.unwrap().is_none());
    active.release().await.unwrap();

    // Both run concurrently; every event is applied exactly once.
    let fast = Duration::from_millis(50);
    let one = Arc::new(
        ProjectionRunner::new(&env.store, Balances::new("bal", "balances", Fail::Never)).with_poll_interval(fast),
    );
    let two = Arc::new(
        ProjectionRunner::new(&env.store, Balances::new("bal", "balances", Fail::Never)).with_poll_interval(fast),
    );
    let (stop_one, stop_one_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_two, stop_two_rx) = tokio::sync::oneshot::channel::<()>();
    let run_one = {
        let one = one.clone();
        tokio::spawn(async move {
            one.run(async {
                let _ = stop_one_rx.await;
            })
            .await
        })
    };
    let run_two = {
        let two = two.clone();
        tokio::spawn(async move {
            two.run(async {
                let _ = stop_two_rx.await;
            })
            .await
        })
    };
    seed(&env.store, "acc", 3, 5).await;
    wait_caught_up(&one).await;
    let applied = one.projection().applied.load(Ordering::SeqCst) + two.projection().applied.load(Ordering::SeqCst);
    assert_eq!(applied, 18, "events applied more than once across runners");

    // Stop whichever is active; the other takes over.
    let one_was_active = one.projection().applied.load(Ordering::SeqCst) > 0;
    if one_was_active {
        let _ = stop_one.send(());
        run_one.await.unwrap().unwrap();
    } else {
        let _ = stop_two.send(());
        run_two.await.unwrap().unwrap();
    }
    seed(&env.store, "more", 2, 2).await;
    wait_caught_up(&one).await;
    let (survivor_applied, stopped_applied) = if one_was_active {
        (two.projection().applied.load(Ordering::SeqCst), one.projection().applied.load(Ordering::SeqCst))
    } else {
        (one.projection().applied.load(Ordering::SeqCst), two.projection().applied.load(Ordering::SeqCst))
    };
    assert_eq!(stopped_applied, 18);
    assert_eq!(survivor_applied, 6);
    let total: i64 = sqlx::query_scalar("SELECT sum(events)::bigint FROM balances").fetch_one(&env.pool).await.unwrap();
    assert_eq!(total, 24);
}

async fn wait_caught_up(runner: &ProjectionRunner<Balances>) {
    for _ in 0..200 {
        if runner.lag().await.unwrap().events == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("projection never caught up");
}

#[tokio::test]
async fn lag_reports_events_and_age() {
    let env = env().await;
    migrate(&env).await;
    let runner = ProjectionRunner::new(&env.store, Balances::new("bal", "balances", Fail::Never));
    let mut active = runner.try_activate().await.unwrap().unwrap();
    let idle = runner.lag().await.unwrap();
    assert_eq!((idle.events, idle.seconds), (0, 0.0));
    seed(&env.store, "acc", 2, 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let lag = runner.lag().await.unwrap();
    assert_eq!(lag.events, 4);
    assert!(lag.seconds >= 1.0 && lag.seconds < 60.0, "{}", lag.seconds);
    wait_visible(&env.store, 4).await;
    active.catch_up().await.unwrap();
    assert_eq!(runner.lag().await.unwrap().events, 0);
}
