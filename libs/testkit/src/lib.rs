//! Test helpers shared by every Sentra crate.
//!
//! Each test gets its own PostgreSQL database ([`TestDatabase`], named by a UUID and dropped when
//! the value is dropped), its own RabbitMQ names and Redis key prefix ([`unique_prefix`]), so the
//! whole suite runs in parallel against the machine's real servers without sharing state.
//! [`TcpProxy`] sits between a service and a real server and can cut the connection, which is how
//! outage and reconnect behaviour is tested without touching the shared servers. [`envoy`] runs
//! the real Envoy binary and speaks gRPC-Web to it, [`grpc`] holds the assertions every API test
//! uses, and [`tenancy`] signs organizations up and logs people in.
//!
//! Addresses come from `SENTRA_TEST_POSTGRES_URL`, `SENTRA_TEST_REDIS_URL` and
//! `SENTRA_TEST_AMQP_URL`, defaulting to the local servers.

pub mod envoy;
pub mod gmail;
pub mod grpc;
pub mod process;
mod proxy;
pub mod sales;
pub mod smtp;
pub mod tenancy;
pub mod time;
pub mod tls;
pub mod webhooks;

pub use proxy::TcpProxy;

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

/// URL of the PostgreSQL server tests create their databases on (an administrative database).
pub fn postgres_admin_url() -> String {
    std::env::var("SENTRA_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// URL of the Redis server tests use.
pub fn redis_url() -> String {
    std::env::var("SENTRA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// URL of the RabbitMQ server tests use.
pub fn amqp_url() -> String {
    std::env::var("SENTRA_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// How long a test's broker queues outlive their last use (`amqp.queue_expiry_secs`): long
/// enough for any test, short enough that finished tests leave nothing behind on the broker.
pub const QUEUE_EXPIRY_SECS: u64 = 600;

/// A name unique to this test: `<kind>_<uuid>`, usable as a queue/exchange prefix or a key prefix.
pub fn unique_prefix(kind: &str) -> String {
    format!("{kind}_{}", uuid::Uuid::new_v4().simple())
}

/// A PostgreSQL database created for one test and dropped (with its connections) afterwards.
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates `sentra_test_<uuid>` on the test server.
    ///
    /// # Panics
    /// When the test server is unreachable: the test cannot run, and says why.
    pub async fn create() -> Self {
        let admin = postgres_admin_url();
        let name = unique_prefix("sentra_test");
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is unreachable ({e}); start it first"));
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = conn.close().await;
        let options = PgConnectOptions::from_str(&admin).expect("valid admin url").database(&name);
        let url = options.to_url_lossy().to_string();
        Self { name, url }
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection URL for the database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL as a secret, the way service configs take it.
    pub fn secret_url(&self) -> secrecy::SecretString {
        secrecy::SecretString::from(self.url.clone())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on; a short-lived thread
        // with its own runtime does the cleanup. Failure only leaves a stray database behind.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&postgres_admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        });
        let _ = handle.join();
    }
}
