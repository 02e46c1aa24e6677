//! The admin listener: plain HTTP beside the gRPC port, for Prometheus and the kubelet.
//!
//! - `GET /metrics`: the service's [`Metrics`] in the OpenMetrics text format.
//! - `GET /healthz`: 200 while the process runs (liveness: a restart does not bring back a
//!   database, so liveness must not follow the dependencies).
//! - `GET /readyz`: 200 while the gRPC health status is SERVING, else 503 (readiness).
//!
//! It is off unless `server.admin_port` is set (`SENTRA_<SVC>__SERVER__ADMIN_PORT=9090`; 0 picks a
//! free port in tests), and it stays plaintext even when the gRPC port uses mTLS, because the
//! kubelet's probes cannot present a client certificate; the network policies keep it to the
//! monitoring namespace.

use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::health::HealthState;
use crate::metrics::Metrics;

#[derive(Clone)]
struct Admin {
    metrics: Metrics,
    health: HealthState,
}

async fn metrics(State(admin): State<Admin>) -> impl IntoResponse {
    let body = admin.metrics.render().await;
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(admin): State<Admin>) -> (StatusCode, &'static str) {
    if admin.health.is_serving() {
        (StatusCode::OK, "serving\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not serving\n")
    }
}

/// Serves the admin routes on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    health: HealthState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(self::metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Admin { metrics, health });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
