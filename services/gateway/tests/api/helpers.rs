//! The edge stack of a test: Tenancy in-process (own database and Redis prefix), upstreams that
//! count what reaches them, the gateway, and the real Envoy in front.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentra_gateway::config::AddressList;
use sentra_gateway::{Application, Config};
use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_testkit::TestDatabase;
use sentra_testkit::envoy::{Envoy, GrpcWebResponse, grpc_web_call};
use sentra_testkit::grpc::wait_for_health;
use sentra_testkit::tenancy;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tower::ServiceExt;

pub use sentra_testkit::tenancy::PASSWORD;
pub const ORIGINS: &str = r"^https://app\.urbanquill\.com$";

/// A running server task stopped on drop.
pub struct Running<T> {
    pub addr: SocketAddr,
    pub inner: T,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _task: tokio::task::JoinHandle<Result<(), sentra_runtime::server::ServeError>>,
}

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Tenancy on a free port with its own database.
pub async fn spawn_tenancy() -> Running<TestDatabase> {
    let db = TestDatabase::create().await;
    let mut config = sentra_tenancy::Config::default();
    config.server.host = Ipv4Addr::LOCALHOST.into();
    config.server.port = 0;
    config.health.interval = Duration::from_millis(200);
    config.shutdown.drain = Duration::ZERO;
    config.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("tenancy"));
    config.database.url = db.secret_url();
    config.database.max_connections = 8;
    let app = sentra_tenancy::Application::build(config).await.expect("tenancy builds");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Running { addr, inner: db, stop: Some(stop), _task: task }
}

/// Gateway config for tests: port 0, a fresh Redis prefix, generous limits unless changed.
pub fn gateway_config(tenancy: &[SocketAddr]) -> Config {
    let mut config = Config::default();
    config.server.host = Ipv4Addr::LOCALHOST.into();
    config.server.port = 0;
    config.health.interval = Duration::from_millis(200);
    config.shutdown.drain = Duration::ZERO;
    config.redis.url = sentra_testkit::redis_url().into();
    config.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("gateway"));
    config.upstreams.tenancy = AddressList(tenancy.iter().map(|a| format!("http://{a}")).collect());
    config.limits.user = sentra_gateway::Rate::new(1000.0, 1000);
    config.limits.ip = sentra_gateway::Rate::new(1000.0, 1000);
    config.limits.tenant = sentra_gateway::Rate::new(1000.0, 1000);
    config
}

/// The gateway on a free port.
pub async fn spawn_gateway(config: Config) -> Running<()> {
    let app = Application::build(config).await.expect("gateway builds");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Running { addr, inner: (), stop: Some(stop), _task: task }
}

/// One call that reached an upstream: its path and metadata.
#[derive(Debug, Clone)]
pub struct SeenCall {
    pub path: String,
    pub headers: http::HeaderMap,
}

/// An upstream that records every call and forwards it to `target` (a real service), so tests
/// can prove what the gateway did or did not forward.
pub struct CountingUpstream {
    pub addr: SocketAddr,
    pub calls: Arc<Mutex<Vec<SeenCall>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CountingUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CountingUpstream {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let calls: Arc<Mutex<Vec<SeenCall>>> = Arc::default();
        let channel = sentra_testkit::grpc::channel(target);
        let recorder = calls.clone();
        let service = tower::service_fn(move |request: http::Request<axum::body::Body>| {
            recorder
                .lock()
                .expect("lock")
                .push(SeenCall { path: request.uri().path().to_owned(), headers: request.headers().clone() });
            let channel = channel.clone();
            async move {
                let answer = channel.oneshot(request.map(tonic::body::Body::new)).await;
                Ok::<_, Infallible>(answer.unwrap_or_else(|e| tonic::Status::unavailable(e.to_string()).into_http()))
            }
        });
        let routes = tonic::service::Routes::from(axum::Router::new().fallback_service(service));
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder().add_routes(routes).serve_with_incoming(incoming).await;
        });
        Self { addr, calls, task }
    }

    /// Paths seen so far.
    pub fn paths(&self) -> Vec<String> {
        self.calls.lock().expect("lock").iter().map(|c| c.path.clone()).collect()
    }

    /// The last call to a path ending with `method`.
    pub fn last(&self, method: &str) -> Option<SeenCall> {
        self.calls.lock().expect("lock").iter().rev().find(|c| c.path.ends_with(method)).cloned()
    }

    /// How many calls to a path ending with `method`.
    pub fn count(&self, method: &str) -> usize {
        self.paths().iter().filter(|p| p.ends_with(method)).count()
    }
}

