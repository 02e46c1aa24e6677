//! Notifications for staff: made from events on the bus (Sales' lead events, Comm's own
//! `comm.mailbox.needs_reauth`), kept per (event, recipient) so a redelivered message never
//! notifies twice, honouring each person's channel per kind, and pushed live to open
//! `WatchNotifications` streams.
//!
//! Live delivery: the insert sends `pg_notify('comm_notifications', id)` in its transaction, so
//! every replica hears of a notification once it is committed; each replica's [`Hub`] listens,
//! loads the row and fans it out to its streams (each keeps only its caller's).

use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use futures::Stream;
use sentra_auth::{Caller, permissions as perm};
use sentra_bus::{Envelope, Handler, HandlerError};
use sentra_proto::sentra::comm::v1 as pb;
use sentra_proto::sentra::comm::v1::notification_service_server::NotificationService;
use sentra_proto::sentra::finance::events::v1::InvoiceOverdue;
use sentra_proto::sentra::sales::events::v1::{LeadAssigned, LeadCreated, LeadStageChanged, LeadUpdated};
use sentra_proto::sentra::sales::v1::LeadStage;
use sentra_runtime::wire::timestamp as ts;
use sqlx::{PgConnection, PgPool, Row as _};
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::error::CommError;

/// The routing keys notifications are made from.
pub const ROUTING_KEYS: [&str; 8] = [
    "sales.lead.created",
    "sales.lead.updated",
    "sales.lead.assigned",
    "sales.lead.stage_changed",
    "comm.mailbox.needs_reauth",
    "finance.invoice.overdue",
    "tenancy.brand_access.granted",
    "tenancy.brand_access.revoked",
];

const CHANNEL: &str = "comm_notifications";

/// The kinds, as stored.
fn kind_name(kind: pb::NotificationKind) -> Option<&'static str> {
    match kind {
        pb::NotificationKind::LeadAssigned => Some("lead_assigned"),
        pb::NotificationKind::LeadStageChanged => Some("lead_stage_changed"),
        pb::NotificationKind::MailboxNeedsReauth => Some("mailbox_needs_reauth"),
        pb::NotificationKind::WebhookDisabled => Some("webhook_disabled"),
        pb::NotificationKind::InvoiceOverdue => Some("invoice_overdue"),
        pb::NotificationKind::ReplyReceived => Some("reply_received"),
        pb::NotificationKind::Unspecified => None,
    }
}

fn kind_of(name: &str) -> pb::NotificationKind {
    match name {
        "lead_assigned" => pb::NotificationKind::LeadAssigned,
        "lead_stage_changed" => pb::NotificationKind::LeadStageChanged,
        "mailbox_needs_reauth" => pb::NotificationKind::MailboxNeedsReauth,
        "webhook_disabled" => pb::NotificationKind::WebhookDisabled,
        "invoice_overdue" => pb::NotificationKind::InvoiceOverdue,
        "reply_received" => pb::NotificationKind::ReplyReceived,
        _ => pb::NotificationKind::Unspecified,
    }
}

const KINDS: [pb::NotificationKind; 6] = [
    pb::NotificationKind::LeadAssigned,
    pb::NotificationKind::LeadStageChanged,
    pb::NotificationKind::MailboxNeedsReauth,
    pb::NotificationKind::WebhookDisabled,
    pb::NotificationKind::InvoiceOverdue,
    pb::NotificationKind::ReplyReceived,
];

