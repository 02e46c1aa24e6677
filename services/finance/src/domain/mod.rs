//! The Finance domain: the Invoice aggregate (cqrs-es) with its payments and credit notes.

pub mod invoice;

use chrono::{DateTime, Utc};

/// The current time at PostgreSQL's precision (microseconds).
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
