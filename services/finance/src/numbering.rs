//! Gap-free document numbers per brand, kind and year.
//!
//! The counter row is incremented inside the transaction that also appends the event carrying
//! the number: the row lock serializes concurrent issuers of one brand, and a transaction that
//! rolls back (a conflict, a crash) gives its number back. So numbers are consecutive, never
//! repeated, never skipped.

use sqlx::PgConnection;
use uuid::Uuid;

/// Which sequence.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Invoices: `<prefix>-<year>-<000001>`.
    Invoice,
    /// Credit notes: `<prefix>-CN-<year>-<000001>`.
    CreditNote,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Invoice => "invoice",
            Kind::CreditNote => "credit_note",
        }
    }
}

/// Draws the next number of `brand`'s `kind` sequence for `year`, inside `conn`'s transaction.
pub async fn next(
    conn: &mut PgConnection,
    brand: Uuid,
    kind: Kind,
    year: i32,
    prefix: &str,
) -> Result<String, sqlx::Error> {
    let value: i64 = sqlx::query_scalar(
        "INSERT INTO number_sequences (brand_id, kind, year, last_value) VALUES ($1, $2, $3, 1)
         ON CONFLICT (brand_id, kind, year) DO UPDATE SET last_value = number_sequences.last_value + 1
         RETURNING last_value",
    )
    .bind(brand)
    .bind(kind.as_str())
    .bind(year)
    .fetch_one(conn)
    .await?;
    Ok(match kind {
        Kind::Invoice => format!("{prefix}-{year}-{value:06}"),
        Kind::CreditNote => format!("{prefix}-CN-{year}-{value:06}"),
    })
}