/// A stored notification.
#[derive(Debug, Clone)]
pub struct Row {
    id: Uuid,
    organization: Uuid,
    user: Uuid,
    kind: String,
    title: String,
    subject: String,
    brand: Option<Uuid>,
    created_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "notification_id, organization_id, user_id, kind, title, subject, brand_id, created_at, read_at";

fn row(r: &sqlx::postgres::PgRow) -> Result<Row, sqlx::Error> {
    Ok(Row {
        id: r.try_get("notification_id")?,
        organization: r.try_get("organization_id")?,
        user: r.try_get("user_id")?,
        kind: r.try_get("kind")?,
        title: r.try_get("title")?,
        subject: r.try_get("subject")?,
        brand: r.try_get("brand_id")?,
        created_at: r.try_get("created_at")?,
        read_at: r.try_get("read_at")?,
    })
}

fn to_pb(r: &Row) -> pb::Notification {
    pb::Notification {
        notification_id: r.id.to_string(),
        kind: kind_of(&r.kind).into(),
        title: r.title.clone(),
        subject: r.subject.clone(),
        brand_id: r.brand.map(|b| b.to_string()).unwrap_or_default(),
        create_time: Some(ts(r.created_at)),
        read_time: r.read_at.map(ts),
    }
}

/// What one event notifies.
pub(crate) struct Notice {
    /// The recipient.
    pub user: Uuid,
    /// The kind (its preference applies).
    pub kind: pb::NotificationKind,
    /// One line for people.
    pub title: String,
    /// What it is about (`leads/{id}`, `webhooks/{id}`...).
    pub subject: String,
    /// The brand, when about a brand's record.
    pub brand: Option<Uuid>,
}

/// Stores `notice` for `event` unless its recipient turned the kind off or already has it, and
/// announces it to the replicas' hubs on commit.
pub(crate) async fn notify(
    tx: &mut PgConnection,
    organization: Uuid,
    event: Uuid,
    notice: Notice,
) -> Result<(), sqlx::Error> {
    let Some(kind) = kind_name(notice.kind) else { return Ok(()) };
    let channel: Option<String> =
        sqlx::query_scalar("SELECT channel FROM notification_preferences WHERE user_id = $1 AND kind = $2")
            .bind(notice.user)
            .bind(kind)
            .fetch_optional(&mut *tx)
            .await?;
    if channel.as_deref() == Some("off") {
        return Ok(());
    }
    let id: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO notifications (notification_id, organization_id, user_id, kind, title, subject, brand_id, \
         event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id, user_id) DO NOTHING RETURNING \
         notification_id",
    )
    .bind(Uuid::now_v7())
    .bind(organization)
    .bind(notice.user)
    .bind(kind)
    .bind(&notice.title)
    .bind(&notice.subject)
    .bind(notice.brand)
    .bind(event)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = id {
        sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(id.to_string()).execute(&mut *tx).await?;
        if channel.as_deref() == Some("email") {
            crate::automation::rules::queue_notification(
                tx,
                organization,
                id,
                notice.user,
                notice.brand,
                &notice.title,
            )
            .await?;
        }
    }
    Ok(())
}

fn stage_label(stage: i32) -> &'static str {
    match LeadStage::try_from(stage).unwrap_or(LeadStage::Unspecified) {
        LeadStage::New => "New",
        LeadStage::Contacted => "Contacted",
        LeadStage::Qualified => "Qualified",
        LeadStage::Proposal => "Proposal",
        LeadStage::Negotiation => "Negotiation",
        LeadStage::Won => "Won",
        LeadStage::Lost => "Lost",
        LeadStage::Unspecified => "another stage",
    }
}

fn uuid(field: &str, value: &str) -> Result<Uuid, HandlerError> {
    Uuid::parse_str(value).map_err(|_| HandlerError::reject(format!("{field} is not a UUID")))
}

/// Turns bus events into notifications (in the inbox's transaction: exactly once).
pub struct Notifier;

