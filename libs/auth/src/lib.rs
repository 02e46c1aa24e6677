//! Identity for the Sentra mesh: the access tokens Tenancy issues, the [`Principal`] they stand
//! for, the permission matrix behind [`Principal::can`], and a tower layer for tonic servers.
//!
//! # How it fits
//!
//! Tenancy signs a short-lived access JWT (EdDSA over Ed25519, `kid` in the header) with a
//! [`SigningKey`] at login and refresh, and publishes the public halves ([`PublicKey`]) through
//! `GetSigningKeys`. Every service builds a [`Verifier`] over a [`KeySource`] (Tenancy reads its
//! own key table; others call `GetSigningKeys`), installs [`AuthLayer`] on its tonic server, and
//! in each handler asks:
//!
//! ```
//! # use sentra_auth::{permissions, principal};
//! # fn handler(request: tonic::Request<()>, brand_id: uuid::Uuid) -> Result<(), tonic::Status> {
//! let caller = principal(&request)?; // UNAUTHENTICATED without a token
//! caller.require(permissions::LEAD_WRITE, Some(brand_id))?; // PERMISSION_DENIED
//! # Ok(()) }
//! ```
//!
//! Tokens are refused (UNAUTHENTICATED, one message for every reason) when the algorithm is not
//! EdDSA, the `kid` is unknown, the signature does not match, `exp` has passed (beyond a 5 s
//! leeway), `iss` is not `sentra`, or the claims do not describe a well-formed staff or client
//! principal. An unknown `kid` makes the verifier refetch its keys, at most once per 5 s.
//! [`Verifier::with_token_cache`] lets a verifier remember tokens that passed, so a token seen
//! again skips the signature check (never the expiry check, and not across a change of the key
//! set); the gateway, which sees every call of every session, turns it on.
//! [`Verifier::with_sessions`] makes revocation take effect within seconds: a token stands only
//! while the session version it carries (claim `sv`) is its subject's current one, which Tenancy
//! bumps whenever the subject's rights change (see [`SessionSource`]).
//!
//! # Layout
//!
//! - [`roles`]: [`OrgRole`], [`BrandRole`], [`PrincipalKind`].
//! - [`permissions`]: one constant per permission and the [`permissions::MATRIX`].
//! - `principal`: [`Principal`], [`PortalScope`], [`principal()`].
//! - `token`: [`Claims`], [`SigningKey`], [`PublicKey`].
//! - `verifier`: [`Verifier`], [`KeySource`], [`StaticKeys`].
//! - `layer`: [`AuthLayer`], [`AuthService`].
//! - `error`: [`AuthError`] and its mapping to `tonic::Status`.
//!
//! # Permission matrix
//!
//! Permissions are named `<context>.<resource>.<action>`. Organization-scoped ones are checked
//! without a brand; brand-scoped ones on the brand a request names.
//!
//! - Org `owner` and `admin` hold every permission, on every brand of their organization.
//! - Org `member` holds only `tenancy.organization.read` and `tenancy.user.read` org-wide; everything
//!   brand-scoped comes from a brand role, and a role on one brand grants nothing on another.
//! - Brand `manager` holds every brand-scoped permission; `agent` does the sales work; `finance`
//!   the money; `viewer` reads everything on the brand and changes nothing.
//! - Portal clients hold `tenancy.brand.read`, `sales.order.read` and `finance.invoice.read` on their
//!   own brand only; services further restrict them to their own client id
//!   ([`PortalScope::client_id`]).
//!
// The table below is `permissions::matrix_markdown()`; a test fails when they differ.
//! | Permission | Scope | owner | admin | member | analyst | manager | agent | finance | viewer | portal client |
//! | --- | --- | :-: | :-: | :-: | :-: | :-: | :-: | :-: | :-: | :-: |
//! | `tenancy.organization.read` | organization | ✓ | ✓ | ✓ | ✓ |   |   |   |   |   |
//! | `tenancy.organization.write` | organization | ✓ | ✓ |   |   |   |   |   |   |   |
//! | `tenancy.brand.create` | organization | ✓ | ✓ |   |   |   |   |   |   |   |
//! | `tenancy.user.read` | organization | ✓ | ✓ | ✓ | ✓ |   |   |   |   |   |
//! | `tenancy.user.write` | organization | ✓ | ✓ |   |   |   |   |   |   |   |
//! | `analytics.events.read` | organization | ✓ | ✓ |   | ✓ |   |   |   |   |   |
//! | `comm.mailbox.read` | organization | ✓ | ✓ | ✓ | ✓ |   |   |   |   |   |
//! | `comm.mailbox.write` | organization | ✓ | ✓ | ✓ | ✓ |   |   |   |   |   |
//! | `comm.notification.read` | organization | ✓ | ✓ | ✓ | ✓ |   |   |   |   |   |
//! | `comm.webhook.read` | organization | ✓ | ✓ |   |   |   |   |   |   |   |
//! | `comm.webhook.write` | organization | ✓ | ✓ |   |   |   |   |   |   |   |
//! | `tenancy.brand.read` | brand | ✓ | ✓ |   |   | ✓ | ✓ | ✓ | ✓ | ✓ |
//! | `tenancy.brand.write` | brand | ✓ | ✓ |   |   | ✓ |   |   |   |   |
//! | `tenancy.brand_access.read` | brand | ✓ | ✓ |   |   | ✓ | ✓ | ✓ | ✓ |   |
//! | `tenancy.brand_access.write` | brand | ✓ | ✓ |   |   | ✓ |   |   |   |   |
//! | `tenancy.portal_user.write` | brand | ✓ | ✓ |   |   | ✓ | ✓ |   |   |   |
//! | `sales.lead.read` | brand | ✓ | ✓ |   |   | ✓ | ✓ |   | ✓ |   |
//! | `sales.lead.write` | brand | ✓ | ✓ |   |   | ✓ | ✓ |   |   |   |
//! | `sales.lead.assign` | brand | ✓ | ✓ |   |   | ✓ |   |   |   |   |
//! | `sales.client.read` | brand | ✓ | ✓ |   |   | ✓ | ✓ | ✓ | ✓ |   |
//! | `sales.client.write` | brand | ✓ | ✓ |   |   | ✓ | ✓ |   |   |   |
//! | `sales.order.read` | brand | ✓ | ✓ |   |   | ✓ | ✓ | ✓ | ✓ | ✓ |
//! | `sales.order.write` | brand | ✓ | ✓ |   |   | ✓ | ✓ |   |   |   |
//! | `sales.pipeline.read` | brand | ✓ | ✓ |   |   | ✓ | ✓ |   | ✓ |   |
//! | `finance.invoice.read` | brand | ✓ | ✓ |   |   | ✓ | ✓ | ✓ | ✓ | ✓ |
//! | `finance.invoice.write` | brand | ✓ | ✓ |   |   | ✓ |   | ✓ |   |   |
//! | `finance.payment.write` | brand | ✓ | ✓ |   |   | ✓ |   | ✓ |   |   |
//! | `finance.receivables.read` | brand | ✓ | ✓ |   |   | ✓ |   | ✓ | ✓ |   |
//! | `comm.alias.read` | brand | ✓ | ✓ |   |   | ✓ | ✓ | ✓ | ✓ |   |
//! | `comm.alias.write` | brand | ✓ | ✓ |   |   | ✓ |   |   |   |   |
//! | `comm.thread.read` | brand | ✓ | ✓ |   |   | ✓ | ✓ | ✓ | ✓ |   |
//! | `comm.email.send` | brand | ✓ | ✓ |   |   | ✓ | ✓ | ✓ |   |   |
//! | `comm.automation.read` | brand | ✓ | ✓ |   |   | ✓ | ✓ | ✓ | ✓ |   |
//! | `comm.automation.write` | brand | ✓ | ✓ |   |   | ✓ |   |   |   |   |

pub mod permissions;
pub mod roles;

mod caller;
mod error;
mod layer;
mod principal;
mod sessions;
mod tenancy_keys;
mod token;
mod verifier;

pub use caller::Caller;
pub use error::AuthError;
pub use layer::{AuthLayer, AuthService};
pub use principal::{PortalScope, Principal, principal};
pub use roles::{BrandRole, OrgRole, PrincipalKind};
pub use sessions::{DEFAULT_SESSION_TTL, SessionSource, TenancySessions};
pub use tenancy_keys::TenancyKeys;
pub use token::{Claims, ISSUER, PublicKey, SigningKey};
pub use verifier::{DEFAULT_LEEWAY_SECS, DEFAULT_MIN_REFETCH_INTERVAL, KeySource, StaticKeys, Verifier};
