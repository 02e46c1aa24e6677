//! The Finance domain: the Invoice aggregate (cqrs-es) with its payments and credit notes.

pub mod invoice;

use chrono::{DateTime, Utc};

/// The current time at PostgreSQL's precision (microseconds).
pub fn now() -> DateTime<Utc> {
    sentra_runtime::wire::micros(Utc::now())
}
