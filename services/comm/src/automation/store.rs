//! The automation tables: templates, rules, the emails made and the suppression list. Every
//! query names the brand, and the API checks the caller's right on that brand first, so one
//! brand's (or organization's) rows never answer another's request.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use super::rules::Condition;
use crate::error::CommError;

/// A stored template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Id.
    pub id: Uuid,
    /// Brand.
    pub brand: Uuid,
    /// Name, subject, HTML and text.
    pub name: String,
    /// The subject template.
    pub subject: String,
    /// The HTML template.
    pub html: String,
    /// The text template.
    pub text: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// The etag's version.
    pub version: i64,
}

/// What fires a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A bus event type.
    Event(String),
    /// Days from an invoice's due date.
    InvoiceDue(i32),
}

/// A stored (or validated) rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Id.
    pub id: Uuid,
    /// Brand.
    pub brand: Uuid,
    /// Name.
    pub name: String,
    /// Whether it fires.
    pub enabled: bool,
    /// What fires it.
    pub trigger: Trigger,
    /// All must hold.
    pub conditions: Vec<Condition>,
    /// The template.
    pub template: Uuid,
    /// `client_contact` or `assigned_agent`.
    pub recipient: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// The etag's version.
    pub version: i64,
}

/// One automated email, as the log shows it.
#[derive(Debug, Clone)]
pub struct Email {
    /// Id.
    pub id: Uuid,
    /// Brand.
    pub brand: Uuid,
    /// The rule.
    pub rule: Uuid,
    /// Address.
    pub recipient: String,
    /// Rendered subject (once sent or tried).
    pub subject: String,
    /// queued, sent, deferred, failed, suppressed.
    pub status: String,
    /// Tries.
    pub attempts: i32,
    /// Last failure.
    pub last_error: String,
    /// Queued at.
    pub created_at: DateTime<Utc>,
    /// Accepted by the server at.
    pub sent_at: Option<DateTime<Utc>>,
    /// `invoices/{id}`…
    pub subject_ref: String,
}

const TEMPLATE: &str = "template_id, brand_id, name, subject, html_body, text_body, created_at, updated_at, version";
const RULE: &str = "rule_id, brand_id, name, enabled, event_type, date_field, offset_days, conditions, template_id, \
                    recipient, created_at, updated_at, version";

fn template(r: &PgRow) -> Result<Template, sqlx::Error> {
    Ok(Template {
        id: r.try_get("template_id")?,
        brand: r.try_get("brand_id")?,
        name: r.try_get("name")?,
        subject: r.try_get("subject")?,
        html: r.try_get("html_body")?,
        text: r.try_get("text_body")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        version: r.try_get("version")?,
    })
}

fn rule(r: &PgRow) -> Result<Rule, CommError> {
    let event: Option<String> = r.try_get("event_type")?;
    let trigger = match event {
        Some(event) => Trigger::Event(event),
        None => Trigger::InvoiceDue(r.try_get("offset_days")?),
    };
    let conditions: Value = r.try_get("conditions")?;
    Ok(Rule {
        id: r.try_get("rule_id")?,
        brand: r.try_get("brand_id")?,
        name: r.try_get("name")?,
        enabled: r.try_get("enabled")?,
        trigger,
        conditions: serde_json::from_value(conditions)
            .map_err(|e| CommError::corrupt(format!("rule conditions: {e}")))?,
        template: r.try_get("template_id")?,
        recipient: r.try_get("recipient")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        version: r.try_get("version")?,
    })
}

fn trigger_columns(trigger: &Trigger) -> (Option<&str>, Option<&str>, i32) {
    match trigger {
        Trigger::Event(event) => (Some(event.as_str()), None, 0),
        Trigger::InvoiceDue(days) => (None, Some("invoice_due"), *days),
    }
}

/// The automation tables.
#[derive(Clone)]
pub struct Store {
    /// The pool.
    pub pool: PgPool,
}

