use std::str::FromStr;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use sentra_event_store::{EventMetadata, EventStore};
use sentra_testkit::TestDatabase;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// A database with the event store migrated into schema `svc`, the way a service runs it.
pub struct Env {
    pub store: EventStore,
    pub pool: PgPool,
    _db: TestDatabase,
}

pub async fn env() -> Env {
    env_with(|b| b).await
}

pub async fn env_with(
    configure: impl FnOnce(sentra_event_store::EventStoreBuilder) -> sentra_event_store::EventStoreBuilder,
) -> Env {
    let db = TestDatabase::create().await;
    let options = PgConnectOptions::from_str(db.url()).unwrap();
    let admin = PgPoolOptions::new().max_connections(1).connect_with(options.clone()).await.unwrap();
    sqlx::query("CREATE SCHEMA svc").execute(&admin).await.unwrap();
    admin.close().await;
    let pool =
        PgPoolOptions::new().max_connections(12).connect_with(options.options([("search_path", "svc")])).await.unwrap();
    let mut migrator = sentra_event_store::migrator();
    migrator.set_ignore_missing(true);
    migrator.run(&pool).await.unwrap();
    let store = configure(EventStore::builder(pool.clone())).build();
    Env { store, pool, _db: db }
}

pub fn tenant() -> Uuid {
    Uuid::new_v4()
}

pub fn meta(request_id: Option<&str>) -> EventMetadata {
    EventMetadata {
        correlation_id: Some("corr-1".into()),
        causation_id: Some("cmd-1".into()),
        actor: Some("user:alice".into()),
        request_id: request_id.map(str::to_owned),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        ..Default::default()
    }
}

/// A bank account: the test aggregate.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub opened: bool,
    pub owner: String,
    pub balance_cents: i64,
    pub deposits: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    Opened {
        owner: String,
    },
    /// v2 shape; v1 was `{ "amount": <whole euros> }`.
    Deposited {
        amount_cents: i64,
        currency: String,
    },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Opened { .. } => "Opened".into(),
            Self::Deposited { .. } => "Deposited".into(),
        }
    }
    fn event_version(&self) -> String {
        match self {
            Self::Opened { .. } => "1".into(),
            Self::Deposited { .. } => "2".into(),
        }
    }
}

#[derive(Debug)]
pub enum AccountCommand {
    Open { owner: String },
    Deposit { amount_cents: i64 },
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AccountError(pub String);

impl Aggregate for Account {
    const TYPE: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        match command {
            AccountCommand::Open { owner } => {
                if self.opened {
                    return Err(AccountError("already open".into()));
                }
                sink.write(AccountEvent::Opened { owner }, self).await;
            }
            AccountCommand::Deposit { amount_cents } => {
                if !self.opened {
                    return Err(AccountError("not open".into()));
                }
                sink.write(AccountEvent::Deposited { amount_cents, currency: "EUR".into() }, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AccountEvent::Opened { owner } => {
                self.opened = true;
                self.owner = owner;
            }
            AccountEvent::Deposited { amount_cents, .. } => {
                self.balance_cents += amount_cents;
                self.deposits += 1;
            }
        }
    }
}

pub fn deposit(amount_cents: i64) -> sentra_event_store::NewEvent {
    sentra_event_store::NewEvent::from_domain(&AccountEvent::Deposited { amount_cents, currency: "EUR".into() })
        .unwrap()
}

pub fn opened(owner: &str) -> sentra_event_store::NewEvent {
    sentra_event_store::NewEvent::from_domain(&AccountEvent::Opened { owner: owner.into() }).unwrap()
}

/// Waits until the feed shows `count` events. The feed holds back events while any transaction in
/// the cluster that is older than theirs is still open (other tests' databases included), so tests
/// that need exact batch boundaries wait for this first; once visible, events stay visible.
pub async fn wait_visible(store: &EventStore, count: usize) {
    let feed = store.feed();
    for _ in 0..400 {
        if feed.read_batch(sentra_event_store::Cursor::START, count + 1).await.unwrap().len() >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("feed never showed {count} events");
}
