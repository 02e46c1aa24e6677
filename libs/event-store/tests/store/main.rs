//! Integration tests against the machine's PostgreSQL: each test has its own database.

#![allow(clippy::unwrap_used, missing_docs)]

mod aggregate;
mod append;
mod cqrs;
mod feed;
mod projection;
mod spawnable;
mod support;
