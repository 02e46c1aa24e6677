use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::PathAndQuery;
use sentra_runtime::config::{HealthConfig, ServerConfig, ShutdownConfig};
use sentra_runtime::server::ServiceHost;
use sentra_testkit::grpc::{channel, health_status};
use tonic::server::NamedService;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A unary method that answers after a delay, to have a call in flight during shutdown.
#[derive(Clone)]
struct Slow(Duration);

impl NamedService for Slow {
    const NAME: &'static str = "sentra.test.Slow";
}

struct SleepThenAnswer(Duration);

impl tonic::server::UnaryService<HealthCheckRequest> for SleepThenAnswer {
    type Response = HealthCheckResponse;
    type Future = BoxFuture<Result<tonic::Response<HealthCheckResponse>, tonic::Status>>;

    fn call(&mut self, _request: tonic::Request<HealthCheckRequest>) -> Self::Future {
        let delay = self.0;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            Ok(tonic::Response::new(HealthCheckResponse { status: ServingStatus::Serving as i32 }))
        })
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Slow {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let delay = self.0;
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(SleepThenAnswer(delay), request).await)
        })
    }
}

async fn slow_call(addr: std::net::SocketAddr) -> Result<HealthCheckResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel(addr));
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
    let path = PathAndQuery::from_static("/sentra.test.Slow/Sleep");
    grpc.unary(tonic::Request::new(HealthCheckRequest { service: String::new() }), path, codec)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn in_flight_call_completes_while_health_reports_draining() {
    let host = ServiceHost::bind("test", &ServerConfig::default(), &[]).await.expect("bind");
    let addr = host.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = ShutdownConfig { drain: Duration::from_millis(600), grace: Duration::from_secs(10) };
    let routes = tonic::service::Routes::new(Slow(Duration::from_millis(1500)));
    let server = tokio::spawn(host.serve(routes, vec![], HealthConfig::default(), shutdown, async {
        let _ = stopped.await;
    }));

    assert_eq!(health_status(addr, "").await.expect("health"), ServingStatus::Serving);
    let in_flight = tokio::spawn(slow_call(addr));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).expect("server running");

    // During the drain window new health checks still get an answer: NOT_SERVING.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(health_status(addr, "").await.expect("health while draining"), ServingStatus::NotServing);

    let answer = in_flight.await.expect("join").expect("the in-flight call completes");
    assert_eq!(answer.status, ServingStatus::Serving as i32);
    server.await.expect("join").expect("clean stop");
    assert!(health_status(addr, "").await.is_err(), "a stopped server refuses new calls");
}

#[tokio::test]
async fn grace_period_bounds_the_wait_for_stuck_calls() {
    let host = ServiceHost::bind("test", &ServerConfig::default(), &[]).await.expect("bind");
    let addr = host.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = ShutdownConfig { drain: Duration::ZERO, grace: Duration::from_millis(300) };
    let routes = tonic::service::Routes::new(Slow(Duration::from_secs(3600)));
    let server = tokio::spawn(host.serve(routes, vec![], HealthConfig::default(), shutdown, async {
        let _ = stopped.await;
    }));
    let _stuck = tokio::spawn(slow_call(addr));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).expect("server running");
    // Generous bound: the point is that the server does not wait for the hour-long call.
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("server stops after the grace period")
        .expect("join")
        .expect("stop is not an error");
}
