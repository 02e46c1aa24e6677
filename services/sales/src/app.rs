//! The Sales application: authorization, then commands on aggregates through the event store.
//!
//! Rules of access (documented in the contract):
//! - every record belongs to the caller's organization (the event store's tenant); another
//!   organization's record is NOT_FOUND;
//! - rights come from `sentra-auth` on the record's brand; owners and admins hold every right in
//!   their organization's brands (Tenancy confirms the brand is theirs);
//! - agents change only leads assigned to them or unassigned ones; managers (and owners/admins)
//!   change every lead of the brand and (re)assign leads to agents or managers of the brand;
//! - portal clients read only their own client's orders.
//!
//! Commands are decided on the current state and appended with that state's version as the
//! expected version, so a concurrent change makes one of them ABORTED. A lead conversion writes
//! the client and the lead in one transaction.

use std::sync::Arc;

use cqrs_es::Aggregate;
use sentra_auth::{BrandRole, Caller, permissions as perm};
use sentra_event_store::{EventStore, EventStoreError, Loaded, RecordedEvent};
use sentra_kernel::replay::{EventQuery, EventReader};
use sentra_kernel::{Kernel, check_etag};

use crate::queries;
use crate::timeline::LeadTimelineProjection;
use crate::watch::{LeadWatch, PipelineWatch};
use chrono::{DateTime, Utc};
use sentra_event_store::Projection as _;
use uuid::Uuid;

use crate::commands::{CreateLead, UpdateLead};
use crate::domain::client::{Client, ClientCommand};
use crate::domain::lead::{Lead, LeadCommand, LeadEvent};
use crate::domain::money::LineAmounts;
use crate::domain::order::{Line, Order, OrderCommand};
use crate::error::SalesError;
use sentra_directory::Directory;

type Result<T> = std::result::Result<T, SalesError>;

/// Namespace of ids derived from request ids (idempotent creates).
const IDS: Uuid = Uuid::from_u128(0x5e47_7a00_5a1e_4000_8000_0000_0000_0001);

/// Manager-level on `brand`: owner, admin, or manager of the brand.
fn manages(who: &Caller, brand: Uuid) -> bool {
    who.principal.is_org_admin() || who.principal.brand_roles.get(&brand) == Some(&BrandRole::Manager)
}

/// The Sales application service, on the shared application kernel.
#[derive(Clone)]
pub struct Sales {
    kernel: Kernel,
    brands: Arc<Directory>,
    watch: PipelineWatch,
}

/// Decides `command` on `loaded` and returns the events (applied to `loaded.state`).
async fn decide<A: Aggregate<Services = ()>>(
    loaded: &mut Loaded<A>,
    command: A::Command,
) -> std::result::Result<Vec<A::Event>, A::Error> {
    sentra_event_store::decide(&mut loaded.state, command, &()).await
}

impl Sales {
    /// The service over `store`, asking Tenancy through `brands`.
    pub fn new(store: EventStore, brands: Arc<Directory>) -> Self {
        Self {
            kernel: Kernel::new(store, brands.clone(), IDS, "system:sales"),
            brands,
            watch: PipelineWatch::default(),
        }
    }

    /// The fan-out of live lead changes; the application runs its feed follower.
    pub fn pipeline_watch(&self) -> &PipelineWatch {
        &self.watch
    }

    /// Starts replaying the organization's Sales events for an analyst (see
    /// [`sentra_kernel::replay`]).
    pub async fn read_events(&self, who: &Caller, query: EventQuery) -> Result<EventReader> {
        self.kernel.read_events(who, query).await
    }

    /// Starts watching changes to the leads the caller may read (of `brand` only, if given).
    pub async fn watch_leads(&self, who: &Caller, brand: Option<Uuid>) -> Result<LeadWatch> {
        let brands = self.readable_brands(who, perm::LEAD_READ, brand).await?;
        Ok(LeadWatch::new(self.watch.subscribe(), who.tenant(), brands))
    }

    /// The event store (queries read its pool).
    pub fn store(&self) -> &EventStore {
        self.kernel.store()
    }

    async fn authorize(&self, who: &Caller, permission: &str, brand: Uuid) -> Result<()> {
        self.kernel.authorize(who, permission, brand).await
    }

