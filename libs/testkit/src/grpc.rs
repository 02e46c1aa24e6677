//! gRPC checks every service test makes: health status and reflection listing.

use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// A lazily connecting channel to a server on this machine.
pub fn channel(addr: SocketAddr) -> Channel {
    let port = addr.port();
    Channel::from_shared(format!("http://127.0.0.1:{port}")).expect("valid uri").connect_lazy()
}

/// The status `grpc.health.v1.Health/Check` reports for `service` (`""` for the whole server).
pub async fn health_status(addr: SocketAddr, service: &str) -> Result<ServingStatus, tonic::Status> {
    let response =
        HealthClient::new(channel(addr)).check(HealthCheckRequest { service: service.to_owned() }).await?.into_inner();
    Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
}

/// Polls the health service until it reports `expected` for `service`.
///
/// # Panics
/// If it does not within `within`, naming the last status seen.
pub async fn wait_for_health(addr: SocketAddr, service: &str, expected: ServingStatus, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let status = health_status(addr, service).await;
        if matches!(status, Ok(s) if s == expected) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health of {service:?} stayed {status:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The services the server lists through `grpc.reflection.v1.ServerReflection`.
pub async fn reflected_services(addr: SocketAddr) -> Vec<String> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel(addr))
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = stream.message().await.expect("reflection stream").expect("one response");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

/// `message` with `authorization: Bearer <token>`.
///
/// # Panics
/// If the token is not a valid header value.
pub fn bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("token is a header value"));
    request
}

/// Asserts a call failed with `code`, and returns the status for more checks.
///
/// # Panics
/// If the call succeeded or failed with another code.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: tonic::Code) -> tonic::Status {
    match result {
        Ok(value) => panic!("expected {code:?}, got success: {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}

/// Polls `check` until it returns `Some` (read models and consumers are asynchronous).
///
/// # Panics
/// If it does not within 20 seconds, naming `what` it waited for.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a raw gRPC call answered.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// The HTTP status.
    pub http_status: u16,
    /// `grpc-status`, from the trailers or (trailers-only answers) the headers.
    pub grpc_status: Option<i32>,
    /// `grpc-message`, as sent.
    pub grpc_message: String,
    /// The server was still streaming messages when the caller stopped reading (a
    /// server-streaming call that was accepted; see [`raw_call_open`]).
    pub open: bool,
}

/// Sends `body` as it is (frames and all) as a gRPC call over HTTP/2 to `addr`, with a gRPC
/// content type and `headers`; for tests that must send what a well-behaved client never would.
pub async fn raw_call(
    addr: SocketAddr,
    path: &str,
    body: bytes::Bytes,
    headers: &[(&str, &str)],
) -> Result<RawAnswer, Box<dyn std::error::Error + Send + Sync>> {
    raw_call_open(addr, path, body, headers, None).await
}

/// [`raw_call`] for server-streaming methods, which may never end: with `read`, stops at the first
/// message (or after `read` without one) and reports the call as `open` if no status came.
pub async fn raw_call_open(
    addr: SocketAddr,
    path: &str,
    body: bytes::Bytes,
    headers: &[(&str, &str)],
    read: Option<Duration>,
) -> Result<RawAnswer, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (client, connection) = h2::client::handshake(tcp).await?;
    tokio::spawn(connection);
    let mut client = client.ready().await?;
    let mut request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (response, mut send) = client.send_request(request.body(())?, false)?;
    send.send_data(body, true)?;
    let response = response.await?;
    let (parts, mut body) = response.into_parts();
    let drain = async |body: &mut h2::RecvStream| {
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        Ok::<_, h2::Error>(body.trailers().await.ok().flatten().unwrap_or_default())
    };
    let (trailers, open) = match read {
        Some(read) => match tokio::time::timeout(read, body.data()).await {
            // A message: the call was accepted and streams on.
            Ok(Some(chunk)) => {
                chunk?;
                (http::HeaderMap::new(), true)
            }
            Ok(None) => (body.trailers().await.ok().flatten().unwrap_or_default(), false),
            Err(_) => (http::HeaderMap::new(), true),
        },
        None => (drain(&mut body).await?, false),
    };
    let pick = |name: &str| {
        trailers.get(name).or_else(|| parts.headers.get(name)).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    Ok(RawAnswer {
        http_status: parts.status.as_u16(),
        grpc_status: pick("grpc-status").and_then(|s| s.parse().ok()),
        grpc_message: pick("grpc-message").unwrap_or_default(),
        open: open && pick("grpc-status").is_none(),
    })
}