#[async_trait::async_trait]
impl Handler for Notifier {
    async fn handle(&self, tx: &mut PgConnection, message: &Envelope) -> Result<(), HandlerError> {
        let org = message.tenant_id;
        let actor = message.metadata.get("actor").and_then(|a| a.as_str()).unwrap_or_default().to_owned();
        let retry = HandlerError::retry;
        match message.routing_key.as_str() {
            "sales.lead.created" => {
                let e: LeadCreated = message.decode().map_err(HandlerError::reject)?;
                let assignee = (!e.assignee_id.is_empty()).then(|| uuid("assignee_id", &e.assignee_id)).transpose()?;
                let contact = e.contact.unwrap_or_default();
                sqlx::query(
                    "INSERT INTO lead_assignees (lead_id, organization_id, brand_id, contact_name, assignee_id, \
                     contact_email) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (lead_id) DO NOTHING",
                )
                .bind(uuid("lead_id", &e.lead_id)?)
                .bind(org)
                .bind(uuid("brand_id", &e.brand_id)?)
                .bind(contact.name)
                .bind(assignee)
                .bind(contact.email.trim().to_lowercase())
                .execute(&mut *tx)
                .await
                .map_err(retry)?;
            }
            "sales.lead.updated" => {
                let e: LeadUpdated = message.decode().map_err(HandlerError::reject)?;
                let contact = e.contact.unwrap_or_default();
                sqlx::query("UPDATE lead_assignees SET contact_name = $2, contact_email = $3 WHERE lead_id = $1")
                    .bind(uuid("lead_id", &e.lead_id)?)
                    .bind(contact.name)
                    .bind(contact.email.trim().to_lowercase())
                    .execute(&mut *tx)
                    .await
                    .map_err(retry)?;
            }
            "sales.lead.assigned" => {
                let e: LeadAssigned = message.decode().map_err(HandlerError::reject)?;
                let lead = uuid("lead_id", &e.lead_id)?;
                let assignee = (!e.assignee_id.is_empty()).then(|| uuid("assignee_id", &e.assignee_id)).transpose()?;
                let known: Option<(Uuid, String)> = sqlx::query_as(
                    "UPDATE lead_assignees SET assignee_id = $2 WHERE lead_id = $1 RETURNING brand_id, contact_name",
                )
                .bind(lead)
                .bind(assignee)
                .fetch_optional(&mut *tx)
                .await
                .map_err(retry)?;
                let Some((brand, name)) = known else {
                    return Err(HandlerError::retry(format!("lead {lead} assigned before its creation arrived")));
                };
                if let Some(user) = assignee.filter(|a| a.to_string() != actor) {
                    let notice = Notice {
                        user,
                        kind: pb::NotificationKind::LeadAssigned,
                        title: format!("{} was assigned to you", if name.is_empty() { "A lead" } else { &name }),
                        subject: format!("leads/{lead}"),
                        brand: Some(brand),
                    };
                    notify(tx, org, message.event_id, notice).await.map_err(retry)?;
                }
            }
            "sales.lead.stage_changed" => {
                let e: LeadStageChanged = message.decode().map_err(HandlerError::reject)?;
                let lead = uuid("lead_id", &e.lead_id)?;
                let known: Option<(Uuid, String, Option<Uuid>)> =
                    sqlx::query_as("SELECT brand_id, contact_name, assignee_id FROM lead_assignees WHERE lead_id = $1")
                        .bind(lead)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(retry)?;
                let Some((brand, name, assignee)) = known else {
                    return Err(HandlerError::retry(format!("lead {lead} changed before its creation arrived")));
                };
                if let Some(user) = assignee.filter(|a| a.to_string() != actor) {
                    let notice = Notice {
                        user,
                        kind: pb::NotificationKind::LeadStageChanged,
                        title: format!(
                            "{} moved to {}",
                            if name.is_empty() { "Your lead" } else { &name },
                            stage_label(e.to_stage)
                        ),
                        subject: format!("leads/{lead}"),
                        brand: Some(brand),
                    };
                    notify(tx, org, message.event_id, notice).await.map_err(retry)?;
                }
            }
            "comm.mailbox.needs_reauth" => {
                let payload: serde_json::Value = message.decode_payload().map_err(HandlerError::reject)?;
                let field = |k: &str| payload.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                let notice = Notice {
                    user: uuid("user_id", &field("user_id"))?,
                    kind: pb::NotificationKind::MailboxNeedsReauth,
                    title: format!("Reconnect {}: Gmail no longer grants access", field("email_address")),
                    subject: format!("mailboxes/{}", field("mailbox_id")),
                    brand: None,
                };
                notify(tx, org, message.event_id, notice).await.map_err(retry)?;
            }
            "tenancy.brand_access.granted" | "tenancy.brand_access.revoked" => {
                let v: serde_json::Value = message.decode_payload().map_err(HandlerError::reject)?;
                let field = |k: &str| v.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                let (brand, user) = (uuid("brand_id", &field("brand_id"))?, uuid("user_id", &field("user_id"))?);
                if message.routing_key.ends_with("granted") {
                    sqlx::query(
                        "INSERT INTO known_brand_roles (brand_id, user_id, organization_id, role) VALUES ($1, $2, $3, \
                         $4) ON CONFLICT (brand_id, user_id) DO UPDATE SET role = EXCLUDED.role",
                    )
                    .bind(brand)
                    .bind(user)
                    .bind(org)
                    .bind(field("role"))
                    .execute(&mut *tx)
                    .await
                    .map_err(retry)?;
                } else {
                    sqlx::query("DELETE FROM known_brand_roles WHERE brand_id = $1 AND user_id = $2")
                        .bind(brand)
                        .bind(user)
                        .execute(&mut *tx)
                        .await
                        .map_err(retry)?;
                }
            }
            "finance.invoice.overdue" => {
                let e: InvoiceOverdue = message.decode().map_err(HandlerError::reject)?;
                let invoice = uuid("invoice_id", &e.invoice_id)?;
                // Automation's record of the invoice (its own consumer) names the brand.
                let known: Option<(Option<Uuid>, serde_json::Value)> = sqlx::query_as(
                    "SELECT brand_id, data FROM known_records WHERE kind = 'invoice' AND record_id = $1",
                )
                .bind(invoice)
                .fetch_optional(&mut *tx)
                .await
                .map_err(retry)?;
                let Some((Some(brand), data)) = known else {
                    return Err(HandlerError::retry(format!("invoice {invoice} overdue before its draft arrived")));
                };
                let text = |k: &str| data.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                let balance = data.get("balance_minor").and_then(serde_json::Value::as_i64).unwrap_or_default();
                let title = format!(
                    "Invoice {} is overdue: {} open",
                    if text("number").is_empty() { "(draft)".to_owned() } else { text("number") },
                    crate::automation::render::money(&text("currency"), balance)
                );
                let people: Vec<Uuid> = sqlx::query_scalar(
                    "SELECT user_id FROM known_brand_roles WHERE brand_id = $1 AND role = 'finance'",
                )
                .bind(brand)
                .fetch_all(&mut *tx)
                .await
                .map_err(retry)?;
                for user in people {
                    let notice = Notice {
                        user,
                        kind: pb::NotificationKind::InvoiceOverdue,
                        title: title.clone(),
                        subject: format!("invoices/{invoice}"),
                        brand: Some(brand),
                    };
                    notify(tx, org, message.event_id, notice).await.map_err(retry)?;
                }
            }
            other => return Err(HandlerError::reject(format!("unexpected routing key {other}"))),
        }
        Ok(())
    }
}