    async fn load<A: Aggregate>(&self, who: &Caller, id: Uuid, what: &'static str) -> Result<Loaded<A>> {
        self.kernel.load(who, id, what).await
    }

    async fn commit<A: Aggregate>(
        &self,
        who: &Caller,
        loaded: &mut Loaded<A>,
        events: Vec<A::Event>,
        request_id: Option<String>,
    ) -> Result<()> {
        self.kernel.commit(Some(who), loaded, events, request_id).await
    }

    // ---- leads --------------------------------------------------------------------------

    /// A lead the caller may read.
    pub async fn lead(&self, who: &Caller, id: Uuid) -> Result<Loaded<Lead>> {
        let lead = self.load::<Lead>(who, id, "lead").await?;
        self.authorize(who, perm::LEAD_READ, lead.state.brand_id).await?;
        Ok(lead)
    }

    /// Every event of a lead the caller may read, in order: one read of the stream, whose first
    /// event names the brand to authorize (not a load of the lead and then the same stream).
    pub async fn lead_history(&self, who: &Caller, id: Uuid) -> Result<Vec<RecordedEvent>> {
        let events = match self.store().read_stream(who.tenant(), "lead", &id.to_string()).await {
            Ok(events) => events,
            Err(EventStoreError::TenantMismatch) => return Err(SalesError::NotFound("lead")),
            Err(other) => return Err(other.into()),
        };
        let Some(first) = events.first() else { return Err(SalesError::NotFound("lead")) };
        let LeadEvent::Created { brand_id, .. } = first.decode::<LeadEvent>().map_err(SalesError::internal)? else {
            return Err(SalesError::corrupt("a lead stream that does not start with created"));
        };
        self.authorize(who, perm::LEAD_READ, brand_id).await?;
        Ok(events)
    }

    /// A lead the caller may change (agents: only theirs or unassigned).
    async fn lead_for_change(&self, who: &Caller, id: Uuid, expected: Option<u64>) -> Result<Loaded<Lead>> {
        let lead = self.load::<Lead>(who, id, "lead").await?;
        self.authorize(who, perm::LEAD_WRITE, lead.state.brand_id).await?;
        if !manages(who, lead.state.brand_id) && lead.state.assignee_id.is_some_and(|a| a != who.principal.user_id) {
            return Err(SalesError::PermissionDenied("agents change only leads assigned to them".into()));
        }
        check_etag(expected, lead.version)?;
        Ok(lead)
    }

    /// Creates a lead; a retry with the same request id returns the first lead.
    pub async fn create_lead(&self, who: &Caller, cmd: CreateLead) -> Result<Loaded<Lead>> {
        self.authorize(who, perm::LEAD_WRITE, cmd.brand_id).await?;
        let (id, mut loaded) = self.kernel.create_target::<Lead>(who, "lead", cmd.request_id.as_deref()).await?;
        if loaded.version > 0 {
            // The same request was already carried out: answer as the first time.
            return Ok(loaded);
        }
        let assignee = (!manages(who, cmd.brand_id)).then_some(who.principal.user_id);
        let command = LeadCommand::Create {
            brand_id: cmd.brand_id,
            contact: cmd.contact,
            source: cmd.source,
            estimated_value: cmd.estimated_value,
            notes: cmd.notes,
            assignee_id: assignee,
        };
        let events = decide(&mut loaded, command).await?;
        match self.commit(who, &mut loaded, events, cmd.request_id.map(|r| format!("lead:{r}"))).await {
            // A concurrent retry of the same request won the race: return its lead.
            Err(SalesError::Stale) => self.load::<Lead>(who, id, "lead").await,
            Err(other) => Err(other),
            Ok(()) => Ok(loaded),
        }
    }

    /// Runs `command` on a lead the caller may change.
    pub async fn change_lead(
        &self,
        who: &Caller,
        id: Uuid,
        expected: Option<u64>,
        command: LeadCommand,
    ) -> Result<Loaded<Lead>> {
        let mut lead = self.lead_for_change(who, id, expected).await?;
        let events = decide(&mut lead, command).await?;
        self.commit(who, &mut lead, events, None).await?;
        Ok(lead)
    }

