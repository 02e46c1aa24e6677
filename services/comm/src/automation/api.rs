//! `sentra.comm.v1.AutomationService`: requests validated at the boundary (templates checked
//! by [`render::check`], rules against the triggers and fields that exist), the brand rule
//! applied on every call, and the public `Unsubscribe`.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sentra_auth::{Caller, permissions as perm};
use sentra_directory::Directory;
use sentra_proto::sentra::comm::v1 as pb;
use sentra_proto::sentra::comm::v1::automation_service_server::AutomationService;
use sentra_runtime::wire::{self, timestamp as ts};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::mailer::{Links, unsubscribe};
use super::render::{self, FIELDS, Part};
use super::rules::Condition;
use super::store::{Rule, Store, Template, Trigger};
use super::{EVENT_TYPES, rules};
use crate::error::CommError;
use crate::grpc::{authorize, id};

/// `sentra.comm.v1.AutomationService`.
#[derive(Clone)]
pub struct AutomationApi {
    /// The tables.
    pub store: Store,
    /// Tenancy, for the brand rule.
    pub directory: Arc<Directory>,
    /// Unsubscribe tokens.
    pub links: Links,
}

fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

fn version(field: &'static str, etag: &str) -> Result<Option<i64>, CommError> {
    match etag.trim().trim_matches('"') {
        "" => Ok(None),
        v => v.parse().map(Some).map_err(|_| CommError::invalid(field, "is not an etag from a previous response")),
    }
}

fn request_id(value: &str) -> Result<Option<Uuid>, CommError> {
    match value.trim() {
        "" => Ok(None),
        v => Uuid::parse_str(v).map(Some).map_err(|_| CommError::invalid("request_id", "must be a UUID")),
    }
}

fn name(field: &'static str, value: &str) -> Result<String, CommError> {
    match value.trim() {
        "" => Err(CommError::invalid(field, "is required")),
        v if v.chars().count() > 200 => Err(CommError::invalid(field, "must be at most 200 characters")),
        v => Ok(v.to_owned()),
    }
}

/// A template's parts, each checked.
fn parts(t: &pb::EmailTemplate, field: &'static str) -> Result<(String, String, String), CommError> {
    let subject = t.subject.trim();
    if subject.is_empty() {
        return Err(CommError::invalid("template.subject", "is required"));
    }
    if t.html_body.trim().is_empty() && t.text_body.trim().is_empty() {
        return Err(CommError::invalid(field, "give an HTML or a text body"));
    }
    for (part, source) in
        [(Part::Subject, subject), (Part::Html, t.html_body.as_str()), (Part::Text, t.text_body.as_str())]
    {
        if source.len() > 100_000 {
            return Err(CommError::invalid(part.field(), "must be at most 100 kB"));
        }
        render::check(part, source).map_err(|e| CommError::invalid(part.field(), e.message))?;
    }
    Ok((subject.to_owned(), t.html_body.clone(), t.text_body.clone()))
}

fn template_pb(t: &Template) -> pb::EmailTemplate {
    pb::EmailTemplate {
        template_id: t.id.to_string(),
        brand_id: t.brand.to_string(),
        name: t.name.clone(),
        subject: t.subject.clone(),
        html_body: t.html.clone(),
        text_body: t.text.clone(),
        create_time: Some(ts(t.created_at)),
        update_time: Some(ts(t.updated_at)),
        etag: etag(t.version),
    }
}

fn operator(value: i32) -> Result<&'static str, CommError> {
    use pb::automation_condition::Operator as O;
    match O::try_from(value) {
        Ok(O::Equals) => Ok("equals"),
        Ok(O::NotEquals) => Ok("not_equals"),
        Ok(O::GreaterThan) => Ok("greater_than"),
        Ok(O::LessThan) => Ok("less_than"),
        _ => Err(CommError::invalid("rule.conditions.operator", "is required")),
    }
}

fn operator_pb(value: &str) -> i32 {
    use pb::automation_condition::Operator as O;
    match value {
        "equals" => O::Equals,
        "not_equals" => O::NotEquals,
        "greater_than" => O::GreaterThan,
        "less_than" => O::LessThan,
        _ => O::Unspecified,
    }
    .into()
}

