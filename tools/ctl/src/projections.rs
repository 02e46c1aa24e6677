//! `sentra-ctl projections status DATABASE_URL [SCHEMA...]`: every projection and relay of the
//! services' schemas (default `sales finance`) with its feed position, how far behind it is, its
//! version (and a running rebuild's position), and which database session runs it. Read-only; safe
//! against production.
//!
//! `sentra-ctl projections rebuild DATABASE_URL SCHEMA NAME`: asks the running service to rebuild
//! projection `NAME` in the background (its table keeps serving until the new one is swapped in).

use std::fmt::Write as _;

use anyhow::Context;
use sentra_event_store::EventStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// A one-connection pool on `schema` of the database at `url`.
async fn connect(url: &str, schema: &str) -> anyhow::Result<sqlx::PgPool> {
    let options: PgConnectOptions = url.parse().context("DATABASE_URL is not a PostgreSQL URL")?;
    PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.options([("search_path", schema)]))
        .await
        .with_context(|| format!("cannot connect to {schema}"))
}

/// Asks for projection `name` of `schema` to be rebuilt by its active instance.
pub async fn rebuild(url: &str, schema: &str, name: &str) -> anyhow::Result<String> {
    let pool = connect(url, schema).await?;
    EventStore::new(pool.clone()).feed().request_rebuild(name).await.with_context(|| format!("rebuild {name}"))?;
    pool.close().await;
    Ok(format!(
        "Rebuild of {name} requested: the replica running it rebuilds the table in the background and swaps it in \
         once caught up (VERSION 0 until then; `sentra-ctl projections status` shows REBUILD progress).\n"
    ))
}

/// The status table of `schemas` in the database at `url`.
pub async fn status(url: &str, schemas: &[String]) -> anyhow::Result<String> {
    let mut out = format!(
        "{:<9} {:<28} {:>10} {:>8} {:>9} {:>7} {:>10}  {}\n",
        "SCHEMA", "SUBSCRIBER", "POSITION", "BEHIND", "LAG", "VERSION", "REBUILD", "LEADER"
    );
    for schema in schemas {
        let pool = connect(url, schema).await?;
        let subscribers = EventStore::new(pool.clone())
            .feed()
            .subscribers()
            .await
            .with_context(|| format!("cannot read the checkpoints of schema {schema} (migrated?)"))?;
        for s in subscribers {
            // "-": a relay (its lock is not a projection's), or a projection no replica runs now.
            let leader = s.leader.as_deref().unwrap_or("-");
            let rebuild = s.rebuilding.map_or_else(|| "-".to_owned(), |p| p.to_string());
            writeln!(
                out,
                "{schema:<9} {:<28} {:>10} {:>8} {:>7.1} s {:>7} {rebuild:>10}  {leader}",
                s.name, s.lag.position, s.lag.events, s.lag.seconds, s.version
            )?;
        }
        pool.close().await;
    }
    Ok(out)
}
