//! What every Sentra service does the same way.
//!
//! - [`admin`]: the admin HTTP port (`/metrics`, `/healthz`, `/readyz`).
//! - [`metrics`]: Prometheus metrics per service, RED metrics of every call.
//! - [`background`]: tasks that run beside a server and stop with it.
//! - [`cli`]: the services' command line (serve, or `migrate` and exit).
//! - [`config`]: layered configuration (code defaults, then `SENTRA_<SERVICE>__<KEY>` variables).
//! - [`telemetry`]: the tracing subscriber (text or JSON lines) and the OTLP trace export.
//! - [`context`]: request id and `traceparent` propagation around every call.
//! - [`failure`]: the one error table: each kind of failure, its gRPC code and its reason.
//! - [`health`]: dependency probes that drive `grpc.health.v1.Health`.
//! - [`input`]: the front door: framing, size and decode failures answered cleanly.
//! - [`server`]: [`server::ServiceHost`], which binds (port 0 in tests), serves a service's routes
//!   with health and reflection, and shuts down gracefully.
//! - [`redis`]: Redis clients that reconnect by themselves.
//! - [`db`]: PostgreSQL pools, one schema per service, migrated at start-up.
//! - [`shutdown`]: the SIGTERM/SIGINT future.
//! - [`tls`]: rustls on the gRPC port (mTLS with certificate reload) and for outgoing calls.
//! - [`status`]: gRPC statuses with reasons and field violations, built the same way everywhere.
//! - [`wire`]: timestamps, page sizes and list cursors at the gRPC boundary.

pub mod admin;
pub mod background;
pub mod cli;
pub mod config;
pub mod context;
pub mod db;
pub mod failure;
pub mod health;
pub mod input;
pub mod metrics;
pub mod redis;
pub mod server;
pub mod shutdown;
pub mod status;
pub mod telemetry;
pub mod tls;
pub mod wire;

pub use secrecy::{ExposeSecret, SecretString};
