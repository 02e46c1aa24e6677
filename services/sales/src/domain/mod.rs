//! The Sales domain: aggregates (cqrs-es), their events, and exact money arithmetic. No SQL, no
//! protobuf here.

pub mod client;
pub mod lead;
pub use sentra_money as money;
pub mod order;

use chrono::{DateTime, Utc};

/// The current time at PostgreSQL's precision (microseconds), so a state read from events and a
/// row read from a table carry the same timestamps.
pub fn now() -> DateTime<Utc> {
    sentra_runtime::wire::micros(Utc::now())
}