/// The rule a request describes (server fields from `current`, if any).
fn rule_of(brand: Uuid, r: &pb::AutomationRule) -> Result<Rule, CommError> {
    use pb::automation_rule::Trigger as T;
    let trigger = match &r.trigger {
        Some(T::EventType(event)) if EVENT_TYPES.contains(&event.trim()) => Trigger::Event(event.trim().to_owned()),
        Some(T::EventType(event)) => {
            return Err(CommError::invalid("rule.event_type", format!("{event:?} is not an event rules can wait for")));
        }
        Some(T::DateOffset(offset)) => {
            if offset.date() != pb::AutomationDate::InvoiceDue {
                return Err(CommError::invalid("rule.date_offset.date", "is required (INVOICE_DUE)"));
            }
            if !(-365..=365).contains(&offset.days) {
                return Err(CommError::invalid("rule.date_offset.days", "must be within a year"));
            }
            Trigger::InvoiceDue(offset.days)
        }
        None => return Err(CommError::invalid("rule.event_type", "give an event type or a date offset")),
    };
    let recipient = match r.recipient() {
        pb::AutomationRecipient::ClientContact => "client_contact",
        pb::AutomationRecipient::AssignedAgent => match &trigger {
            Trigger::Event(event) if event.starts_with("sales.lead.") => "assigned_agent",
            _ => return Err(CommError::invalid("rule.recipient", "the assigned agent is known for lead events only")),
        },
        pb::AutomationRecipient::Unspecified => return Err(CommError::invalid("rule.recipient", "is required")),
    };
    let mut conditions = Vec::new();
    for c in &r.conditions {
        let mut path = c.field.trim().split('.');
        let (root, field) = (path.next().unwrap_or_default(), path.next());
        let known = FIELDS.iter().any(|(name, fields)| *name == root && field.is_some_and(|f| fields.contains(&f)))
            || matches!((root, field), ("invoice" | "order", Some("paid_minor")));
        if !known || path.next().is_some() {
            return Err(CommError::invalid(
                "rule.conditions.field",
                format!("{:?} is not a field emails have", c.field),
            ));
        }
        conditions.push(Condition {
            field: c.field.trim().to_owned(),
            operator: operator(c.operator)?.to_owned(),
            value: c.value.clone(),
        });
    }
    Ok(Rule {
        id: Uuid::nil(),
        brand,
        name: name("rule.name", &r.name)?,
        enabled: r.enabled,
        trigger,
        conditions,
        template: id("rule.template_id", &r.template_id)?,
        recipient: recipient.to_owned(),
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        version: 0,
    })
}

fn rule_pb(r: &Rule) -> pb::AutomationRule {
    use pb::automation_rule::Trigger as T;
    pb::AutomationRule {
        rule_id: r.id.to_string(),
        brand_id: r.brand.to_string(),
        name: r.name.clone(),
        enabled: r.enabled,
        trigger: Some(match &r.trigger {
            Trigger::Event(event) => T::EventType(event.clone()),
            Trigger::InvoiceDue(days) => {
                T::DateOffset(pb::DateOffset { date: pb::AutomationDate::InvoiceDue.into(), days: *days })
            }
        }),
        conditions: r
            .conditions
            .iter()
            .map(|c| pb::AutomationCondition {
                field: c.field.clone(),
                operator: operator_pb(&c.operator),
                value: c.value.clone(),
            })
            .collect(),
        template_id: r.template.to_string(),
        recipient: if r.recipient == "assigned_agent" {
            pb::AutomationRecipient::AssignedAgent
        } else {
            pb::AutomationRecipient::ClientContact
        }
        .into(),
        create_time: Some(ts(r.created_at)),
        update_time: Some(ts(r.updated_at)),
        etag: etag(r.version),
    }
}

fn status_of(name: &str) -> pb::EmailDeliveryStatus {
    use pb::EmailDeliveryStatus as S;
    match name {
        "queued" => S::Queued,
        "sent" => S::Sent,
        "deferred" => S::Deferred,
        "failed" => S::Failed,
        "suppressed" => S::Suppressed,
        _ => S::Unspecified,
    }
}

impl AutomationApi {
    /// The caller and the brand the request names, once the caller holds `permission` on it.
    async fn brand<T>(&self, request: &Request<T>, brand: &str, permission: &str) -> Result<(Caller, Uuid), Status> {
        let who = Caller::of(request)?;
        let brand = id("brand_id", brand)?;
        authorize(&self.directory, &who, permission, brand).await?;
        Ok((who, brand))
    }

