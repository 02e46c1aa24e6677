//! The auth layer in front of a real tonic server, and its raw HTTP behaviour.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use http::uri::PathAndQuery;
use sentra_auth::{AuthLayer, Claims, OrgRole, Principal, SigningKey, Verifier};
use tonic::Code;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_prost::ProstCodec;
use tower::{Layer, Service, ServiceExt};

use crate::{staff_claims, verifier_for};

/// What the test service answers: who the layer said was calling.
#[derive(Clone, PartialEq, prost::Message)]
struct Who {
    #[prost(string, tag = "1")]
    user_id: String,
}

/// A hand-written gRPC service whose one method returns the caller's user id via
/// `sentra_auth::principal`, counting how often its handler runs.
#[derive(Clone, Default)]
struct Whoami {
    calls: Arc<AtomicUsize>,
}

impl NamedService for Whoami {
    const NAME: &'static str = "sentra.test.Whoami";
}

impl Service<http::Request<Body>> for Whoami {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let calls = self.calls.clone();
        Box::pin(async move {
            let handler = tower::service_fn(move |request: tonic::Request<()>| {
                calls.fetch_add(1, Ordering::SeqCst);
                let answer = sentra_auth::principal(&request)
                    .map(|p| tonic::Response::new(Who { user_id: p.user_id.to_string() }));
                async move { answer }
            });
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Who, ()>::default());
            Ok(grpc.unary(handler, request).await)
        })
    }
}

struct TestServer {
    addr: SocketAddr,
    whoami_calls: Arc<AtomicUsize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(verifier: Verifier) -> TestServer {
    serve_with(verifier, false).await
}

/// Serves health and whoami behind the layer: server-wide, or (`per_service`) wrapping only the
/// whoami service, as a service that mixes protected and unprotected services would.
async fn serve_with(verifier: Verifier, per_service: bool) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (_reporter, health) = tonic_health::server::health_reporter();
    let whoami = Whoami::default();
    let whoami_calls = whoami.calls.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let shutdown = async {
        let _ = stopped.await;
    };
    if per_service {
        let router = Server::builder().add_service(health).add_service(AuthLayer::new(verifier).layer(whoami));
        tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown));
    } else {
        let router = Server::builder().layer(AuthLayer::new(verifier)).add_service(health).add_service(whoami);
        tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown));
    }
    TestServer { addr, whoami_calls, _stop: stop }
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connect")
}

fn with_auth<T>(message: T, authorization: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = authorization {
        request.metadata_mut().insert("authorization", value.parse().expect("ascii header"));
    }
    request
}

async fn whoami(addr: SocketAddr, authorization: Option<&str>) -> Result<Who, tonic::Status> {
    let mut client = tonic::client::Grpc::new(channel(addr).await);
    client.ready().await.expect("ready");
    let path = PathAndQuery::from_static("/sentra.test.Whoami/Get");
    client.unary(with_auth((), authorization), path, ProstCodec::<(), Who>::default()).await.map(|r| r.into_inner())
}

async fn health(addr: SocketAddr, authorization: Option<&str>) -> Result<i32, tonic::Status> {
    let request = with_auth(HealthCheckRequest { service: String::new() }, authorization);
    HealthClient::new(channel(addr).await).check(request).await.map(|r| r.into_inner().status)
}

#[tokio::test]
async fn valid_token_reaches_the_handler_as_a_principal() {
    let key = SigningKey::generate("k1");
    let server = serve(verifier_for(&[&key])).await;
    let claims = staff_claims(OrgRole::Member, &[]);
    let bearer = format!("Bearer {}", key.sign(&claims).unwrap());

    let who = whoami(server.addr, Some(&bearer)).await.unwrap();
    assert_eq!(who.user_id, claims.sub.to_string());
    assert_eq!(server.whoami_calls.load(Ordering::SeqCst), 1);

    // The scheme is case-insensitive, as HTTP says.
    let lower = format!("bearer {}", key.sign(&claims).unwrap());
    assert_eq!(whoami(server.addr, Some(&lower)).await.unwrap().user_id, claims.sub.to_string());

    assert_eq!(health(server.addr, Some(&bearer)).await.unwrap(), 1, "SERVING");
}