    /// Updates a lead's data (masked fields only).
    pub async fn update_lead(&self, who: &Caller, cmd: UpdateLead) -> Result<Loaded<Lead>> {
        let mut lead = self.lead_for_change(who, cmd.id, cmd.expected).await?;
        let s = &lead.state;
        let (contact, source, estimated_value, notes) =
            cmd.merge(&s.contact, &s.source, &s.estimated_value, &s.notes)?;
        let events = decide(&mut lead, LeadCommand::Update { contact, source, estimated_value, notes }).await?;
        self.commit(who, &mut lead, events, None).await?;
        Ok(lead)
    }

    /// Assigns a lead to an agent or manager of its brand (managers only).
    pub async fn assign_lead(&self, who: &Caller, id: Uuid, to: Uuid, expected: Option<u64>) -> Result<Loaded<Lead>> {
        let mut lead = self.load::<Lead>(who, id, "lead").await?;
        self.authorize(who, perm::LEAD_ASSIGN, lead.state.brand_id).await?;
        check_etag(expected, lead.version)?;
        use sentra_proto::sentra::tenancy::v1::BrandRole as Role;
        let works = [Role::Agent, Role::Manager];
        if !self.brands.has_role(&who.token, lead.state.brand_id, to, &works).await? {
            return Err(SalesError::FailedPrecondition {
                reason: "ASSIGNEE_NOT_ON_BRAND",
                message: "the assignee is not an agent or manager of the lead's brand".into(),
            });
        }
        let events = decide(&mut lead, LeadCommand::Assign { to }).await?;
        self.commit(who, &mut lead, events, None).await?;
        Ok(lead)
    }

    /// Converts a lead into a new client or into an existing client of its brand, atomically.
    pub async fn convert_lead(
        &self,
        who: &Caller,
        id: Uuid,
        existing: Option<Uuid>,
        expected: Option<u64>,
    ) -> Result<(Loaded<Lead>, Loaded<Client>)> {
        let mut lead = self.lead_for_change(who, id, expected).await?;
        self.authorize(who, perm::CLIENT_WRITE, lead.state.brand_id).await?;
        let (mut client, client_command) = match existing {
            Some(client_id) => {
                let client = self.load::<Client>(who, client_id, "client").await?;
                (client, ClientCommand::MergeLead { brand_id: lead.state.brand_id, lead_id: id })
            }
            None => {
                // Derived from the lead, so a retried conversion cannot create a second client.
                let client_id = self.kernel.id_of("client-of", id);
                let client = self.store().load::<Client>(who.tenant(), &client_id.to_string()).await?;
                let contact = lead.state.contact.clone();
                (client, ClientCommand::Create { brand_id: lead.state.brand_id, contact, lead_id: id })
            }
        };
        let client_id: Uuid = client.aggregate_id.parse().map_err(SalesError::internal)?;
        let client_events = decide(&mut client, client_command).await?;
        let lead_events = decide(&mut lead, LeadCommand::Convert { client_id }).await?;

        let meta = self.kernel.metadata(Some(who), None);
        let mut tx = self.store().pool().begin().await?;
        let client_out = self
            .store()
            .append_in(
                &mut tx,
                who.tenant(),
                Client::TYPE,
                &client.aggregate_id,
                client.version,
                sentra_event_store::new_events(&client_events)?,
                &meta,
            )
            .await?;
        let lead_out = self
            .store()
            .append_in(
                &mut tx,
                who.tenant(),
                Lead::TYPE,
                &lead.aggregate_id,
                lead.version,
                sentra_event_store::new_events(&lead_events)?,
                &meta,
            )
            .await?;
        tx.commit().await?;
        client.version = client_out.version;
        lead.version = lead_out.version;
        Ok((lead, client))
    }

    // ---- clients ------------------------------------------------------------------------

    /// A client the caller may read (portal clients: only their own).
    pub async fn client(&self, who: &Caller, id: Uuid) -> Result<Loaded<Client>> {
        let client = self.load::<Client>(who, id, "client").await?;
        self.authorize(who, perm::CLIENT_READ, client.state.brand_id).await?;
        Ok(client)
    }

