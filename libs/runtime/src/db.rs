//! PostgreSQL pools: one schema per service, migrated at start-up.

use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::DatabaseConfig;

/// Why a service could not get its database ready.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL in the configuration does not parse.
    #[error("database url is invalid")]
    InvalidUrl(#[source] sqlx::Error),
    /// The schema name is not a plain lower-case identifier.
    #[error("database schema name {0:?} is invalid")]
    InvalidSchema(String),
    /// No connection within the configured time.
    #[error("database unreachable")]
    Unreachable(#[source] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Migrating at start-up is off and the schema lacks migrations this build needs.
    #[error("schema {schema} lacks migrations {missing:?}; run `migrate` first (database.migrate is false)")]
    NotMigrated {
        /// The service's schema.
        schema: String,
        /// Versions this build has that the schema has not applied.
        missing: Vec<i64>,
    },
}

/// Connection options for `config`, with `search_path` set to the service's schema.
pub fn connect_options(config: &DatabaseConfig) -> Result<PgConnectOptions, DbError> {
    let schema = &config.schema;
    let valid = !schema.is_empty()
        && schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if !valid {
        return Err(DbError::InvalidSchema(schema.clone()));
    }
    let options = PgConnectOptions::from_str(config.url.expose_secret()).map_err(DbError::InvalidUrl)?;
    Ok(options.options([("search_path", schema.as_str())]))
}

/// Connects (retrying until `connect_timeout`), creates the schema if needed and applies the
/// service's migrations there.
///
/// Migrators sharing one schema (a service's own and a library's such as the event store) use
/// distinct version numbers and tolerate each other's history (`ignore_missing`).
pub async fn connect_and_migrate(
    config: &DatabaseConfig,
    migrators: impl IntoIterator<Item = Migrator>,
) -> Result<PgPool, DbError> {
    let options = connect_options(config)?;
    let deadline = tokio::time::Instant::now() + config.connect_timeout;
    let pool = loop {
        let attempt = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await;
        match attempt {
            Ok(pool) => break pool,
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(%error, "Database not reachable yet; retrying.");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(DbError::Unreachable(error)),
        }
    };
    if !config.migrate {
        check_migrated(&pool, &config.schema, migrators).await?;
        return Ok(pool);
    }
    // The name was validated above, so quoting it is enough.
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", config.schema))
        .execute(&pool)
        .await
        .map_err(DbError::Unreachable)?;
    for migrator in migrators {
        let mut migrator = migrator;
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await?;
    }
    Ok(pool)
}

/// Fails unless every migration of `migrators` was applied successfully in the pool's schema.
async fn check_migrated(
    pool: &PgPool,
    schema: &str,
    migrators: impl IntoIterator<Item = Migrator>,
) -> Result<(), DbError> {
    // A schema never migrated has no history table: everything is missing.
    let applied: Vec<i64> =
        match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(pool).await {
            Ok(applied) => applied,
            Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P01") => Vec::new(),
            Err(error) => return Err(DbError::Unreachable(error)),
        };
    let missing: Vec<i64> = migrators
        .into_iter()
        .flat_map(|m| m.iter().filter(|m| m.migration_type.is_up_migration()).map(|m| m.version).collect::<Vec<_>>())
        .filter(|version| !applied.contains(version))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(DbError::NotMigrated { schema: schema.to_owned(), missing }) }
}