impl Store {
    /// Inserts a template (or returns the one made by the same request id).
    pub async fn create_template(
        &self,
        organization: Uuid,
        t: &Template,
        request: Option<Uuid>,
    ) -> Result<Template, CommError> {
        let row = sqlx::query(&format!(
            "INSERT INTO email_templates (template_id, organization_id, brand_id, name, subject, html_body, text_body, \
             request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (brand_id, request_id) DO UPDATE SET \
             request_id = EXCLUDED.request_id RETURNING {TEMPLATE}"
        ))
        .bind(Uuid::now_v7())
        .bind(organization)
        .bind(t.brand)
        .bind(&t.name)
        .bind(&t.subject)
        .bind(&t.html)
        .bind(&t.text)
        .bind(request)
        .fetch_one(&self.pool)
        .await?;
        Ok(template(&row)?)
    }

    /// A brand's templates by name.
    pub async fn templates(&self, brand: Uuid) -> Result<Vec<Template>, CommError> {
        let rows = sqlx::query(&format!(
            "SELECT {TEMPLATE} FROM email_templates WHERE brand_id = $1 ORDER BY name, template_id"
        ))
        .bind(brand)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(template).collect::<Result<_, _>>()?)
    }

    /// One template of `brand`.
    pub async fn template(&self, brand: Uuid, id: Uuid) -> Result<Template, CommError> {
        let row =
            sqlx::query(&format!("SELECT {TEMPLATE} FROM email_templates WHERE brand_id = $1 AND template_id = $2"))
                .bind(brand)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(CommError::NotFound("email template"))?;
        Ok(template(&row)?)
    }

    /// Replaces a template's parts when `version` is current.
    pub async fn update_template(&self, t: &Template) -> Result<Template, CommError> {
        let row = sqlx::query(&format!(
            "UPDATE email_templates SET name = $3, subject = $4, html_body = $5, text_body = $6, version = version + 1, \
             updated_at = now() WHERE brand_id = $1 AND template_id = $2 AND version = $7 RETURNING {TEMPLATE}"
        ))
        .bind(t.brand)
        .bind(t.id)
        .bind(&t.name)
        .bind(&t.subject)
        .bind(&t.html)
        .bind(&t.text)
        .bind(t.version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(template).transpose()?.ok_or(CommError::Stale)
    }

    /// Deletes a template no rule uses.
    pub async fn delete_template(&self, brand: Uuid, id: Uuid, version: Option<i64>) -> Result<(), CommError> {
        let current = self.template(brand, id).await?;
        if version.is_some_and(|v| v != current.version) {
            return Err(CommError::Stale);
        }
        let used: i64 = sqlx::query_scalar("SELECT count(*) FROM automation_rules WHERE template_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        if used > 0 {
            return Err(CommError::Precondition("TEMPLATE_IN_USE", format!("{used} rule(s) send this template")));
        }
        sqlx::query("DELETE FROM email_templates WHERE brand_id = $1 AND template_id = $2")
            .bind(brand)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Inserts a rule (or returns the one made by the same request id).
    pub async fn create_rule(&self, organization: Uuid, r: &Rule, request: Option<Uuid>) -> Result<Rule, CommError> {
        let (event, date, days) = trigger_columns(&r.trigger);
        let row = sqlx::query(&format!(
            "INSERT INTO automation_rules (rule_id, organization_id, brand_id, name, enabled, event_type, date_field, \
             offset_days, conditions, template_id, recipient, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12) ON CONFLICT (brand_id, request_id) DO UPDATE SET request_id = EXCLUDED.request_id \
             RETURNING {RULE}"
        ))
        .bind(Uuid::now_v7())
        .bind(organization)
        .bind(r.brand)
        .bind(&r.name)
        .bind(r.enabled)
        .bind(event)
        .bind(date)
        .bind(days)
        .bind(serde_json::to_value(&r.conditions).unwrap_or_default())
        .bind(r.template)
        .bind(&r.recipient)
        .bind(request)
        .fetch_one(&self.pool)
        .await?;
        rule(&row)
    }

    /// A brand's rules, oldest first.
    pub async fn rules(&self, brand: Uuid) -> Result<Vec<Rule>, CommError> {
        let rows = sqlx::query(&format!("SELECT {RULE} FROM automation_rules WHERE brand_id = $1 ORDER BY rule_id"))
            .bind(brand)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rule).collect()
    }

    /// One rule of `brand`.
    pub async fn rule(&self, brand: Uuid, id: Uuid) -> Result<Rule, CommError> {
        let row = sqlx::query(&format!("SELECT {RULE} FROM automation_rules WHERE brand_id = $1 AND rule_id = $2"))
            .bind(brand)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(CommError::NotFound("automation rule"))?;
        rule(&row)
    }

    /// Replaces a rule when `version` is current.
    pub async fn update_rule(&self, r: &Rule) -> Result<Rule, CommError> {
        let (event, date, days) = trigger_columns(&r.trigger);
        let row = sqlx::query(&format!(
            "UPDATE automation_rules SET name = $3, enabled = $4, event_type = $5, date_field = $6, offset_days = $7, \
             conditions = $8, template_id = $9, recipient = $10, version = version + 1, updated_at = now() WHERE \
             brand_id = $1 AND rule_id = $2 AND version = $11 RETURNING {RULE}"
        ))
        .bind(r.brand)
        .bind(r.id)
        .bind(&r.name)
        .bind(r.enabled)
        .bind(event)
        .bind(date)
        .bind(days)
        .bind(serde_json::to_value(&r.conditions).unwrap_or_default())
        .bind(r.template)
        .bind(&r.recipient)
        .bind(r.version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rule).transpose()?.ok_or(CommError::Stale)
    }

    /// Deletes a rule (its emails stay in the log).
    pub async fn delete_rule(&self, brand: Uuid, id: Uuid, version: Option<i64>) -> Result<(), CommError> {
        let current = self.rule(brand, id).await?;
        if version.is_some_and(|v| v != current.version) {
            return Err(CommError::Stale);
        }
        sqlx::query("DELETE FROM automation_rules WHERE brand_id = $1 AND rule_id = $2")
            .bind(brand)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A page of a brand's emails, newest first, after `after`.
    pub async fn emails(
        &self,
        brand: Uuid,
        status: Option<&str>,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Email>, CommError> {
        let rows = sqlx::query(
            "SELECT email_id, brand_id, rule_id, recipient, subject, status, attempts, last_error, created_at, sent_at, \
             subject_ref FROM automated_emails WHERE brand_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid \
             IS NULL OR email_id < $3) ORDER BY email_id DESC LIMIT $4",
        )
        .bind(brand)
        .bind(status)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let email = |r: &PgRow| -> Result<Email, sqlx::Error> {
            Ok(Email {
                id: r.try_get("email_id")?,
                brand: r.try_get("brand_id")?,
                rule: r.try_get("rule_id")?,
                recipient: r.try_get("recipient")?,
                subject: r.try_get("subject")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                last_error: r.try_get("last_error")?,
                created_at: r.try_get("created_at")?,
                sent_at: r.try_get("sent_at")?,
                subject_ref: r.try_get("subject_ref")?,
            })
        };
        Ok(rows.iter().map(email).collect::<Result<_, _>>()?)
    }

    /// A brand's suppressed addresses, newest first: (address, reason, since).
    pub async fn suppressions(&self, brand: Uuid) -> Result<Vec<(String, String, DateTime<Utc>)>, CommError> {
        Ok(sqlx::query_as(
            "SELECT email_address, reason, created_at FROM email_suppressions WHERE brand_id = $1 ORDER BY created_at \
             DESC",
        )
        .bind(brand)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Removes an address from a brand's suppression list.
    pub async fn delete_suppression(&self, brand: Uuid, address: &str) -> Result<(), CommError> {
        let removed = sqlx::query("DELETE FROM email_suppressions WHERE brand_id = $1 AND email_address = $2")
            .bind(brand)
            .bind(address.trim().to_lowercase())
            .execute(&self.pool)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(CommError::NotFound("suppression"));
        }
        Ok(())
    }
}
