//! TLS with rustls on the gRPC port, and for the calls services make to each other.
//!
//! Off by default (plaintext h2c, as in development and tests). With `server.tls.cert` and
//! `server.tls.key` set a service speaks TLS (ALPN `h2`); with `server.tls.client_ca` as well it
//! requires every caller to present a certificate chaining to that CA (mTLS). [`ClientTls`]
//! is the other side: the CA that servers' certificates must chain to and the certificate a
//! service presents.
//!
//! Certificates are re-read when their files change (cert-manager renews them in place): a
//! task compares the files' modification times and sizes every `reload_interval` seconds and
//! swaps in a new rustls configuration for the connections that follow. A file caught half
//! written fails to parse and is retried on the next check; the old configuration stays.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Why TLS could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A file holds no usable PEM item of the expected kind.
    #[error("{path} holds no {what}")]
    Empty {
        /// The file.
        path: PathBuf,
        /// What was expected in it.
        what: &'static str,
    },
    /// Only one of `cert` and `key` is set.
    #[error("tls.cert and tls.key must be set together")]
    Incomplete,
    /// rustls refused the certificates (a key not matching the certificate, ...).
    #[error("invalid TLS configuration")]
    Rustls(#[from] rustls::Error),
    /// The CA bundle cannot verify client certificates.
    #[error("invalid client CA")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
}

/// Server TLS of a service (`server.tls.*`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerTls {
    /// PEM certificate chain the server presents; TLS is off while unset.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// PEM CA bundle; when set, callers must present a certificate chaining to it.
    pub client_ca: Option<PathBuf>,
    /// Seconds between checks of the files for changes.
    pub reload_interval: f64,
    /// Seconds a caller gets to finish the handshake.
    pub handshake_timeout: f64,
}

impl Default for ServerTls {
    fn default() -> Self {
        Self { cert: None, key: None, client_ca: None, reload_interval: 10.0, handshake_timeout: 10.0 }
    }
}

/// Client TLS of a service's outgoing calls (`client_tls.*`), used for `https://` URLs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ClientTls {
    /// PEM CA bundle the servers' certificates must chain to (required for `https://`).
    pub ca: Option<PathBuf>,
    /// PEM certificate chain presented to servers that ask for one (mTLS).
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// Seconds between checks of the files for changes (default 10).
    pub reload_interval: Option<f64>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::Empty { path: path.to_owned(), what: "PEM certificate" });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&read(path)?)
        .map_err(|_| TlsError::Empty { path: path.to_owned(), what: "PEM private key" })
}

fn roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certificates(path)?);
    if added == 0 {
        return Err(TlsError::Empty { path: path.to_owned(), what: "usable CA certificate" });
    }
    Ok(store)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Modification time and length of each file, to notice a change.
fn stamp(paths: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    paths.iter().map(|path| std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())))).collect()
}

/// A configuration rebuilt from its files whenever they change.
struct Reloading<C> {
    current: Arc<RwLock<Arc<C>>>,
}

impl<C> Clone for Reloading<C> {
    fn clone(&self) -> Self {
        Self { current: self.current.clone() }
    }
}

impl<C: Send + Sync + 'static> Reloading<C> {
    /// Loads now (failing on bad files) and spawns the watcher, which ends with the last clone.
    fn start(
        what: &'static str,
        paths: Vec<PathBuf>,
        interval: Duration,
        load: impl Fn() -> Result<C, TlsError> + Send + 'static,
    ) -> Result<Self, TlsError> {
        let mut seen = stamp(&paths);
        let current = Arc::new(RwLock::new(Arc::new(load()?)));
        let weak = Arc::downgrade(&current);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(current) = weak.upgrade() else { return };
                let now = stamp(&paths);
                if now == seen {
                    continue;
                }
                match load() {
                    Ok(config) => {
                        if let Ok(mut slot) = current.write() {
                            *slot = Arc::new(config);
                        }
                        seen = now;
                        tracing::info!(what, "TLS certificates reloaded.");
                    }
                    // Half-written files fail to parse: keep the old config, look again next tick.
                    Err(error) => {
                        tracing::warn!(what, %error, "TLS certificates changed but do not load; keeping the old ones.")
                    }
                }
            }
        });
        Ok(Self { current })
    }

    fn get(&self) -> Arc<C> {
        match self.current.read() {
            Ok(config) => config.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn server_config(tls: &ServerTls, cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &tls.client_ca {
        Some(ca) => builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider()).build()?,
        ),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certificates(cert)?, private_key(key)?)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The TLS side of a service's listener, reloading its certificates.
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Reloading<rustls::ServerConfig>,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor").finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// The acceptor for `tls`, `None` when TLS is off. Needs a Tokio runtime (the file watcher).
    pub fn new(tls: &ServerTls) -> Result<Option<Self>, TlsError> {
        let (cert, key) = match (&tls.cert, &tls.key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            _ => return Err(TlsError::Incomplete),
        };
        let mut paths = vec![cert.clone(), key.clone()];
        paths.extend(tls.client_ca.clone());
        let settings = tls.clone();
        let config =
            Reloading::start("server", paths, Duration::from_secs_f64(tls.reload_interval.max(0.01)), move || {
                server_config(&settings, &cert, &key)
            })?;
        Ok(Some(Self { config, handshake_timeout: Duration::from_secs_f64(tls.handshake_timeout.max(0.1)) }))
    }

    /// Accepts connections on `listener` and yields those that completed the handshake, until
    /// the returned stream is dropped. Handshakes run concurrently, each bounded in time.
    pub fn incoming(self, listener: TcpListener) -> tokio_stream::wrappers::ReceiverStream<io::Result<TlsConnection>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    () = tx.closed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Out of file descriptors and the like: back off instead of spinning.
                            tracing::warn!(%error, "Accept failed.");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = tokio_rustls::TlsAcceptor::from(self.config.get());
                let (tx, timeout) = (tx.clone(), self.handshake_timeout);
                tokio::spawn(async move {
                    let info = tcp.connect_info();
                    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(TlsConnection { stream, info })).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake refused."),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
                    }
                });
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

