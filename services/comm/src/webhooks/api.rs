//! `sentra.comm.v1.WebhookService`: requests validated into [`NewEndpoint`] and
//! [`EndpointPatch`] at the boundary; every query is scoped to the caller's organization, so
//! another tenant's endpoint is simply not found.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sentra_auth::{Caller, permissions as perm};
use sentra_proto::sentra::comm::v1 as pb;
use sentra_proto::sentra::comm::v1::webhook_service_server::WebhookService;
use sentra_runtime::wire::{self, timestamp as ts};
use sqlx::{PgPool, Row as _};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::endpoints::{Endpoint, EndpointPatch, Endpoints, NewEndpoint};
use crate::error::CommError;
use crate::grpc::id;

/// The longest grace period of a rotated secret.
const MAX_GRACE: Duration = Duration::from_secs(7 * 86400);

/// `sentra.comm.v1.WebhookService`.
#[derive(Clone)]
pub struct WebhookApi {
    /// The pool (delivery log and replays).
    pub pool: PgPool,
    /// The endpoints.
    pub endpoints: Endpoints,
}

fn caller<T>(request: &Request<T>, permission: &str) -> Result<Caller, Status> {
    let who = Caller::of(request)?;
    who.principal.require(permission, None).map_err(CommError::from)?;
    Ok(who)
}

fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

fn version_of(field: &'static str, etag: &str) -> Result<i64, CommError> {
    etag.trim()
        .trim_matches('"')
        .parse()
        .map_err(|_| CommError::invalid(field, "is not an etag from a previous response"))
}

