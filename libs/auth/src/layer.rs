//! The tower layer that authenticates every call to a tonic server.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use tower::{Layer, Service};

use crate::{AuthError, Principal, Verifier};

/// Tower layer for tonic servers: if an `authorization: Bearer <jwt>` header is present, verify it
/// and insert the [`Principal`] into the request extensions (handlers read it with
/// [`principal`](crate::principal)); an invalid or expired token is answered at once with a gRPC
/// UNAUTHENTICATED response (HTTP 200, `grpc-status: 16`, trailers-only) and never reaches the
/// handler; no header: the call passes through, since public methods (login, refresh) exist and
/// handlers of protected ones call `principal()`.
///
/// ```no_run
/// # async fn run(verifier: sentra_auth::Verifier, routes: tonic::service::Routes) -> Result<(), tonic::transport::Error> {
/// tonic::transport::Server::builder()
///     .layer(sentra_auth::AuthLayer::new(verifier))
///     .add_routes(routes)
///     .serve("127.0.0.1:50051".parse().expect("address"))
///     .await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AuthLayer {
    verifier: Verifier,
}

impl AuthLayer {
    /// A layer verifying tokens with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        AuthLayer { verifier }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, verifier: self.verifier.clone() }
    }
}

/// Service produced by [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    verifier: Verifier,
}

/// Keeps the wrapped service's name, so one service can be wrapped on its own
/// (`Routes::new(AuthLayer::new(v).layer(FooServer::new(api)))`) instead of the whole server.
impl<S: tonic::server::NamedService> tonic::server::NamedService for AuthService<S> {
    const NAME: &'static str = S::NAME;
}

/// What the `authorization` header holds.
enum Credentials {
    None,
    Bearer(String),
    /// Present but not `Bearer <token>`: refused rather than ignored, because a caller that sent
    /// credentials expects them to count, and silently treating it as anonymous would turn a
    /// client bug into a confusing "missing token" further down.
    Malformed,
}

fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Credentials::None;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Credentials::Bearer(token.trim().to_owned())
        }
        _ => Credentials::Malformed,
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone we were polled ready on goes into the future; the fresh clone stays behind for
        // the next call (tower's usual rule for services that call their inner one later).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let verifier = self.verifier.clone();
        let credentials = credentials(request.headers());
        Box::pin(async move {
            let verified = match credentials {
                Credentials::None => None,
                Credentials::Malformed => Some(Err(AuthError::InvalidToken)),
                Credentials::Bearer(token) => Some(verifier.verify(&token).await),
            };
            match verified {
                // Only this layer may put a principal there; make that hold whatever ran before it.
                None => drop(request.extensions_mut().remove::<Principal>()),
                Some(Ok(principal)) => drop(request.extensions_mut().insert(principal)),
                Some(Err(error)) => {
                    tracing::debug!(%error, method = %request.uri().path(), "call refused: bad access token");
                    return Ok(tonic::Status::from(error).into_http());
                }
            }
            inner.call(request).await
        })
    }
}