/// An accepted TLS connection; request extensions carry its [`TcpConnectInfo`] as for plain TCP.
pub struct TlsConnection {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    info: TcpConnectInfo,
}

impl Connected for TlsConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

fn client_config(tls: &ClientTls, ca: &Path) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca)?);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => builder.with_client_auth_cert(certificates(cert)?, private_key(key)?)?,
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::Incomplete),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Connects to `https://` URLs with the (reloading) client configuration and to `http://` ones
/// in plaintext: a connector for [`tonic::transport::Endpoint::connect_with_connector_lazy`].
#[derive(Clone)]
pub struct Connector {
    tls: Option<Reloading<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").field("tls", &self.tls.is_some()).finish()
    }
}

impl Connector {
    /// A connector for `tls`; without a CA it only speaks plaintext. Needs a Tokio runtime.
    pub fn new(tls: &ClientTls) -> Result<Self, TlsError> {
        let Some(ca) = tls.ca.clone() else {
            return match (&tls.cert, &tls.key) {
                (None, None) => Ok(Self { tls: None }),
                _ => Err(TlsError::Empty {
                    path: PathBuf::from("client_tls.ca"),
                    what: "CA (needed with a certificate)",
                }),
            };
        };
        let mut paths = vec![ca.clone()];
        paths.extend(tls.cert.clone());
        paths.extend(tls.key.clone());
        let settings = tls.clone();
        let interval = Duration::from_secs_f64(tls.reload_interval.unwrap_or(10.0).max(0.01));
        let config = Reloading::start("client", paths, interval, move || client_config(&settings, &ca))?;
        Ok(Self { tls: Some(config) })
    }

    /// A plaintext-only connector.
    pub fn plaintext() -> Self {
        Self { tls: None }
    }

    /// A lazily connecting channel to `url` (`http://` or `https://`).
    pub fn channel(&self, url: &str) -> Result<tonic::transport::Channel, tonic::transport::Error> {
        self.endpoint(url).map(|endpoint| endpoint.connect_with_connector_lazy(self.clone()))
    }

    /// The endpoint of `url`, for callers that set timeouts before connecting with this connector.
    pub fn endpoint(&self, url: &str) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
        tonic::transport::Endpoint::from_shared(url.to_owned())
    }
}

/// An outgoing connection, plaintext or TLS.
pub enum ClientStream {
    /// `http://`.
    Plain(TcpStream),
    /// `https://`.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for ClientStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_flush(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Why an outgoing connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL has no host, or a scheme other than http/https.
    #[error("cannot connect to {0}")]
    Url(String),
    /// `https://` without `client_tls.ca`.
    #[error("{0} needs client_tls.ca")]
    NoTls(String),
    /// TCP or the handshake failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Connector {
    /// Opens a connection to `uri`'s host and port: TLS (ALPN `h2`, the client certificate if
    /// configured) for `https`, plaintext for `http`; TCP_NODELAY either way.
    pub async fn connect(&self, uri: &http::Uri) -> Result<ClientStream, ConnectError> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(ConnectError::Url(uri.to_string())),
        };
        let host = uri.host().ok_or_else(|| ConnectError::Url(uri.to_string()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        // Checked before connecting, so a missing CA is reported as such.
        let tls = if https {
            Some(self.tls.as_ref().map(Reloading::get).ok_or_else(|| ConnectError::NoTls(uri.to_string()))?)
        } else {
            None
        };
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let Some(config) = tls else { return Ok(ClientStream::Plain(tcp)) };
        let name = ServerName::try_from(host).map_err(|_| ConnectError::Url(uri.to_string()))?;
        let stream = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?;
        Ok(ClientStream::Tls(Box::new(stream)))
    }
}

impl tower::Service<http::Uri> for Connector {
    type Response = hyper_util::rt::TokioIo<ClientStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move { connector.connect(&uri).await.map(hyper_util::rt::TokioIo::new) })
    }
}