/// A message that just arrived in a connected mailbox from `from` (not the mailbox's own
/// address): notifies the assignee of every lead with that address, once per (message,
/// recipient). Returns how many were notified.
pub async fn reply_received(
    pool: &PgPool,
    organization: Uuid,
    message: Uuid,
    from: &crate::mime::Mailbox,
    subject: &str,
) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let leads: Vec<(Uuid, Uuid, String, Uuid)> = sqlx::query_as(
        "SELECT lead_id, brand_id, contact_name, assignee_id FROM lead_assignees WHERE organization_id = $1 AND \
         lower(contact_email) = lower($2) AND contact_email <> '' AND assignee_id IS NOT NULL",
    )
    .bind(organization)
    .bind(from.email.trim())
    .fetch_all(&mut *tx)
    .await?;
    for (lead, brand, name, assignee) in &leads {
        let who = if name.is_empty() { from.name.as_str() } else { name.as_str() };
        let who = if who.is_empty() { from.email.as_str() } else { who };
        let notice = Notice {
            user: *assignee,
            kind: pb::NotificationKind::ReplyReceived,
            title: format!("{who} wrote: {}", if subject.is_empty() { "(no subject)" } else { subject }),
            subject: format!("leads/{lead}"),
            brand: Some(*brand),
        };
        notify(&mut tx, organization, message, notice).await?;
    }
    tx.commit().await?;
    Ok(leads.len())
}

/// Each replica's fan-out of new notifications to its open streams.
#[derive(Clone)]
pub struct Hub {
    sender: broadcast::Sender<Row>,
}

