//! The edge: every call that is not the gateway's own health or reflection ends up in
//! [`Edge::handle`], which authenticates, authorizes, rate-limits and forwards it untouched.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use http::{HeaderValue, Request, Response};
use sentra_auth::{AuthError, PrincipalKind, Verifier};
use sentra_runtime::metrics::Counters;
use sentra_runtime::status::error_chain;
use sentra_runtime::tls::Connector;
use tonic::transport::server::TcpConnectInfo;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::{AddressList, EdgeSettings, Limits};
use crate::error::EdgeError;
use crate::hygiene::{self, BRAND_HEADER, Deadlines, ORGANIZATION_HEADER, Oversize};
use crate::lookups::BrandResolver;
use crate::policy::{self, Policy, Rule, Scope};
use crate::ratelimit::{Bucket, Decision, RateLimiter, Subject};
use crate::upstream::{InvalidAddress, Upstream};

/// The pooled, balanced HTTP/2 connections of each bounded context.
pub type UpstreamMap = HashMap<String, Upstream>;

/// Builds the connections of every context with addresses (see [`crate::upstream`]):
/// `connections_per_upstream` lazily opened connections to each address, balanced per call.
pub fn upstreams(
    contexts: &[(&str, &AddressList)],
    settings: &EdgeSettings,
    connector: &Connector,
) -> Result<UpstreamMap, InvalidAddress> {
    let mut map = HashMap::new();
    for (context, addresses) in contexts {
        if let Some(upstream) =
            Upstream::new(&addresses.0, settings.connections_per_upstream, settings.connect_timeout, connector)?
        {
            map.insert((*context).to_owned(), upstream);
        }
    }
    Ok(map)
}

/// Everything a call needs, shared by all calls.
pub struct Edge {
    /// The rules declared in the contracts.
    pub policy: Policy,
    /// Upstreams per context.
    pub upstreams: UpstreamMap,
    /// Token verification with keys from Tenancy.
    pub verifier: Verifier,
    /// Host name -> brand.
    pub brands: BrandResolver,
    /// Redis buckets.
    pub limiter: RateLimiter,
    /// Configured limits.
    pub limits: Limits,
    /// Message size and deadlines.
    pub settings: EdgeSettings,
    /// `settings`' deadline bounds, with their header values.
    pub deadlines: Deadlines,
    /// `sentra_ratelimit_rejections_total`, by the kind of caller (`user`, `ip`, `none`).
    pub rejections: Counters,
}

/// The fallback service of the gateway's router.
pub fn service(
    edge: Arc<Edge>,
) -> impl tower::Service<
    Request<axum::body::Body>,
    Response = Response<tonic::body::Body>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |request: Request<axum::body::Body>| {
        let edge = edge.clone();
        // Boxed here, once: the call's future is a few KB, and the router and server layers above
        // would otherwise move it by value several times per call.
        Box::pin(async move { Ok::<_, Infallible>(edge.handle(request).await) })
    })
}

/// The unsubscribe link's path (served by Comm).
pub const MAIL_LINK: &str = "/email/unsubscribe";

/// Anyone may follow an unsubscribe link (the token in it is signed), rate-limited per address.
static MAIL_LINK_RULE: Rule = Rule { permission: String::new(), scope: Scope::Public };