/// Tenancy behind a counting upstream, the gateway, and Envoy.
pub struct Stack {
    pub tenancy: Running<TestDatabase>,
    pub upstream: CountingUpstream,
    pub gateway: Running<()>,
    pub envoy: Envoy,
    pub tenancy_client: TenancyServiceClient<Channel>,
    pub auth_client: AuthServiceClient<Channel>,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let tenancy = spawn_tenancy().await;
        let upstream = CountingUpstream::start(tenancy.addr).await;
        let mut config = gateway_config(&[upstream.addr]);
        adjust(&mut config);
        let gateway = spawn_gateway(config).await;
        wait_for_health(tenancy.addr, "", ServingStatus::Serving, Duration::from_secs(20)).await;
        wait_for_health(gateway.addr, "", ServingStatus::Serving, Duration::from_secs(20)).await;
        let envoy = Envoy::start(gateway.addr, ORIGINS).await;
        let channel = sentra_testkit::grpc::channel(tenancy.addr);
        Self {
            tenancy,
            upstream,
            gateway,
            envoy,
            tenancy_client: TenancyServiceClient::new(channel.clone()),
            auth_client: AuthServiceClient::new(channel),
        }
    }

    /// A gRPC-Web call through Envoy, as a browser on `host` (None: Envoy's own address).
    pub async fn web(
        &self,
        path: &str,
        message: &impl prost::Message,
        host: Option<&str>,
        token: Option<&str>,
        extra: &[(&str, &str)],
    ) -> GrpcWebResponse {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        // testkit's HTTP/1.1 client always sends Envoy's address as `host`; the browser's host
        // name reaches the gateway as `x-forwarded-host`, as behind a host-rewriting proxy.
        if let Some(host) = host {
            headers.push(("x-forwarded-host", host));
        }
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        headers.extend_from_slice(extra);
        grpc_web_call(self.envoy.addr, path, message, &headers).await.expect("gRPC-Web call")
    }

    /// Logs in through Envoy with the brand host and returns the access token.
    pub async fn web_login(&self, email: &str, host: &str) -> Result<String, GrpcWebResponse> {
        let request = pb::LoginRequest { email: email.into(), password: PASSWORD.into(), host: host.into() };
        let answer = self.web(LOGIN, &request, Some(host), None, &[]).await;
        if answer.grpc_status() != Some(0) {
            return Err(answer);
        }
        let login: pb::LoginResponse = answer.message().expect("login response");
        Ok(login.tokens.expect("tokens").access_token)
    }

    /// Signs up an organization (directly at Tenancy) and logs its owner in.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let org = tenancy::sign_up(&self.tenancy_client, name).await.organization.expect("organization");
        let email = tenancy::owner_email(name);
        let token = self.direct_login(&email, "").await;
        Tenant { org_id: org.id, email, token }
    }

    pub async fn direct_login(&self, email: &str, host: &str) -> String {
        tenancy::login(&self.auth_client, email, host).await
    }

    /// A brand on `domain`, created by the tenant's owner.
    pub async fn brand(&self, tenant: &Tenant, name: &str, domain: &str) -> pb::Brand {
        let brand = pb::Brand {
            name: name.into(),
            domain: domain.into(),
            display_name: format!("{name} Studio"),
            primary_color: "#112233".into(),
            support_email: format!("help@{domain}"),
            invoice_prefix: "UQ".into(),
            default_currency: "EUR".into(),
            time_zone: "Europe/Berlin".into(),
            email_aliases: vec![format!("mark@{domain}")],
            ..Default::default()
        };
        sentra_testkit::tenancy::create_brand(&self.tenancy_client, &tenant.token, brand).await
    }

    /// A portal user of `brand` with `email`.
    pub async fn portal_user(&self, tenant: &Tenant, brand_id: &str, email: &str) {
        self.tenancy_client
            .clone()
            .create_portal_user(bearer(
                &tenant.token,
                pb::CreatePortalUserRequest {
                    brand_id: brand_id.into(),
                    client_id: uuid::Uuid::new_v4().to_string(),
                    email: email.into(),
                    display_name: "A Client".into(),
                    password: PASSWORD.into(),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("create portal user");
    }
}

/// An organization with its logged-in owner.
pub struct Tenant {
    pub org_id: String,
    pub email: String,
    pub token: String,
}

pub const LOGIN: &str = "/sentra.tenancy.v1.AuthService/Login";

/// The `grpc-status` of a gRPC-Web answer, with the answer in the failure message.
#[track_caller]
pub fn assert_status(answer: &GrpcWebResponse, code: tonic::Code) {
    assert_eq!(answer.grpc_status(), Some(code as i32), "{answer:?}");
}

/// The claims of a JWT (unverified), for assertions.
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&raw).expect("JSON claims")
}

pub use sentra_testkit::grpc::bearer;

/// Already-encoded bytes sent as a message.
#[derive(Clone, PartialEq)]
pub struct RawMessage(pub Vec<u8>);

impl std::fmt::Debug for RawMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawMessage({} bytes)", self.0.len())
    }
}

impl prost::Message for RawMessage {
    fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        buf.put_slice(&self.0);
    }
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }
    fn encoded_len(&self) -> usize {
        self.0.len()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}
