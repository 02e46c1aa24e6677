//! API tests of the gateway service, each on its own database and broker/cache names.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

mod balancing;
mod edge;
mod helpers;
mod limits;
mod mesh;
mod processes;
mod tls;
mod white_label;

use sentra_gateway::{Application, Config};

use sentra_testkit::grpc::{reflected_services, wait_for_health};
use tonic_health::pb::health_check_response::ServingStatus;

/// A running gateway service on a free port.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,

    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), sentra_runtime::server::ServeError>>,
}

impl TestApp {
    /// Asks the service to stop and waits until it has.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.server).await.expect("join").expect("clean stop");
    }
}

/// Starts the service in-process on port 0 with fresh state.
pub async fn spawn_app() -> TestApp {
    let config = {
        let mut config = Config::default();
        config.server.host = Ipv4Addr::LOCALHOST.into();
        config.server.port = 0;
        config.health.interval = Duration::from_millis(200);
        config.shutdown.drain = Duration::ZERO;
        config.redis.key_prefix = sentra_testkit::unique_prefix("gateway");
        config
    };
    let app = Application::build(config).await.expect("service builds");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp { addr, stop: Some(stop), server }
}

#[tokio::test]
async fn serves_health_and_reflection_then_stops_cleanly() {
    let app = spawn_app().await;
    wait_for_health(app.addr, "", ServingStatus::Serving, Duration::from_secs(10)).await;
    let services = reflected_services(app.addr).await;
    assert!(services.iter().any(|s| s == "grpc.health.v1.Health"), "{services:?}");
    let addr = app.addr;
    app.shutdown().await;
    assert!(sentra_testkit::grpc::health_status(addr, "").await.is_err(), "stopped service still answers");
}

mod envoy {
    use sentra_testkit::envoy::{Envoy, grpc_web_call, http1_request};
    use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

    use super::*;

    const ORIGINS: &str = r"^https://app\.urbanquill\.com$";

    #[tokio::test]
    async fn grpc_web_health_check_through_envoy_answers_serving() {
        let app = spawn_app().await;
        wait_for_health(app.addr, "", ServingStatus::Serving, Duration::from_secs(10)).await;
        let envoy = Envoy::start(app.addr, ORIGINS).await;

        let answer = grpc_web_call(envoy.addr, "/grpc.health.v1.Health/Check", &HealthCheckRequest::default(), &[])
            .await
            .expect("gRPC-Web call");
        assert_eq!(answer.http.status, http::StatusCode::OK);
        assert_eq!(answer.grpc_status(), Some(0), "{answer:?}");
        let health: HealthCheckResponse = answer.message().expect("one response message");
        assert_eq!(health.status, ServingStatus::Serving as i32);
        assert!(answer.http.headers.contains_key("x-request-id"), "the request id comes back");
    }

    #[tokio::test]
    async fn cors_preflight_passes_for_allowed_origins_only() {
        let app = spawn_app().await;
        let envoy = Envoy::start(app.addr, ORIGINS).await;
        let preflight = |origin: &'static str| async move {
            let headers = [
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type,x-grpc-web,authorization"),
            ];
            http1_request(
                envoy.addr,
                http::Method::OPTIONS,
                "/sentra.tenancy.v1.AuthService/Login",
                &headers,
                bytes::Bytes::new(),
            )
            .await
        };
        let allowed = preflight("https://app.urbanquill.com").await.expect("preflight");
        assert_eq!(
            allowed.headers.get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
            Some("https://app.urbanquill.com")
        );
        let exposed = allowed.headers.get("access-control-expose-headers").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(exposed.contains("grpc-status") && exposed.contains("grpc-status-details-bin"), "{exposed}");

        let refused = preflight("https://evil.example").await.expect("preflight");
        assert!(refused.headers.get("access-control-allow-origin").is_none(), "{refused:?}");
        // Envoy lets a refused preflight through; the gateway's input guard must answer it
        // itself (405, no gRPC status) rather than forward it as a call to a service.
        assert_eq!(refused.status, http::StatusCode::METHOD_NOT_ALLOWED, "{refused:?}");
        assert!(refused.headers.get("grpc-status").is_none(), "{refused:?}");
    }
}