impl Edge {
    /// Handles one call; refusals become trailers-only gRPC responses.
    pub async fn handle(&self, request: Request<axum::body::Body>) -> Response<tonic::body::Body> {
        // A reference-counted copy, not a new string: this runs on every call.
        let path = request.uri().path_and_query().cloned();
        match self.forward(request).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(path = path.as_ref().map_or("", |p| p.path()), %error, "Call refused at the edge.");
                tonic::Status::from(error).into_http()
            }
        }
    }

    async fn forward(&self, mut request: Request<axum::body::Body>) -> Result<Response<tonic::body::Body>, EdgeError> {
        let uri = request.uri().clone();
        let path = uri.path();
        let unknown = || EdgeError::UnknownMethod(path.to_owned());
        // The one plain-HTTP path: the unsubscribe link of client-facing mail (a mail client's
        // one-click POST, RFC 8058), public and passed to Comm as it came.
        let link = path == MAIL_LINK;
        let rule = if link { &MAIL_LINK_RULE } else { self.policy.rule(path).ok_or_else(unknown)? };
        let context = if link { "comm" } else { policy::context_of(path).ok_or_else(unknown)? };
        let upstream = self.upstreams.get(context).ok_or_else(unknown)?;

        // Hygiene first: nothing below may read metadata the caller could have forged.
        let requested_brand = match hygiene::strip_internal(request.headers_mut()) {
            None => None,
            Some(value) => Some(
                value.to_str().ok().and_then(|v| Uuid::parse_str(v.trim()).ok()).ok_or(EdgeError::BadBrandHeader)?,
            ),
        };
        let peer = request.extensions().get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr);
        let client_ip = hygiene::client_ip(request.headers(), peer);

        // Authentication: PUBLIC methods need no token (one sent along is not looked at).
        let principal = if rule.scope == Scope::Public {
            None
        } else {
            let token = bearer(request.headers())?;
            Some(self.verifier.verify(token).await?)
        };

        // White-label: the host name names a brand; a token only works on its own brand's (portal)
        // or organization's (staff) domains.
        let host_brand = match hygiene::host(request.headers(), &uri) {
            Some(host) => self.brands.resolve(host).await?,
            None => None,
        };
        if let (Some(principal), Some(hb)) = (&principal, host_brand) {
            let foreign = match principal.kind {
                PrincipalKind::Client => principal.portal.as_ref().is_none_or(|p| p.brand_id != hb.brand_id),
                PrincipalKind::Staff => principal.organization_id != hb.organization_id,
            };
            if foreign {
                return Err(EdgeError::ForeignDomain);
            }
        }

        // Authorization, as declared in the contract.
        let authorized_brand = match (rule.scope, &principal) {
            (Scope::Public, _) | (_, None) => host_brand.map(|b| b.brand_id),
            (Scope::Authenticated, Some(_)) => host_brand.map(|b| b.brand_id),
            (Scope::Organization, Some(p)) => {
                if !p.can(&rule.permission, None) {
                    return Err(EdgeError::PermissionDenied(rule.permission.clone()));
                }
                host_brand.map(|b| b.brand_id)
            }
            (Scope::Brand, Some(p)) => match requested_brand.or(host_brand.map(|b| b.brand_id)) {
                Some(brand) if p.can(&rule.permission, Some(brand)) => Some(brand),
                // A brand the caller may not know exists answers as the services do: NOT_FOUND.
                Some(brand) if !p.may_see_brand(brand) => return Err(EdgeError::BrandNotFound),
                Some(_) => return Err(EdgeError::PermissionDenied(rule.permission.clone())),
                // The brand is in the body, which the gateway does not decode: let the call through
                // if the principal holds the permission on some brand; the service checks the one
                // the body names.
                None if p.brands_with(&rule.permission).is_none_or(|brands| !brands.is_empty()) => None,
                None => return Err(EdgeError::PermissionDenied(rule.permission.clone())),
            },
        };
        let organization = principal.as_ref().map(|p| p.organization_id).or(host_brand.map(|b| b.organization_id));

        self.rate_limit(principal.as_ref().map(|p| p.user_id), client_ip, organization).await?;

        // What the upstream may trust: set here, after every inbound x-sentra-* was removed.
        let headers = request.headers_mut();
        if let Some(value) = authorized_brand.and_then(uuid_header) {
            headers.insert(BRAND_HEADER, value);
        }
        if let Some(value) = organization.and_then(uuid_header) {
            headers.insert(ORGANIZATION_HEADER, value);
        }
        let deadline = hygiene::bound_deadline(headers, &self.deadlines);

        // The upstream's span is a child of this hop's client span.
        let (span, call) = sentra_runtime::context::client_call(path);
        call.inject(headers);

        let oversize = Oversize::default();
        // A form body is not gRPC-framed; it is small, and Comm reads only its query.
        let max = if link { usize::MAX } else { self.settings.max_message_bytes };
        let request = request.map(|body| hygiene::limit_messages(body, max, oversize.clone()));
        match tokio::time::timeout(deadline, upstream.send(request)).instrument(span).await {
            Err(_) => Err(EdgeError::DeadlineExceeded),
            Ok(Ok(response)) => Ok(response.map(tonic::body::Body::new)),
            Ok(Err(error)) => Err(match oversize.get() {
                Some(size) => EdgeError::MessageTooLarge { size, max },
                None => EdgeError::Upstream { context: context.to_owned(), detail: error_chain(&error) },
            }),
        }
    }

    /// Per principal (or per IP without one) and per tenant, in one atomic check.
    async fn rate_limit(
        &self,
        user: Option<Uuid>,
        ip: Option<std::net::IpAddr>,
        organization: Option<Uuid>,
    ) -> Result<(), EdgeError> {
        let caller = match (user, ip) {
            (Some(user), _) => Some(Bucket { subject: Subject::User(user), rate: self.limits.user }),
            (None, Some(ip)) => Some(Bucket { subject: Subject::Ip(ip), rate: self.limits.ip }),
            (None, None) => None,
        };
        let tenant = organization.map(|org| Bucket { subject: Subject::Tenant(org), rate: self.limits.tenant });
        let decision = match (caller, tenant) {
            (Some(caller), Some(tenant)) => self.limiter.check(&[caller, tenant]).await,
            (Some(one), None) | (None, Some(one)) => self.limiter.check(&[one]).await,
            (None, None) => Ok(Decision::Allow),
        };
        match decision {
            Ok(Decision::Allow) => Ok(()),
            Ok(Decision::Deny(wait)) => {
                let caller = match (user, ip) {
                    (Some(_), _) => "user",
                    (None, Some(_)) => "ip",
                    (None, None) => "none",
                };
                self.rejections.get_or_create(&vec![("caller", caller.to_owned())]).inc();
                Err(EdgeError::RateLimited(wait))
            }
            // Redis down: signed-in users keep working (their tokens were verified, and an outage of
            // a counter should not become an outage of the product); anonymous calls (login,
            // refresh, sign-up) are refused, because the limiter is their brute-force protection.
            Err(error) if user.is_some() => {
                tracing::warn!(%error, "Rate limiter unavailable; letting an authenticated call through.");
                Ok(())
            }
            Err(error) => {
                tracing::warn!(%error, "Rate limiter unavailable; refusing an anonymous call.");
                Err(EdgeError::LimiterDown)
            }
        }
    }
}

/// A UUID as a header value, formatted on the stack (hex digits and dashes: always valid).
fn uuid_header(id: Uuid) -> Option<HeaderValue> {
    let mut buffer = Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buffer)).ok()
}

/// The bearer token of the call, or UNAUTHENTICATED.
fn bearer(headers: &http::HeaderMap) -> Result<&str, AuthError> {
    let value = headers.get(http::header::AUTHORIZATION).ok_or(AuthError::MissingToken)?;
    let value = value.to_str().map_err(|_| AuthError::InvalidToken)?;
    match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(AuthError::InvalidToken),
    }
}
