//! `sentra-ctl projections status DATABASE_URL [SCHEMA...]`: every projection and relay of the
//! services' schemas (default `sales finance`) with its feed position, how far behind it is, and
//! which database session runs it. Read-only; safe against production.

use std::fmt::Write as _;

use anyhow::Context;
use sentra_event_store::EventStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The status table of `schemas` in the database at `url`.
pub async fn status(url: &str, schemas: &[String]) -> anyhow::Result<String> {
    let options: PgConnectOptions = url.parse().context("DATABASE_URL is not a PostgreSQL URL")?;
    let mut out =
        format!("{:<9} {:<28} {:>10} {:>8} {:>9}  {}\n", "SCHEMA", "SUBSCRIBER", "POSITION", "BEHIND", "LAG", "LEADER");
    for schema in schemas {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().options([("search_path", schema.as_str())]))
            .await
            .with_context(|| format!("cannot connect to {schema}"))?;
        let subscribers = EventStore::new(pool.clone())
            .feed()
            .subscribers()
            .await
            .with_context(|| format!("cannot read the checkpoints of schema {schema} (migrated?)"))?;
        for s in subscribers {
            // "-": a relay (its lock is not a projection's), or a projection no replica runs now.
            let leader = s.leader.as_deref().unwrap_or("-");
            writeln!(
                out,
                "{schema:<9} {:<28} {:>10} {:>8} {:>7.1} s  {leader}",
                s.name, s.lag.position, s.lag.events, s.lag.seconds
            )?;
        }
        pool.close().await;
    }
    Ok(out)
}
