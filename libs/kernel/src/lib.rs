//! The application kernel of Sentra's event-sourced services (Sales and Finance): the steps every
//! command and query takes, written once, so the services cannot drift apart.
//!
//! - [`Kernel::authorize`] ([`authorize`] for services without an event store): the access rule
//!   on a brand (below).
//! - [`Kernel::readable_brands`]: the brands a list may show.
//! - [`Kernel::load`]: an aggregate of the caller's organization, or NOT_FOUND.
//! - [`Kernel::commit`] with [`Kernel::metadata`]: append what a decision produced, with the
//!   loaded version as the expected one (a concurrent change is [`AppError::Stale`]).
//! - [`Kernel::derived_id`]: ids derived from request ids, for idempotent creates.
//! - [`check_etag`]: a stale etag is [`AppError::Stale`].
//! - [`Kernel::read_events`] ([`replay`]): the analysts' `ReadEvents` replay of the organization's
//!   events as public integration events, personal data redacted for analysts.
//! - [`AppError`]: the one error type of both services, turned into statuses by the runtime's
//!   one error table (`sentra_runtime::failure`).
//!
//! # The access rule
//!
//! What a caller may not know exists is NOT_FOUND; what they can see but may not do is
//! PERMISSION_DENIED:
//! - a brand is visible to a portal client when it is their portal's brand, to a staff member
//!   when they hold a role on it (tokens carry roles on live brands only), and to an owner or
//!   admin when Tenancy confirms it is their organization's;
//! - a record is visible when it is of the caller's organization (the event store's tenant) and
//!   its brand is visible;
//! - on a visible brand, a missing permission is PERMISSION_DENIED;
//! - an archived brand can still be read (its history), but nothing in it changes:
//!   FAILED_PRECONDITION `BRAND_ARCHIVED`.

mod error;
pub mod replay;

pub use error::{AppError, Result};

use std::sync::Arc;

use cqrs_es::Aggregate;
use sentra_auth::Caller;
use sentra_directory::{BrandInfo, Directory};
use sentra_event_store::{EventMetadata, EventStore, EventStoreError, Loaded};
use uuid::Uuid;

/// The kernel of one service: its event store, Tenancy, and its id namespace.
#[derive(Clone)]
pub struct Kernel {
    store: EventStore,
    directory: Arc<Directory>,
    ids: Uuid,
    system: &'static str,
}

/// Refuses a stale etag (`None`: the caller asked for no check).
pub fn check_etag(expected: Option<u64>, actual: u64) -> Result<()> {
    match expected {
        Some(v) if v != actual => Err(AppError::Stale),
        _ => Ok(()),
    }
}

/// Whether a permission changes things (`…write`, `…assign`) rather than reads them.
fn changes(permission: &str) -> bool {
    !permission.ends_with(".read")
}

/// The access rule (see the crate docs) for `permission` on `brand`, asking `directory` about
/// brands an owner or admin names; for services that keep no event store (Comm) as for the
/// kernel's own [`Kernel::authorize`].
pub async fn authorize(directory: &Directory, who: &Caller, permission: &str, brand: Uuid) -> Result<()> {
    let principal = &who.principal;
    if !principal.may_see_brand(brand) {
        return Err(AppError::NotFound("brand"));
    }
    if principal.is_org_admin() {
        // Any brand id passes an admin's role check: only Tenancy knows whether it is theirs.
        let info = directory.brand(&who.token, who.tenant(), brand).await?;
        if info.archived && changes(permission) {
            return Err(AppError::brand_archived());
        }
    }
    if !principal.can(permission, Some(brand)) {
        return Err(AppError::PermissionDenied(format!("missing permission {permission} on this brand")));
    }
    Ok(())
}

/// How long a read waits for its projection to catch up before answering UNAVAILABLE.
pub const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

impl Kernel {
    /// A kernel over `store`, asking Tenancy through `directory`. `ids` is the namespace of the
    /// service's derived ids; `system` names the actor of commands no person made (a job, a
    /// consumer), e.g. `system:finance`.
    pub fn new(store: EventStore, directory: Arc<Directory>, ids: Uuid, system: &'static str) -> Self {
        Self { store, directory, ids, system }
    }

    /// The event store.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// The brand's settings, if the caller's organization owns it.
    pub async fn brand(&self, who: &Caller, brand: Uuid) -> Result<BrandInfo> {
        Ok(self.directory.brand(&who.token, who.tenant(), brand).await?)
    }

