//! Integration tests against the machine's PostgreSQL and RabbitMQ: each test has its own
//! database and its own broker prefix; outages go through a `TcpProxy`, never the shared broker.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod consumer;
mod reconnect;
mod relay;
mod support;
mod table;
