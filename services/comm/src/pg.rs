//! PostgreSQL helpers Comm's parts share: re-wrapping the data keys of a table after a
//! key-encryption-key rotation, and waking a worker when another replica commits work for it.

use std::sync::Arc;
use std::time::Duration;

use sentra_crypto::{KeyRing, WrappedKey};
use sqlx::{PgPool, Row as _};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::error::CommError;

/// Re-wraps every data key of `table` (columns `kek_id`, `wrapped_key`, keyed by `id_column`)
/// not under the active key-encryption key, a batch at a time; returns how many moved. Safe to
/// run on every replica at once: each row is re-wrapped under a row lock, a moved row is skipped.
/// Rows another transaction holds (a sync pass) are waited for, up to a minute, not left behind.
pub async fn rewrap_table(
    pool: &PgPool,
    ring: &KeyRing,
    table: &'static str,
    id_column: &'static str,
    aad: fn(Uuid) -> Vec<u8>,
) -> Result<u64, CommError> {
    let mut moved = 0;
    let mut waits = 0;
    loop {
        let mut tx = pool.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT {id_column} AS id, kek_id, wrapped_key FROM {table} WHERE kek_id <> $1 LIMIT 100 FOR UPDATE SKIP \
             LOCKED"
        ))
        .bind(ring.active_id())
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            drop(tx);
            let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE kek_id <> $1"))
                .bind(ring.active_id())
                .fetch_one(pool)
                .await?;
            if left == 0 || waits >= 300 {
                return Ok(moved);
            }
            waits += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for row in rows {
            let id: Uuid = row.try_get("id")?;
            let wrapped = WrappedKey { kek_id: row.try_get("kek_id")?, ciphertext: row.try_get("wrapped_key")? };
            let Some(new) = ring.rewrap(&wrapped, &aad(id)).map_err(CommError::Crypto)? else { continue };
            sqlx::query(&format!("UPDATE {table} SET kek_id = $2, wrapped_key = $3 WHERE {id_column} = $1"))
                .bind(id)
                .bind(&new.kek_id)
                .bind(&new.ciphertext)
                .execute(&mut *tx)
                .await?;
            moved += 1;
        }
        tx.commit().await?;
    }
}

/// Wakes `wake` on every `pg_notify(channel)` of any replica, reconnecting after failures; runs
/// until aborted.
pub async fn listen(pool: PgPool, channel: &'static str, wake: Arc<Notify>) {
    loop {
        let listened = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen(channel).await?;
            loop {
                listener.recv().await?;
                wake.notify_one();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        if let Err(error) = listened.await {
            tracing::warn!(%error, channel, "Listener failed; reconnecting.");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