#[tokio::test]
async fn bad_tokens_are_refused_before_the_handler() {
    let key = SigningKey::generate("k1");
    let stranger = SigningKey::generate("k2");
    let server = serve(verifier_for(&[&key])).await;
    let now = chrono::Utc::now().timestamp();
    let expired = Claims { exp: now - 120, ..staff_claims(OrgRole::Owner, &[]) };

    let bad = [
        "Bearer not-a-jwt".to_owned(),
        format!("Bearer {}", key.sign(&expired).unwrap()),
        format!("Bearer {}", stranger.sign(&staff_claims(OrgRole::Owner, &[])).unwrap()),
        format!("Basic {}", key.sign(&staff_claims(OrgRole::Owner, &[])).unwrap()),
        "Bearer ".to_owned(),
    ];
    for authorization in &bad {
        let status = whoami(server.addr, Some(authorization)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{authorization}");
        assert_eq!(status.message(), "invalid or expired access token", "{authorization}");

        // Even a method that needs no token refuses a bad one rather than ignoring it.
        let status = health(server.addr, Some(authorization)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{authorization}");
    }
    assert_eq!(server.whoami_calls.load(Ordering::SeqCst), 0, "no bad token reached the handler");
}

#[tokio::test]
async fn no_token_passes_through_and_principal_says_missing() {
    let key = SigningKey::generate("k1");
    let server = serve(verifier_for(&[&key])).await;

    assert_eq!(health(server.addr, None).await.unwrap(), 1, "public methods work without a token");

    let status = whoami(server.addr, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "missing access token");
    assert_eq!(server.whoami_calls.load(Ordering::SeqCst), 1, "the handler ran and made the call itself");
}

/// An inner service recording whether it ran and which principal it saw.
fn recording_inner(
    seen: Arc<std::sync::Mutex<Vec<Option<Principal>>>>,
) -> impl Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible, Future: Send> + Clone + Send
{
    tower::service_fn(move |request: http::Request<Body>| {
        seen.lock().expect("lock").push(request.extensions().get::<Principal>().cloned());
        async { Ok::<_, Infallible>(http::Response::new(Body::default())) }
    })
}

fn request(authorization: Option<&str>) -> http::Request<Body> {
    let mut builder =
        http::Request::builder().uri("/sentra.test.Whoami/Get").header("content-type", "application/grpc");
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    builder.body(Body::default()).expect("request")
}

#[tokio::test]
async fn refusal_is_a_trailers_only_grpc_response() {
    let key = SigningKey::generate("k1");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let service = AuthLayer::new(verifier_for(&[&key])).layer(recording_inner(seen.clone()));

    let response = service.oneshot(request(Some("Bearer garbage"))).await.unwrap();

    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(response.headers()["grpc-status"], "16");
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert!(response.headers().contains_key("grpc-message"));
    assert!(seen.lock().unwrap().is_empty(), "the inner service never ran");
}

#[tokio::test]
async fn the_layer_inserts_the_verified_principal_and_nothing_else() {
    let key = SigningKey::generate("k1");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let service = AuthLayer::new(verifier_for(&[&key])).layer(recording_inner(seen.clone()));
    let claims = staff_claims(OrgRole::Admin, &[]);

    let bearer = format!("Bearer {}", key.sign(&claims).unwrap());
    let response = service.clone().oneshot(request(Some(&bearer))).await.unwrap();
    assert!(!response.headers().contains_key("grpc-status"));

    // A principal already in the extensions (put there by anything but this layer) is removed.
    let mut smuggled = request(None);
    smuggled.extensions_mut().insert(claims.clone().into_principal().unwrap());
    service.oneshot(smuggled).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], Some(claims.into_principal().unwrap()));
    assert_eq!(seen[1], None);
}

#[tokio::test]
async fn an_unreachable_key_source_answers_unavailable() {
    struct Down;
    #[async_trait::async_trait]
    impl sentra_auth::KeySource for Down {
        async fn fetch(&self) -> Result<Vec<sentra_auth::PublicKey>, sentra_auth::AuthError> {
            Err(sentra_auth::AuthError::KeySource("connection refused".into()))
        }
    }
    let key = SigningKey::generate("k1");
    let server = serve(Verifier::new(Arc::new(Down))).await;
    let bearer = format!("Bearer {}", key.sign(&staff_claims(OrgRole::Owner, &[])).unwrap());

    let status = whoami(server.addr, Some(&bearer)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(!status.message().contains("connection refused"));
    assert_eq!(server.whoami_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_layer_can_wrap_a_single_service() {
    assert_eq!(<sentra_auth::AuthService<Whoami> as NamedService>::NAME, "sentra.test.Whoami");
    let key = SigningKey::generate("k1");
    let server = serve_with(verifier_for(&[&key]), true).await;
    let claims = staff_claims(OrgRole::Member, &[]);
    let bearer = format!("Bearer {}", key.sign(&claims).expect("sign"));

    assert_eq!(whoami(server.addr, Some(&bearer)).await.unwrap().user_id, claims.sub.to_string());
    let status = whoami(server.addr, Some("Bearer forged")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(server.whoami_calls.load(Ordering::SeqCst), 1);
    // The unwrapped health service does not look at the header at all.
    assert_eq!(health(server.addr, Some("Bearer forged")).await.unwrap(), 1);
}
