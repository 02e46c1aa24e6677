//! Tests of the whole mesh in one process (the services, the gateway, Envoy).
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod analytics;
mod edge_tls;
mod hostile;
mod revocation;
