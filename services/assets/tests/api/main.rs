//! The assets server on real sockets, directly and through the real Envoy: SPA fallback, cache
//! headers, precompressed variants, 404s for missing files, and the route split at Envoy.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Method, StatusCode};
use sentra_assets::{AppDirs, Application, Config};
use sentra_testkit::envoy::{Envoy, HttpResponse, http1_request};

/// A built-looking pair of apps in a temporary directory, removed on drop.
struct Site {
    root: PathBuf,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn write(path: &Path, body: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, body).expect("write");
}

impl Site {
    fn new() -> Self {
        let root = std::env::temp_dir().join(sentra_testkit::unique_prefix("assets"));
        let d = root.join("dashboard");
        write(&d.join("index.html"), b"<!doctype html><title>dashboard</title>");
        write(&d.join("index.html.gz"), b"gzip of the dashboard index");
        write(&d.join("assets/app-3f2a9c.js"), b"console.log('plain')");
        write(&d.join("assets/app-3f2a9c.js.gz"), b"gzip bytes");
        write(&d.join("assets/app-3f2a9c.js.br"), b"brotli bytes");
        let p = root.join("portal");
        write(&p.join("index.html"), b"<!doctype html><title>portal</title>");
        write(&p.join("favicon.svg"), b"<svg/>");
        Self { root }
    }

    fn apps(&self) -> AppDirs {
        AppDirs { dashboard: self.root.join("dashboard"), portal: self.root.join("portal") }
    }
}

async fn spawn_app(apps: AppDirs) -> SocketAddr {
    let mut config = Config::default();
    config.server.host = std::net::Ipv4Addr::LOCALHOST.into();
    config.server.port = 0;
    config.apps = apps;
    let app = Application::build(config).await.expect("assets server builds");
    let addr = app.local_addr();
    tokio::spawn(app.run_until(std::future::pending()));
    addr
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http1_request(addr, Method::GET, path, headers, Bytes::new()).await.expect("HTTP request")
}