    /// Runs `command` on a client the caller may change.
    pub async fn change_client(
        &self,
        who: &Caller,
        id: Uuid,
        expected: Option<u64>,
        command: impl FnOnce(&Client) -> Result<ClientCommand>,
    ) -> Result<Loaded<Client>> {
        let mut client = self.load::<Client>(who, id, "client").await?;
        self.authorize(who, perm::CLIENT_WRITE, client.state.brand_id).await?;
        check_etag(expected, client.version)?;
        let command = command(&client.state)?;
        let events = decide(&mut client, command).await?;
        self.commit(who, &mut client, events, None).await?;
        Ok(client)
    }

    // ---- orders -------------------------------------------------------------------------

    /// Drafts an order for a client; a retry with the same request id returns the first order.
    pub async fn create_order(
        &self,
        who: &Caller,
        client_id: Uuid,
        currency: String,
        lines: Vec<Line>,
        totals: LineAmounts,
        request_id: Option<String>,
    ) -> Result<Loaded<Order>> {
        let client = self.load::<Client>(who, client_id, "client").await?;
        self.authorize(who, perm::ORDER_WRITE, client.state.brand_id).await?;
        if client.state.archived {
            return Err(SalesError::FailedPrecondition {
                reason: "CLIENT_ARCHIVED",
                message: "an archived client cannot order".into(),
            });
        }
        let (id, mut order) = self.kernel.create_target::<Order>(who, "order", request_id.as_deref()).await?;
        if order.version > 0 {
            return Ok(order);
        }
        let command = OrderCommand::Create { brand_id: client.state.brand_id, client_id, currency, lines, totals };
        let events = decide(&mut order, command).await?;
        match self.commit(who, &mut order, events, request_id.map(|r| format!("order:{r}"))).await {
            Err(SalesError::Stale) => self.load::<Order>(who, id, "order").await,
            Err(other) => Err(other),
            Ok(()) => Ok(order),
        }
    }

    /// An order the caller may read; portal clients only see their own client's orders.
    pub async fn order(&self, who: &Caller, id: Uuid) -> Result<Loaded<Order>> {
        let order = self.load::<Order>(who, id, "order").await?;
        if let Some(portal) = &who.principal.portal
            && (portal.client_id != order.state.client_id || portal.brand_id != order.state.brand_id)
        {
            return Err(SalesError::NotFound("order"));
        }
        self.authorize(who, perm::ORDER_READ, order.state.brand_id).await?;
        Ok(order)
    }

    /// Runs the command `command` decides from the current order, if the caller may change it.
    pub async fn change_order(
        &self,
        who: &Caller,
        id: Uuid,
        expected: Option<u64>,
        command: impl FnOnce(&Order) -> Result<OrderCommand>,
    ) -> Result<Loaded<Order>> {
        let mut order = self.load::<Order>(who, id, "order").await?;
        self.authorize(who, perm::ORDER_WRITE, order.state.brand_id).await?;
        check_etag(expected, order.version)?;
        let command = command(&order.state)?;
        let events = decide(&mut order, command).await?;
        self.commit(who, &mut order, events, None).await?;
        Ok(order)
    }

    /// The pipeline summary (see [`queries::pipeline_summary`]) once the timeline projection has
    /// applied every event committed before the call, so "now" includes the caller's own writes
    /// and "as of" any instant before the call is complete.
    pub async fn pipeline_summary(
        &self,
        who: &Caller,
        brand: Option<Uuid>,
        period_start: Option<DateTime<Utc>>,
        as_of: DateTime<Utc>,
    ) -> Result<queries::Summary> {
        let brands = self.readable_brands(who, perm::PIPELINE_READ, brand).await?;
        self.kernel.caught_up(LeadTimelineProjection.name(), "pipeline").await?;
        queries::pipeline_summary(self.store().pool(), who.tenant(), &brands, period_start, as_of).await
    }

    /// The brands the caller may use `permission` on, narrowed to `brand` if given.
    pub async fn readable_brands(
        &self,
        who: &Caller,
        permission: &str,
        brand: Option<Uuid>,
    ) -> Result<Option<Vec<Uuid>>> {
        self.kernel.readable_brands(who, permission, brand).await
    }
}