impl Default for Hub {
    fn default() -> Self {
        Self { sender: broadcast::channel(1024).0 }
    }
}

impl Hub {
    /// Listens on PostgreSQL for committed notifications until `stop`, reconnecting after
    /// failures, and broadcasts each one.
    pub async fn run(
        self,
        pool: PgPool,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), std::convert::Infallible> {
        tokio::pin!(stop);
        loop {
            let listened = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                listener.listen(CHANNEL).await?;
                loop {
                    let note = listener.recv().await?;
                    let Ok(id) = Uuid::parse_str(note.payload()) else { continue };
                    let found = sqlx::query(&format!("SELECT {COLUMNS} FROM notifications WHERE notification_id = $1"))
                        .bind(id)
                        .fetch_optional(&pool)
                        .await?;
                    if let Some(found) = found.as_ref().map(row).transpose()? {
                        // No receivers is fine: nobody is watching.
                        let _ = self.sender.send(found);
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            tokio::select! {
                () = &mut stop => return Ok(()),
                result = listened => {
                    if let Err(error) = result {
                        tracing::warn!(%error, "Notification listener failed; reconnecting.");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// `sentra.comm.v1.NotificationService`.
#[derive(Clone)]
pub struct NotificationApi {
    /// The pool.
    pub pool: PgPool,
    /// The live fan-out.
    pub hub: Hub,
    /// Keep-alive period of quiet streams.
    pub keepalive: Duration,
}

fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    let who = Caller::of(request)?;
    who.principal.require(perm::NOTIFICATION_READ, None).map_err(CommError::from)?;
    Ok(who)
}

async fn unread(pool: &PgPool, who: &Caller) -> Result<i32, CommError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE organization_id = $1 AND user_id = $2 AND read_at IS NULL",
    )
    .bind(who.tenant())
    .bind(who.principal.user_id)
    .fetch_one(pool)
    .await?;
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

async fn preferences(pool: &PgPool, user: Uuid) -> Result<Vec<pb::NotificationPreference>, CommError> {
    let chosen: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, channel FROM notification_preferences WHERE user_id = $1")
            .bind(user)
            .fetch_all(pool)
            .await?;
    Ok(KINDS
        .iter()
        .map(|k| {
            let channel = kind_name(*k).and_then(|name| chosen.iter().find(|(kind, _)| kind == name));
            let channel = match channel.map(|(_, c)| c.as_str()) {
                Some("off") => pb::NotificationChannel::Off,
                Some("email") => pb::NotificationChannel::Email,
                _ => pb::NotificationChannel::InApp,
            };
            pb::NotificationPreference { kind: (*k).into(), channel: channel.into() }
        })
        .collect())
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchNotificationsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let limit = match req.page_size {
            n if n < 0 => return Err(CommError::invalid("page_size", "must not be negative").into()),
            0 => 20,
            n => i64::from(n.min(100)),
        };
        let after = match req.page_token.as_str() {
            "" => None,
            token => Some(
                URL_SAFE_NO_PAD
                    .decode(token)
                    .ok()
                    .and_then(|b| Uuid::from_slice(&b).ok())
                    .ok_or_else(|| CommError::invalid("page_token", "is not a token from a previous response"))?,
            ),
        };
        // Ids are UUIDv7: their order is creation order.
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE organization_id = $1 AND user_id = $2 AND (NOT $3 OR read_at \
             IS NULL) AND ($4::uuid IS NULL OR notification_id < $4) ORDER BY notification_id DESC LIMIT $5"
        ))
        .bind(who.tenant())
        .bind(who.principal.user_id)
        .bind(req.unread_only)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(CommError::from)?;
        let mut rows = rows.iter().map(row).collect::<Result<Vec<_>, _>>().map_err(CommError::from)?;
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(20));
        let next_page_token = match rows.last() {
            Some(last) if more => URL_SAFE_NO_PAD.encode(last.id.as_bytes()),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: rows.iter().map(to_pb).collect(),
            next_page_token,
            unread_count: unread(&self.pool, &who).await?,
        }))
    }