fn url(value: &str) -> Result<reqwest::Url, CommError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(CommError::invalid("url", "is required"));
    }
    if value.len() > 2000 {
        return Err(CommError::invalid("url", "must be at most 2000 characters"));
    }
    let parsed = reqwest::Url::parse(value).map_err(|e| CommError::invalid("url", format!("is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(CommError::invalid("url", "must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(CommError::invalid("url", "must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(CommError::invalid("url", "must not carry credentials; the signature authenticates Sentra"));
    }
    Ok(parsed)
}

fn event_types(values: &[String]) -> Result<Vec<String>, CommError> {
    if values.len() > 50 {
        return Err(CommError::invalid("event_types", "at most 50"));
    }
    let mut out: Vec<String> = Vec::new();
    for value in values {
        let value = value.trim();
        let body = value.strip_suffix(".*").unwrap_or(value);
        let well_formed = value == "*"
            || (!body.is_empty()
                && body.split('.').count() <= 3
                && body.split('.').all(|s| {
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                }));
        if !well_formed {
            return Err(CommError::invalid(
                "event_types",
                format!("{value:?} is not an event type (`sales.lead.created`) or prefix (`finance.invoice.*`)"),
            ));
        }
        if !out.iter().any(|o| o == value) {
            out.push(value.to_owned());
        }
    }
    Ok(out)
}

fn description(value: &str) -> Result<String, CommError> {
    let value = value.trim();
    if value.chars().count() > 500 {
        return Err(CommError::invalid("description", "must be at most 500 characters"));
    }
    Ok(value.to_owned())
}

impl TryFrom<pb::CreateWebhookEndpointRequest> for NewEndpoint {
    type Error = CommError;

    fn try_from(req: pb::CreateWebhookEndpointRequest) -> Result<Self, CommError> {
        let endpoint = req.endpoint.ok_or_else(|| CommError::invalid("endpoint", "is required"))?;
        let request_id = match req.request_id.trim() {
            "" => None,
            v => Some(Uuid::parse_str(v).map_err(|_| CommError::invalid("request_id", "must be a UUID"))?),
        };
        Ok(Self {
            url: url(&endpoint.url)?,
            description: description(&endpoint.description)?,
            event_types: event_types(&endpoint.event_types)?,
            enabled: endpoint.enabled,
            request_id,
        })
    }
}

/// The validated parts of an UpdateWebhookEndpoint: id, version, patch.
fn update(req: pb::UpdateWebhookEndpointRequest) -> Result<(Uuid, i64, EndpointPatch), CommError> {
    let endpoint = req.endpoint.ok_or_else(|| CommError::invalid("endpoint", "is required"))?;
    let endpoint_id = id("endpoint.endpoint_id", &endpoint.endpoint_id)?;
    let version = match endpoint.etag.trim() {
        "" => return Err(CommError::invalid("endpoint.etag", "is required")),
        tag => version_of("endpoint.etag", tag)?,
    };
    let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(CommError::invalid("update_mask", "must name at least one field"));
    }
    let mut patch = EndpointPatch::default();
    for path in &paths {
        match path.as_str() {
            "url" => patch.url = Some(url(&endpoint.url)?),
            "description" => patch.description = Some(description(&endpoint.description)?),
            "event_types" => patch.event_types = Some(event_types(&endpoint.event_types)?),
            "enabled" => patch.enabled = Some(endpoint.enabled),
            other => return Err(CommError::invalid("update_mask", format!("{other:?} cannot be updated"))),
        }
    }
    Ok((endpoint_id, version, patch))
}

fn endpoint_pb(e: &Endpoint) -> pb::WebhookEndpoint {
    pb::WebhookEndpoint {
        endpoint_id: e.id.to_string(),
        url: e.url.clone(),
        description: e.description.clone(),
        event_types: e.event_types.clone(),
        enabled: e.enabled,
        disabled_reason: e.disabled_reason.clone(),
        failing_since_time: e.failing_since.map(ts),
        previous_secret_expire_time: e.previous_expires.filter(|t| *t > chrono::Utc::now()).map(ts),
        create_time: Some(ts(e.created_at)),
        update_time: Some(ts(e.updated_at)),
        etag: etag(e.version),
    }
}

fn status_name(status: pb::WebhookDeliveryStatus) -> Option<&'static str> {
    match status {
        pb::WebhookDeliveryStatus::Pending => Some("pending"),
        pb::WebhookDeliveryStatus::Succeeded => Some("succeeded"),
        pb::WebhookDeliveryStatus::Failed => Some("failed"),
        pb::WebhookDeliveryStatus::Unspecified => None,
    }
}

fn status_of(name: &str) -> pb::WebhookDeliveryStatus {
    match name {
        "pending" => pb::WebhookDeliveryStatus::Pending,
        "succeeded" => pb::WebhookDeliveryStatus::Succeeded,
        "failed" => pb::WebhookDeliveryStatus::Failed,
        _ => pb::WebhookDeliveryStatus::Unspecified,
    }
}

impl WebhookApi {
    async fn deliveries(
        &self,
        endpoint: Uuid,
        status: Option<&str>,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<pb::WebhookDelivery>, CommError> {
        let rows = sqlx::query(
            "SELECT d.delivery_id, d.message_id, d.status, d.due_at, d.created_at, m.event_type, m.payload FROM \
             webhook_deliveries d JOIN webhook_messages m USING (message_id) WHERE d.endpoint_id = $1 AND ($2::text \
             IS NULL OR d.status = $2) AND ($3::uuid IS NULL OR d.delivery_id < $3) ORDER BY d.delivery_id DESC LIMIT $4",
        )
        .bind(endpoint)
        .bind(status)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.try_get("delivery_id")).collect::<Result<_, _>>()?;
        let attempts = sqlx::query(
            "SELECT delivery_id, attempt, attempted_at, response_status, response_body, error, duration_ms FROM \
             webhook_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let delivery: Uuid = r.try_get("delivery_id")?;
            let status: String = r.try_get("status")?;
            let mut tried = Vec::new();
            for a in attempts.iter().filter(|a| a.try_get::<Uuid, _>("delivery_id").ok() == Some(delivery)) {
                tried.push(pb::WebhookAttempt {
                    attempt_number: a.try_get("attempt")?,
                    attempt_time: Some(ts(a.try_get("attempted_at")?)),
                    response_status: a.try_get("response_status")?,
                    response_body: a.try_get("response_body")?,
                    error: a.try_get("error")?,
                    duration_ms: a.try_get("duration_ms")?,
                });
            }
            out.push(pb::WebhookDelivery {
                delivery_id: delivery.to_string(),
                endpoint_id: endpoint.to_string(),
                message_id: r.try_get("message_id")?,
                event_type: r.try_get("event_type")?,
                status: status_of(&status).into(),
                payload: r.try_get("payload")?,
                create_time: Some(ts(r.try_get("created_at")?)),
                next_attempt_time: (status == "pending").then(|| r.try_get("due_at").map(ts)).transpose()?,
                attempts: tried,
            });
        }
        Ok(out)
    }
}

fn page_after(token: &str) -> Result<Option<Uuid>, CommError> {
    match token {
        "" => Ok(None),
        token => URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| Uuid::from_slice(&b).ok())
            .map(Some)
            .ok_or_else(|| CommError::invalid("page_token", "is not a token from a previous response")),
    }
}

