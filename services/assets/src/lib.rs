//! The assets server: serves the two built web apps to browsers, behind Envoy on the same origin as
//! the API (Envoy sends gRPC paths to the gateway and everything else here).
//!
//! - `/app/…` is the staff dashboard (`web/dashboard/dist`), everything else the clients' portal
//!   (`web/portal/dist`). Both are single-page apps: a path without a file extension that names
//!   no file gets the app's `index.html` (the app's router takes it from there); a missing file
//!   (`/assets/gone.js`) is a 404, never HTML in place of a script.
//! - Vite names built files by content hash under `assets/`: they are cached for a year as
//!   `immutable`. `index.html` is `no-cache`, so a deploy is picked up on the next load.
//! - Files are served precompressed (`.br`, `.gz` next to each file, made by the build) when the
//!   browser accepts them, with `Vary: Accept-Encoding`; conditional and range requests work
//!   (tower-http's `ServeDir`).
//! - Every answer carries a content security policy that allows only this origin's scripts and
//!   API, and `/healthz` answers probes.
//!
//! [`Config`] has the directories and the port; [`Application`] binds first (port 0 in tests)
//! and then serves until its shutdown future resolves.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use sentra_runtime::config::{self, ConfigError, LogConfig, ServerConfig, ShutdownConfig};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// Everything the server reads at start-up.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// HTTP listener (Envoy forwards here).
    pub server: ServerConfig,
    /// Where the built apps are.
    pub apps: AppDirs,
    /// Log output.
    pub log: LogConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
}

/// The build output directories of the two apps.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AppDirs {
    /// The staff dashboard, served under `/app/`.
    pub dashboard: PathBuf,
    /// The clients' portal, served at `/`.
    pub portal: PathBuf,
}

impl Default for AppDirs {
    fn default() -> Self {
        Self { dashboard: "web/dashboard/dist".into(), portal: "web/portal/dist".into() }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::on_port(3080),
            apps: AppDirs::default(),
            log: LogConfig::default(),
            shutdown: ShutdownConfig::default(),
        }
    }
}

impl Config {
    /// Defaults overridden by `SENTRA_ASSETS__*` environment variables.
    pub fn load() -> Result<Self, ConfigError> {
        config::load("assets")
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The built server, bound and ready to serve.
pub struct Application {
    listener: tokio::net::TcpListener,
    router: Router,
    grace: std::time::Duration,
}

/// The content security policy of both apps: scripts, styles and calls only from this origin
/// (Mantine sets inline style attributes), brand logos from any https host.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' https: data:; connect-src 'self'; font-src 'self' data:; \
                   object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

impl Application {
    /// Binds the listener; `config.server.port = 0` binds a free port. Missing app directories
    /// are not an error (the pages say the apps are not built), so the server can start first.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let addr = config.server.addr();
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|source| StartupError::Bind { addr, source })?;
        for (name, dir) in [("dashboard", &config.apps.dashboard), ("portal", &config.apps.portal)] {
            if !dir.join("index.html").is_file() {
                tracing::warn!(app = name, dir = %dir.display(), "App not built; run `npm --prefix web run build`.");
            }
        }
        Ok(Self { listener, router: router(&config.apps), grace: config.shutdown.grace })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` resolves, then gives requests in flight up to `shutdown.grace`.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), "Assets server listening.");
        let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
        let serve = axum::serve(self.listener, self.router).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopping.send(());
        });
        let grace = self.grace;
        tokio::select! {
            result = serve => result,
            () = async move {
                if stopped.await.is_ok() {
                    tokio::time::sleep(grace).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {
                tracing::warn!("Requests still open after the grace period; stopping anyway.");
                Ok(())
            }
        }
    }
}

/// The routes: health, the dashboard under `/app/`, the portal everywhere else.
pub fn router(apps: &AppDirs) -> Router {
    let apps = apps.clone();
    Router::new().route("/healthz", get(|| async { "ok" })).fallback_service(tower::service_fn(
        move |mut request: Request| {
            let apps = apps.clone();
            async move {
                let path = request.uri().path();
                if path == "/app" {
                    // The dashboard's relative URLs need the trailing slash.
                    return Ok(Redirect::permanent("/app/").into_response());
                }
                let Some(inner) = path.strip_prefix("/app/") else {
                    return serve_app(apps.portal, request).await;
                };
                let inner = format!("/{inner}");
                let rewritten = match request.uri().query() {
                    Some(query) => format!("{inner}?{query}"),
                    None => inner,
                };
                match rewritten.parse() {
                    Ok(uri) => *request.uri_mut() = uri,
                    Err(_) => return Ok(StatusCode::BAD_REQUEST.into_response()),
                }
                serve_app(apps.dashboard, request).await
            }
        },
    ))
}

/// Whether the last path segment names a file (`app-3f2a.js`) rather than a client-side route.
fn names_a_file(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|segment| segment.contains('.'))
}

async fn serve_app(dir: PathBuf, request: Request) -> Result<Response, std::convert::Infallible> {
    let path = request.uri().path().to_owned();
    let index = dir.join("index.html");
    if !index.is_file() {
        return Ok(not_built(&dir));
    }
    let file_request = names_a_file(&path) && path != "/index.html";
    let response = if file_request {
        ServeDir::new(&dir)
            .precompressed_br()
            .precompressed_gzip()
            .append_index_html_on_directories(false)
            .oneshot(request)
            .await
    } else {
        ServeFile::new(&index).precompressed_br().precompressed_gzip().oneshot(request).await
    };
    let mut response = match response {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    let status = response.status();
    let headers = response.headers_mut();
    let cache = if !file_request {
        "no-cache"
    } else if status.is_success() && path.contains("/assets/") {
        "public, max-age=31536000, immutable"
    } else if status.is_success() {
        "public, max-age=300"
    } else {
        "no-store"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    security_headers(headers);
    Ok(response)
}

fn security_headers(headers: &mut http::HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

fn not_built(dir: &Path) -> Response {
    tracing::warn!(dir = %dir.display(), "App requested but not built.");
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
        "This app is not built yet. Run `npm --prefix web run build` (make run does it for you).\n",
    )
        .into_response();
    security_headers(response.headers_mut());
    response
}