fn header<'a>(response: &'a HttpResponse, name: &str) -> &'a str {
    response.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn body(response: &HttpResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

#[tokio::test]
async fn client_routes_get_their_app_index_uncached() {
    let site = Site::new();
    let addr = spawn_app(site.apps()).await;
    for (path, title) in [
        ("/app/", "dashboard"),
        ("/app/leads/0193a1b2", "dashboard"),
        ("/app/finance/invoices", "dashboard"),
        ("/", "portal"),
        ("/invoices/42", "portal"),
        ("/sign-in", "portal"),
    ] {
        let response = get(addr, path, &[]).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        assert!(body(&response).contains(&format!("<title>{title}</title>")), "{path}: {}", body(&response));
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
        assert!(header(&response, "content-type").starts_with("text/html"), "{path}");
    }
    let bare = get(addr, "/app", &[]).await;
    assert_eq!(bare.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&bare, "location"), "/app/");
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_served_precompressed() {
    let site = Site::new();
    let addr = spawn_app(site.apps()).await;
    let path = "/app/assets/app-3f2a9c.js";
    let br = get(addr, path, &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(br.status, StatusCode::OK);
    assert_eq!(header(&br, "content-encoding"), "br");
    assert_eq!(body(&br), "brotli bytes");
    assert_eq!(header(&br, "cache-control"), "public, max-age=31536000, immutable");
    assert!(header(&br, "vary").to_ascii_lowercase().contains("accept-encoding"));
    assert!(header(&br, "content-type").contains("javascript"), "{}", header(&br, "content-type"));

    let gz = get(addr, path, &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&gz, "content-encoding"), "gzip");
    assert_eq!(body(&gz), "gzip bytes");

    let plain = get(addr, path, &[]).await;
    assert_eq!(header(&plain, "content-encoding"), "");
    assert_eq!(body(&plain), "console.log('plain')");

    // The index is precompressed too, and still not cached.
    let index = get(addr, "/app/pipeline", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&index, "content-encoding"), "gzip");
    assert_eq!(header(&index, "cache-control"), "no-cache");

    // Conditional requests: the browser revalidates with the validator it got.
    let etag_or_date = [header(&plain, "etag"), header(&plain, "last-modified")];
    let validator = etag_or_date.iter().find(|v| !v.is_empty()).expect("a validator").to_string();
    let name = if header(&plain, "etag").is_empty() { "if-modified-since" } else { "if-none-match" };
    let again = get(addr, path, &[(name, validator.as_str())]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn a_missing_file_is_404_not_the_app() {
    let site = Site::new();
    let addr = spawn_app(site.apps()).await;
    for path in ["/app/assets/gone-1234.js", "/assets/gone.css", "/robots.txt"] {
        let response = get(addr, path, &[]).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!body(&response).contains("<title>"), "{path} answered with a page");
        assert_eq!(header(&response, "cache-control"), "no-store", "{path}");
    }
    let favicon = get(addr, "/favicon.svg", &[]).await;
    assert_eq!(favicon.status, StatusCode::OK);
    assert_eq!(header(&favicon, "cache-control"), "public, max-age=300");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let site = Site::new();
    let addr = spawn_app(site.apps()).await;
    for path in ["/", "/app/", "/app/assets/app-3f2a9c.js", "/nope.js"] {
        let response = get(addr, path, &[]).await;
        let csp = header(&response, "content-security-policy");
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff", "{path}");
    }
    let health = get(addr, "/healthz", &[]).await;
    assert_eq!((health.status, body(&health).as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn unbuilt_apps_say_so() {
    let root = std::env::temp_dir().join(sentra_testkit::unique_prefix("assets-missing"));
    let addr = spawn_app(AppDirs { dashboard: root.join("dashboard"), portal: root.join("portal") }).await;
    let response = get(addr, "/app/", &[]).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body(&response).contains("npm --prefix web run build"), "{}", body(&response));
}

#[tokio::test]
async fn envoy_sends_pages_to_the_assets_server_and_api_paths_to_the_gateway() {
    let site = Site::new();
    let assets = spawn_app(site.apps()).await;
    // A stand-in gateway that answers every request with a marker, to see what Envoy sent where.
    let gateway_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gateway = gateway_listener.local_addr().expect("addr");
    let marker =
        axum::Router::new().fallback(|| async { ([("content-type", "application/grpc"), ("grpc-status", "12")], "") });
    tokio::spawn(async move {
        let incoming = tonic::transport::server::TcpIncoming::from(gateway_listener);
        let _ = tonic::transport::Server::builder()
            .add_routes(tonic::service::Routes::from(marker))
            .serve_with_incoming(incoming)
            .await;
    });
    let envoy = Envoy::start_with_assets(gateway, assets, ".*").await;

    let page = get(envoy.addr, "/app/leads/1", &[("host", "app.urbanquill.localhost")]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(body(&page).contains("<title>dashboard</title>"));
    let portal = get(envoy.addr, "/", &[]).await;
    assert!(body(&portal).contains("<title>portal</title>"));

    let api = http1_request(
        envoy.addr,
        Method::POST,
        "/sentra.sales.v1.SalesService/ListLeads",
        &[("content-type", "application/grpc-web+proto"), ("x-grpc-web", "1")],
        Bytes::from_static(&[0, 0, 0, 0, 0]),
    )
    .await
    .expect("gRPC-Web request");
    assert_eq!(header(&api, "grpc-status"), "12", "the API path reached the gateway: {api:?}");
    let health = http1_request(
        envoy.addr,
        Method::POST,
        "/grpc.health.v1.Health/Check",
        &[("content-type", "application/grpc-web+proto"), ("x-grpc-web", "1")],
        Bytes::from_static(&[0, 0, 0, 0, 0]),
    )
    .await
    .expect("gRPC-Web request");
    assert_eq!(header(&health, "grpc-status"), "12");
    // A gRPC call to any other path still goes to the gateway (which answers UNIMPLEMENTED).
    let foreign = http1_request(
        envoy.addr,
        Method::POST,
        "/acme.Foo/Bar",
        &[("content-type", "application/grpc-web+proto"), ("x-grpc-web", "1")],
        Bytes::from_static(&[0, 0, 0, 0, 0]),
    )
    .await
    .expect("gRPC-Web request");
    assert_eq!(header(&foreign, "grpc-status"), "12", "{foreign:?}");
}