    fn pool(&self) -> &PgPool {
        &self.store.pool
    }
}

#[tonic::async_trait]
impl AutomationService for AutomationApi {
    async fn create_email_template(
        &self,
        request: Request<pb::CreateEmailTemplateRequest>,
    ) -> Result<Response<pb::CreateEmailTemplateResponse>, Status> {
        let (who, brand) = self.brand(&request, &request.get_ref().brand_id, perm::AUTOMATION_WRITE).await?;
        let req = request.into_inner();
        let t = req.template.ok_or_else(|| CommError::invalid("template", "is required"))?;
        let (subject, html, text) = parts(&t, "template.html_body")?;
        let draft = Template {
            id: Uuid::nil(),
            brand,
            name: name("template.name", &t.name)?,
            subject,
            html,
            text,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            version: 0,
        };
        let created = self.store.create_template(who.tenant(), &draft, request_id(&req.request_id)?).await?;
        Ok(Response::new(pb::CreateEmailTemplateResponse { template: Some(template_pb(&created)) }))
    }

    async fn list_email_templates(
        &self,
        request: Request<pb::ListEmailTemplatesRequest>,
    ) -> Result<Response<pb::ListEmailTemplatesResponse>, Status> {
        let (_, brand) = self.brand(&request, &request.get_ref().brand_id, perm::AUTOMATION_READ).await?;
        let templates = self.store.templates(brand).await?;
        Ok(Response::new(pb::ListEmailTemplatesResponse { templates: templates.iter().map(template_pb).collect() }))
    }