    async fn mark_notifications_read(
        &self,
        request: Request<pb::MarkNotificationsReadRequest>,
    ) -> Result<Response<pb::MarkNotificationsReadResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let ids = req
            .notification_ids
            .iter()
            .map(|id| Uuid::parse_str(id.trim()).map_err(|_| CommError::invalid("notification_ids", "must be UUIDs")))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() && !req.all {
            return Err(CommError::invalid("notification_ids", "give ids, or all").into());
        }
        let marked = sqlx::query(
            "UPDATE notifications SET read_at = now() WHERE organization_id = $1 AND user_id = $2 AND read_at IS NULL \
             AND ($3 OR notification_id = ANY($4))",
        )
        .bind(who.tenant())
        .bind(who.principal.user_id)
        .bind(req.all)
        .bind(&ids)
        .execute(&self.pool)
        .await
        .map_err(CommError::from)?
        .rows_affected();
        Ok(Response::new(pb::MarkNotificationsReadResponse {
            marked: i32::try_from(marked).unwrap_or(i32::MAX),
            unread_count: unread(&self.pool, &who).await?,
        }))
    }

    type WatchNotificationsStream = WatchStream;

    async fn watch_notifications(
        &self,
        request: Request<pb::WatchNotificationsRequest>,
    ) -> Result<Response<Self::WatchNotificationsStream>, Status> {
        let who = caller(&request)?;
        let receiver = self.hub.sender.subscribe();
        let keepalive = self.keepalive;
        let (organization, user) = (who.tenant(), who.principal.user_id);
        let ticker = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
        let stream = futures::stream::unfold((receiver, ticker), move |(mut receiver, mut ticker)| async move {
            loop {
                tokio::select! {
                    received = receiver.recv() => match received {
                        Ok(found) if found.organization == organization && found.user == user => {
                            let message = pb::WatchNotificationsResponse { notification: Some(to_pb(&found)), keepalive: false };
                            return Some((Ok(message), (receiver, ticker)));
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = ticker.tick() => {
                        let message = pb::WatchNotificationsResponse { notification: None, keepalive: true };
                        return Some((Ok(message), (receiver, ticker)));
                    }
                }
            }
        });
        let stream: WatchStream = Box::pin(stream);
        Ok(Response::new(stream))
    }

    async fn get_notification_preferences(
        &self,
        request: Request<pb::GetNotificationPreferencesRequest>,
    ) -> Result<Response<pb::GetNotificationPreferencesResponse>, Status> {
        let who = caller(&request)?;
        Ok(Response::new(pb::GetNotificationPreferencesResponse {
            preferences: preferences(&self.pool, who.principal.user_id).await?,
        }))
    }

    async fn update_notification_preferences(
        &self,
        request: Request<pb::UpdateNotificationPreferencesRequest>,
    ) -> Result<Response<pb::UpdateNotificationPreferencesResponse>, Status> {
        let who = caller(&request)?;
        let req = request.into_inner();
        let mut changes = Vec::new();
        for p in &req.preferences {
            let kind = pb::NotificationKind::try_from(p.kind)
                .ok()
                .and_then(kind_name)
                .ok_or_else(|| CommError::invalid("preferences.kind", "is not a notification kind"))?;
            let channel = match pb::NotificationChannel::try_from(p.channel) {
                Ok(pb::NotificationChannel::InApp) => "in_app",
                Ok(pb::NotificationChannel::Off) => "off",
                Ok(pb::NotificationChannel::Email) => "email",
                _ => return Err(CommError::invalid("preferences.channel", "must be IN_APP, EMAIL or OFF").into()),
            };
            changes.push((kind, channel));
        }
        for (kind, channel) in changes {
            sqlx::query(
                "INSERT INTO notification_preferences (user_id, kind, channel) VALUES ($1, $2, $3) ON CONFLICT \
                 (user_id, kind) DO UPDATE SET channel = EXCLUDED.channel",
            )
            .bind(who.principal.user_id)
            .bind(kind)
            .bind(channel)
            .execute(&self.pool)
            .await
            .map_err(CommError::from)?;
        }
        Ok(Response::new(pb::UpdateNotificationPreferencesResponse {
            preferences: preferences(&self.pool, who.principal.user_id).await?,
        }))
    }
}