fn page_size(value: i32, default: i64) -> Result<i64, CommError> {
    match value {
        0 => Ok(default),
        n => wire::page_size(n).ok_or_else(|| CommError::invalid("page_size", "must not be negative")),
    }
}

#[tonic::async_trait]
impl WebhookService for WebhookApi {
    async fn create_webhook_endpoint(
        &self,
        request: Request<pb::CreateWebhookEndpointRequest>,
    ) -> Result<Response<pb::CreateWebhookEndpointResponse>, Status> {
        let who = caller(&request, perm::WEBHOOK_WRITE)?;
        let new = NewEndpoint::try_from(request.into_inner())?;
        let (endpoint, secret) = self.endpoints.create(who.tenant(), who.principal.user_id, new).await?;
        Ok(Response::new(pb::CreateWebhookEndpointResponse { endpoint: Some(endpoint_pb(&endpoint)), secret }))
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Result<Response<pb::ListWebhookEndpointsResponse>, Status> {
        let who = caller(&request, perm::WEBHOOK_READ)?;
        let req = request.into_inner();
        let limit = page_size(req.page_size, 50)?;
        let after = page_after(&req.page_token)?;
        let mut found = self.endpoints.list(who.tenant(), after, limit + 1).await?;
        let more = found.len() as i64 > limit;
        found.truncate(usize::try_from(limit).unwrap_or(50));
        let next_page_token = match found.last() {
            Some(last) if more => URL_SAFE_NO_PAD.encode(last.id.as_bytes()),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListWebhookEndpointsResponse {
            endpoints: found.iter().map(endpoint_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_webhook_endpoint(
        &self,
        request: Request<pb::GetWebhookEndpointRequest>,
    ) -> Result<Response<pb::GetWebhookEndpointResponse>, Status> {
        let who = caller(&request, perm::WEBHOOK_READ)?;
        let endpoint = id("endpoint_id", &request.get_ref().endpoint_id)?;
        let found = self.endpoints.get(who.tenant(), endpoint).await?;
        Ok(Response::new(pb::GetWebhookEndpointResponse { endpoint: Some(endpoint_pb(&found)) }))
    }

    async fn update_webhook_endpoint(
        &self,
        request: Request<pb::UpdateWebhookEndpointRequest>,
    ) -> Result<Response<pb::UpdateWebhookEndpointResponse>, Status> {
        let who = caller(&request, perm::WEBHOOK_WRITE)?;
        let (endpoint, version, patch) = update(request.into_inner())?;
        let updated = self.endpoints.update(who.tenant(), endpoint, version, patch).await?;
        Ok(Response::new(pb::UpdateWebhookEndpointResponse { endpoint: Some(endpoint_pb(&updated)) }))
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<pb::DeleteWebhookEndpointRequest>,
    ) -> Result<Response<pb::DeleteWebhookEndpointResponse>, Status> {
        let who = caller(&request, perm::WEBHOOK_WRITE)?;
        let req = request.into_inner();
        let endpoint = id("endpoint_id", &req.endpoint_id)?;
        let version = match req.etag.trim() {
            "" => None,
            tag => Some(version_of("etag", tag)?),
        };
        self.endpoints.delete(who.tenant(), endpoint, version).await?;
        Ok(Response::new(pb::DeleteWebhookEndpointResponse {}))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        let who = caller(&request, perm::WEBHOOK_WRITE)?;
        let req = request.into_inner();
        let endpoint = id("endpoint_id", &req.endpoint_id)?;
        let grace = match req.grace_period {
            None => Duration::from_secs(86400),
            Some(d) if d.seconds < 0 || d.nanos < 0 => {
                return Err(CommError::invalid("grace_period", "must not be negative").into());
            }
            Some(d) => {
                let grace =
                    Duration::new(u64::try_from(d.seconds).unwrap_or(u64::MAX), u32::try_from(d.nanos).unwrap_or(0));
                if grace > MAX_GRACE {
                    return Err(CommError::invalid("grace_period", "must be at most 7 days").into());
                }
                grace
            }
        };
        let (endpoint, secret) = self.endpoints.rotate(who.tenant(), endpoint, grace).await?;
        Ok(Response::new(pb::RotateWebhookSecretResponse { endpoint: Some(endpoint_pb(&endpoint)), secret }))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        let who = caller(&request, perm::WEBHOOK_READ)?;
        let req = request.into_inner();
        let endpoint = id("endpoint_id", &req.endpoint_id)?;
        let status = pb::WebhookDeliveryStatus::try_from(req.status)
            .map_err(|_| CommError::invalid("status", "is not a delivery status"))?;
        let limit = page_size(req.page_size, 20)?;
        let after = page_after(&req.page_token)?;
        // Scopes the log to the caller's organization.
        self.endpoints.get(who.tenant(), endpoint).await?;
        let mut found = self.deliveries(endpoint, status_name(status), after, limit + 1).await?;
        let more = found.len() as i64 > limit;
        found.truncate(usize::try_from(limit).unwrap_or(20));
        let next_page_token = match found.last().and_then(|d| Uuid::parse_str(&d.delivery_id).ok()) {
            Some(last) if more => URL_SAFE_NO_PAD.encode(last.as_bytes()),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListWebhookDeliveriesResponse { deliveries: found, next_page_token }))
    }

    async fn replay_webhook_deliveries(
        &self,
        request: Request<pb::ReplayWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ReplayWebhookDeliveriesResponse>, Status> {
        let who = caller(&request, perm::WEBHOOK_WRITE)?;
        let req = request.into_inner();
        let endpoint = id("endpoint_id", &req.endpoint_id)?;
        let found = self.endpoints.get(who.tenant(), endpoint).await?;
        if !found.enabled {
            return Err(CommError::Precondition(
                "ENDPOINT_DISABLED",
                "the endpoint is disabled; enable it first".into(),
            )
            .into());
        }
        let one = matches!(req.target, Some(pb::replay_webhook_deliveries_request::Target::DeliveryId(_)));
        let mut tx = self.pool.begin().await.map_err(CommError::from)?;
        let queued = match req.target {
            Some(pb::replay_webhook_deliveries_request::Target::DeliveryId(delivery)) => {
                let delivery = id("delivery_id", &delivery)?;
                sqlx::query(
                    "INSERT INTO webhook_deliveries (delivery_id, endpoint_id, message_id) SELECT $3, endpoint_id, \
                     message_id FROM webhook_deliveries WHERE delivery_id = $1 AND endpoint_id = $2",
                )
                .bind(delivery)
                .bind(endpoint)
                .bind(Uuid::now_v7())
                .execute(&mut *tx)
                .await
                .map_err(CommError::from)?
                .rows_affected()
            }
            Some(pb::replay_webhook_deliveries_request::Target::SinceTime(since)) => {
                let since = wire::from_timestamp(&since)
                    .ok_or_else(|| CommError::invalid("since_time", "is not a valid time"))?;
                let messages: Vec<String> = sqlx::query_scalar(
                    "SELECT message_id FROM (SELECT DISTINCT d.message_id, m.occurred_at FROM webhook_deliveries d JOIN \
                     webhook_messages m USING (message_id) WHERE d.endpoint_id = $1 AND m.occurred_at >= $2) picked \
                     ORDER BY occurred_at, message_id",
                )
                .bind(endpoint)
                .bind(since)
                .fetch_all(&mut *tx)
                .await
                .map_err(CommError::from)?;
                let ids: Vec<Uuid> = messages.iter().map(|_| Uuid::now_v7()).collect();
                sqlx::query(
                    "INSERT INTO webhook_deliveries (delivery_id, endpoint_id, message_id) SELECT d, $3, m FROM \
                     unnest($1::uuid[], $2::text[]) AS t(d, m)",
                )
                .bind(&ids)
                .bind(&messages)
                .bind(endpoint)
                .execute(&mut *tx)
                .await
                .map_err(CommError::from)?
                .rows_affected()
            }
            None => return Err(CommError::invalid("delivery_id", "give delivery_id or since_time").into()),
        };
        if queued == 0 && one {
            return Err(CommError::NotFound("webhook delivery").into());
        }
        super::delivery::wake(&mut tx).await.map_err(CommError::from)?;
        tx.commit().await.map_err(CommError::from)?;
        Ok(Response::new(pb::ReplayWebhookDeliveriesResponse { queued: i32::try_from(queued).unwrap_or(i32::MAX) }))
    }
}