    async fn update_email_template(
        &self,
        request: Request<pb::UpdateEmailTemplateRequest>,
    ) -> Result<Response<pb::UpdateEmailTemplateResponse>, Status> {
        let (_, brand) = self.brand(&request, &request.get_ref().brand_id, perm::AUTOMATION_WRITE).await?;
        let req = request.into_inner();
        let t = req.template.ok_or_else(|| CommError::invalid("template", "is required"))?;
        let mut current = self.store.template(brand, id("template.template_id", &t.template_id)?).await?;
        current.version =
            version("template.etag", &t.etag)?.ok_or_else(|| CommError::invalid("template.etag", "is required"))?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(CommError::invalid("update_mask", "must name at least one field").into());
        }
        let mut merged = template_pb(&current);
        for path in &paths {
            match path.as_str() {
                "name" => current.name = name("template.name", &t.name)?,
                "subject" => merged.subject = t.subject.clone(),
                "html_body" => merged.html_body = t.html_body.clone(),
                "text_body" => merged.text_body = t.text_body.clone(),
                other => return Err(CommError::invalid("update_mask", format!("{other:?} cannot be updated")).into()),
            }
        }
        (current.subject, current.html, current.text) = parts(&merged, "template.html_body")?;
        let updated = self.store.update_template(&current).await?;
        Ok(Response::new(pb::UpdateEmailTemplateResponse { template: Some(template_pb(&updated)) }))
    }

    async fn delete_email_template(
        &self,
        request: Request<pb::DeleteEmailTemplateRequest>,
    ) -> Result<Response<pb::DeleteEmailTemplateResponse>, Status> {
        let (_, brand) = self.brand(&request, &request.get_ref().brand_id, perm::AUTOMATION_WRITE).await?;
        let req = request.into_inner();
        self.store.delete_template(brand, id("template_id", &req.template_id)?, version("etag", &req.etag)?).await?;
        Ok(Response::new(pb::DeleteEmailTemplateResponse {}))
    }

    async fn preview_email_template(
        &self,
        request: Request<pb::PreviewEmailTemplateRequest>,
    ) -> Result<Response<pb::PreviewEmailTemplateResponse>, Status> {
        let (_, brand) = self.brand(&request, &request.get_ref().brand_id, perm::AUTOMATION_READ).await?;
        let t = request.into_inner().template.unwrap_or_default();
        let mut data = render::sample();
        let mut tx = self.pool().begin().await.map_err(CommError::from)?;
        let mut real = serde_json::json!({});
        rules::brand_and_sender(&mut tx, brand, &mut real).await.map_err(CommError::from)?;
        drop(tx);
        if real["brand"]["name"].as_str().is_some_and(|n| !n.is_empty()) {
            data["brand"] = real["brand"].clone();
        }
        if real["sender"]["email"].as_str().is_some_and(|e| !e.is_empty()) {
            data["sender"] = real["sender"].clone();
        } else if let Some(name) = real["sender"]["name"].as_str().filter(|n| !n.is_empty()) {
            data["sender"]["name"] = serde_json::json!(name);
        }
        let mut out = [String::new(), String::new(), String::new()];
        for (i, (part, source)) in [(Part::Subject, &t.subject), (Part::Html, &t.html_body), (Part::Text, &t.text_body)]
            .into_iter()
            .enumerate()
        {
            render::check(part, source).map_err(|e| CommError::invalid(part.field(), e.message.clone()))?;
            out[i] = render::render(part, source, &data).map_err(|e| CommError::invalid(part.field(), e.message))?;
        }
        let [subject, html_body, text_body] = out;
        Ok(Response::new(pb::PreviewEmailTemplateResponse { subject, html_body, text_body }))
    }

    async fn create_automation_rule(
        &self,
        request: Request<pb::CreateAutomationRuleRequest>,
    ) -> Result<Response<pb::CreateAutomationRuleResponse>, Status> {
        let (who, brand) = self.brand(&request, &request.get_ref().brand_id, perm::AUTOMATION_WRITE).await?;
        let req = request.into_inner();
        let draft = rule_of(brand, req.rule.as_ref().ok_or_else(|| CommError::invalid("rule", "is required"))?)?;
        self.store
            .template(brand, draft.template)
            .await
            .map_err(|_| CommError::invalid("rule.template_id", "is not a template of this brand"))?;
        let created = self.store.create_rule(who.tenant(), &draft, request_id(&req.request_id)?).await?;
        Ok(Response::new(pb::CreateAutomationRuleResponse { rule: Some(rule_pb(&created)) }))
    }

    async fn list_automation_rules(
        &self,
        request: Request<pb::ListAutomationRulesRequest>,
    ) -> Result<Response<pb::ListAutomationRulesResponse>, Status> {
        let (_, brand) = self.brand(&request, &request.get_ref().brand_id, perm::AUTOMATION_READ).await?;
        let rules = self.store.rules(brand).await?;
        Ok(Response::new(pb::ListAutomationRulesResponse { rules: rules.iter().map(rule_pb).collect() }))
    }

    async fn update_automation_rule(
        &self,
        request: Request<pb::UpdateAutomationRuleRequest>,
    ) -> Result<Response<pb::UpdateAutomationRuleResponse>, Status> {
        let (_, brand) = self.brand(&request, &request.get_ref().brand_id, perm::AUTOMATION_WRITE).await?;
        let req = request.into_inner();
        let given = req.rule.ok_or_else(|| CommError::invalid("rule", "is required"))?;
        let current = self.store.rule(brand, id("rule.rule_id", &given.rule_id)?).await?;
        let mut merged = rule_pb(&current);
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(CommError::invalid("update_mask", "must name at least one field").into());
        }
        for path in &paths {
            match path.as_str() {
                "name" => merged.name = given.name.clone(),
                "enabled" => merged.enabled = given.enabled,
                "trigger" => merged.trigger = given.trigger.clone(),
                "conditions" => merged.conditions = given.conditions.clone(),
                "template_id" => merged.template_id = given.template_id.clone(),
                "recipient" => merged.recipient = given.recipient,
                other => return Err(CommError::invalid("update_mask", format!("{other:?} cannot be updated")).into()),
            }
        }
        let mut next = rule_of(brand, &merged)?;
        if next.template != current.template {
            self.store
                .template(brand, next.template)
                .await
                .map_err(|_| CommError::invalid("rule.template_id", "is not a template of this brand"))?;
        }
        next.id = current.id;
        next.version =
            version("rule.etag", &given.etag)?.ok_or_else(|| CommError::invalid("rule.etag", "is required"))?;
        let updated = self.store.update_rule(&next).await?;
        Ok(Response::new(pb::UpdateAutomationRuleResponse { rule: Some(rule_pb(&updated)) }))
    }

    async fn delete_automation_rule(
        &self,
        request: Request<pb::DeleteAutomationRuleRequest>,
    ) -> Result<Response<pb::DeleteAutomationRuleResponse>, Status> {
        let (_, brand) = self.brand(&request, &request.get_ref().brand_id, perm::AUTOMATION_WRITE).await?;
        let req = request.into_inner();
        self.store.delete_rule(brand, id("rule_id", &req.rule_id)?, version("etag", &req.etag)?).await?;
        Ok(Response::new(pb::DeleteAutomationRuleResponse {}))
    }

    async fn list_automated_emails(
        &self,
        request: Request<pb::ListAutomatedEmailsRequest>,
    ) -> Result<Response<pb::ListAutomatedEmailsResponse>, Status> {
        let (_, brand) = self.brand(&request, &request.get_ref().brand_id, perm::AUTOMATION_READ).await?;
        let req = request.into_inner();
        let limit = match req.page_size {
            0 => 20,
            n => wire::page_size(n).ok_or_else(|| CommError::invalid("page_size", "must not be negative"))?,
        };
        let after = match req.page_token.as_str() {
            "" => None,
            t => Some(
                URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| Uuid::from_slice(&b).ok())
                    .ok_or_else(|| CommError::invalid("page_token", "is not a token from a previous response"))?,
            ),
        };
        let status = match pb::EmailDeliveryStatus::try_from(req.status) {
            Ok(pb::EmailDeliveryStatus::Unspecified) => None,
            Ok(s) => Some(s.as_str_name().trim_start_matches("EMAIL_DELIVERY_STATUS_").to_lowercase()),
            Err(_) => return Err(CommError::invalid("status", "is not a delivery status").into()),
        };
        let mut emails = self.store.emails(brand, status.as_deref(), after, limit + 1).await?;
        let more = emails.len() as i64 > limit;
        emails.truncate(usize::try_from(limit).unwrap_or(20));
        let next_page_token = match emails.last() {
            Some(last) if more => URL_SAFE_NO_PAD.encode(last.id.as_bytes()),
            _ => String::new(),
        };
        let emails = emails
            .iter()
            .map(|e| pb::AutomatedEmail {
                email_id: e.id.to_string(),
                brand_id: e.brand.to_string(),
                rule_id: e.rule.to_string(),
                recipient: e.recipient.clone(),
                subject: e.subject.clone(),
                status: status_of(&e.status).into(),
                attempts: e.attempts,
                last_error: e.last_error.clone(),
                create_time: Some(ts(e.created_at)),
                send_time: e.sent_at.map(ts),
                subject_ref: e.subject_ref.clone(),
            })
            .collect();
        Ok(Response::new(pb::ListAutomatedEmailsResponse { emails, next_page_token }))
    }

    async fn list_suppressions(
        &self,
        request: Request<pb::ListSuppressionsRequest>,
    ) -> Result<Response<pb::ListSuppressionsResponse>, Status> {
        let (_, brand) = self.brand(&request, &request.get_ref().brand_id, perm::AUTOMATION_READ).await?;
        let suppressions = self
            .store
            .suppressions(brand)
            .await?
            .into_iter()
            .map(|(email_address, reason, at)| pb::Suppression {
                brand_id: brand.to_string(),
                email_address,
                reason,
                create_time: Some(ts(at)),
            })
            .collect();
        Ok(Response::new(pb::ListSuppressionsResponse { suppressions }))
    }

    async fn delete_suppression(
        &self,
        request: Request<pb::DeleteSuppressionRequest>,
    ) -> Result<Response<pb::DeleteSuppressionResponse>, Status> {
        let (_, brand) = self.brand(&request, &request.get_ref().brand_id, perm::AUTOMATION_WRITE).await?;
        self.store.delete_suppression(brand, &request.get_ref().email_address).await?;
        Ok(Response::new(pb::DeleteSuppressionResponse {}))
    }

    async fn unsubscribe(
        &self,
        request: Request<pb::UnsubscribeRequest>,
    ) -> Result<Response<pb::UnsubscribeResponse>, Status> {
        let token = request.into_inner().token;
        let (brand, email_address) =
            self.links.read(&token).ok_or_else(|| CommError::invalid("token", "is not an unsubscribe link of ours"))?;
        let brand_name = unsubscribe(self.pool(), brand, &email_address)
            .await
            .map_err(CommError::from)?
            .ok_or(CommError::NotFound("brand"))?;
        Ok(Response::new(pb::UnsubscribeResponse { email_address, brand_name }))
    }
}