    /// The access rule (see the crate docs) for `permission` on `brand`.
    pub async fn authorize(&self, who: &Caller, permission: &str, brand: Uuid) -> Result<()> {
        authorize(&self.directory, who, permission, brand).await
    }

    /// The brands a list may show: the one asked for (authorized), or every brand the caller
    /// holds `permission` on (`None`: every brand of the organization).
    pub async fn readable_brands(
        &self,
        who: &Caller,
        permission: &str,
        brand: Option<Uuid>,
    ) -> Result<Option<Vec<Uuid>>> {
        match brand {
            Some(brand) => {
                self.authorize(who, permission, brand).await?;
                Ok(Some(vec![brand]))
            }
            None => Ok(who.principal.brands_with(permission)),
        }
    }

    /// Waits (up to [`CATCH_UP_WAIT`]) until `projection` has applied every event committed now,
    /// so a query over its table includes the caller's own writes; [`AppError::Behind`] (`what`
    /// names the read model) if it does not get there in time.
    pub async fn caught_up(&self, projection: &str, what: &'static str) -> Result<()> {
        let feed = self.store.feed();
        let head = feed.latest().await?;
        let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
        while feed.checkpoint(projection).await? < head {
            if tokio::time::Instant::now() >= deadline {
                return Err(AppError::Behind(what));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// The aggregate `id` of the caller's organization, or NOT_FOUND (`what` names it).
    pub async fn load<A: Aggregate>(&self, who: &Caller, id: Uuid, what: &'static str) -> Result<Loaded<A>> {
        match self.store.load::<A>(who.tenant(), &id.to_string()).await {
            Ok(loaded) if loaded.version > 0 => Ok(loaded),
            Ok(_) | Err(EventStoreError::TenantMismatch) => Err(AppError::NotFound(what)),
            Err(other) => Err(other.into()),
        }
    }

    /// The aggregate a create targets. With a request id: the one derived from it, loaded, so a
    /// retry finds what the first call made (version > 0). Without: a fresh UUIDv7, which nothing
    /// can have written to yet, so nothing is read (a create costs one append, not a read first).
    pub async fn create_target<A: Aggregate>(
        &self,
        who: &Caller,
        what: &'static str,
        request_id: Option<&str>,
    ) -> Result<(Uuid, Loaded<A>)> {
        let Some(request_id) = request_id else {
            let id = Uuid::now_v7();
            let fresh = Loaded {
                aggregate_id: id.to_string(),
                tenant_id: who.tenant(),
                state: A::default(),
                version: 0,
                snapshot_version: None,
            };
            return Ok((id, fresh));
        };
        let id = self.derived_id(who.tenant(), what, request_id);
        match self.store.load::<A>(who.tenant(), &id.to_string()).await {
            Ok(loaded) => Ok((id, loaded)),
            Err(EventStoreError::TenantMismatch) => Err(AppError::NotFound(what)),
            Err(other) => Err(other.into()),
        }
    }

    /// Event metadata of a command by `who` (`None`: the system) with its request id.
    pub fn metadata(&self, who: Option<&Caller>, request_id: Option<String>) -> EventMetadata {
        let ctx = sentra_runtime::context::RequestContext::current();
        EventMetadata {
            correlation_id: ctx.as_ref().map(|c| c.request_id.clone()),
            actor: Some(who.map_or_else(|| self.system.to_owned(), |w| w.principal.user_id.to_string())),
            request_id,
            traceparent: ctx.as_ref().map(sentra_runtime::context::RequestContext::traceparent),
            ..EventMetadata::default()
        }
    }

    /// Appends `events` decided on `loaded`, expecting its version; applies them to it.
    pub async fn commit<A: Aggregate>(
        &self,
        who: Option<&Caller>,
        loaded: &mut Loaded<A>,
        events: Vec<A::Event>,
        request_id: Option<String>,
    ) -> Result<()> {
        self.store.commit(loaded, events, &self.metadata(who, request_id)).await?;
        Ok(())
    }

    /// An id derived from a request id: the same request retried names the same aggregate, so a
    /// create happens once. Scoped by tenant and kind (`what`).
    pub fn derived_id(&self, tenant: Uuid, what: &str, request_id: &str) -> Uuid {
        Uuid::new_v5(&self.ids, format!("{tenant}:{what}:{request_id}").as_bytes())
    }

    /// An id derived from another id (e.g. the invoice of an order), in this service's namespace.
    pub fn id_of(&self, what: &str, id: Uuid) -> Uuid {
        Uuid::new_v5(&self.ids, format!("{what}:{id}").as_bytes())
    }
}
