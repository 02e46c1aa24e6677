//! When rules fire: on a bus event of their type, or when a record's date plus the rule's offset
//! has come ([`fire_date_rules`]). Firing builds the rendering data from Comm's records, checks
//! the rule's conditions, picks the recipient and queues one email per (rule, trigger): the
//! unique key makes a redelivered event or a second scheduler pass a no-op.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool, Row as _};
use uuid::Uuid;

use super::records::Kind;

/// Wakes the mailers when an email is queued.
pub const CHANNEL: &str = "comm_automation";

/// A condition as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// Dotted path into the data.
    pub field: String,
    /// `equals`, `not_equals`, `greater_than`, `less_than`.
    pub operator: String,
    /// Compared with.
    pub value: String,
}

/// Whether every condition holds for `data` (numbers compare as numbers).
pub fn conditions_hold(conditions: &[Condition], data: &Value) -> bool {
    conditions.iter().all(|c| {
        let found = c.field.split('.').try_fold(data, |v, k| v.get(k));
        let text = match found {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let numbers = text.parse::<f64>().ok().zip(c.value.trim().parse::<f64>().ok());
        match c.operator.as_str() {
            "equals" => numbers.map_or(text == c.value, |(a, b)| a == b),
            "not_equals" => numbers.map_or(text != c.value, |(a, b)| a != b),
            "greater_than" => numbers.is_some_and(|(a, b)| a > b),
            "less_than" => numbers.is_some_and(|(a, b)| a < b),
            _ => false,
        }
    })
}

async fn record(tx: &mut PgConnection, kind: &str, id: &str) -> Result<Option<Value>, sqlx::Error> {
    let Ok(id) = Uuid::parse_str(id) else { return Ok(None) };
    sqlx::query_scalar("SELECT data FROM known_records WHERE kind = $1 AND record_id = $2")
        .bind(kind)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
}

/// The rendering data of `record`: the record itself, the client (and order) it belongs to,
/// its brand and the brand's default sender.
pub async fn context(tx: &mut PgConnection, brand: Uuid, kind: Kind, id: Uuid) -> Result<Value, sqlx::Error> {
    let mut data = json!({});
    let own = record(tx, kind.as_str(), &id.to_string()).await?.unwrap_or_else(|| json!({}));
    for (link, linked_kind) in [("client_id", "client"), ("order_id", "order")] {
        if let Some(linked) = own.get(link).and_then(Value::as_str)
            && let Some(found) = record(tx, linked_kind, linked).await?
        {
            data[linked_kind] = found;
        }
    }
    data[kind.as_str()] = own;
    // Amounts as people read them, from the minor units the events carry.
    for object in ["invoice", "order"] {
        let currency = data[object]["currency"].as_str().unwrap_or_default().to_owned();
        for field in ["balance", "total"] {
            if let Some(minor) = data[object][format!("{field}_minor")].as_i64() {
                data[object][field] = json!(super::render::money(&currency, minor));
            }
        }
    }
    brand_and_sender(tx, brand, &mut data).await?;
    Ok(data)
}

/// Fills `brand` (name, display name, domain) and `sender` (the brand's verified default alias;
/// without one, the brand's name and no address) into `data`.
pub async fn brand_and_sender(tx: &mut PgConnection, brand: Uuid, data: &mut Value) -> Result<(), sqlx::Error> {
    let brand_row = sqlx::query("SELECT name, display_name, domain FROM known_brands WHERE brand_id = $1")
        .bind(brand)
        .fetch_optional(&mut *tx)
        .await?;
    let (name, display, domain) = match brand_row {
        Some(r) => (
            r.try_get::<String, _>("name")?,
            r.try_get::<String, _>("display_name")?,
            r.try_get::<String, _>("domain")?,
        ),
        None => (String::new(), String::new(), String::new()),
    };
    let display = if display.is_empty() { name.clone() } else { display };
    data["brand"] = json!({"name": name, "display_name": display, "domain": domain});
    let sender: Option<(String, String)> = sqlx::query_as(
        "SELECT display_name, email_address FROM email_aliases WHERE brand_id = $1 AND is_default AND verified",
    )
    .bind(brand)
    .fetch_optional(&mut *tx)
    .await?;
    data["sender"] = match sender {
        Some((name, email)) => json!({"name": if name.is_empty() { display.clone() } else { name }, "email": email}),
        None => json!({"name": display, "email": ""}),
    };
    Ok(())
}

/// Who gets the email, and whether it is client-facing.
async fn recipient(
    tx: &mut PgConnection,
    who: &str,
    kind: Kind,
    data: &Value,
) -> Result<(String, String, bool), sqlx::Error> {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().trim().to_owned();
    match who {
        "client_contact" => {
            let holder = match kind {
                Kind::Lead => &data["lead"],
                _ => &data["client"],
            };
            Ok((text(holder, "email").to_lowercase(), text(holder, "name"), true))
        }
        _ => {
            let assignee = text(&data["lead"], "assignee_id");
            let Ok(user) = Uuid::parse_str(&assignee) else { return Ok((String::new(), String::new(), false)) };
            let found: Option<(String, String)> =
                sqlx::query_as("SELECT email, display_name FROM known_users WHERE user_id = $1")
                    .bind(user)
                    .fetch_optional(&mut *tx)
                    .await?;
            Ok(found.map_or((String::new(), String::new(), false), |(email, name)| (email.to_lowercase(), name, false)))
        }
    }
}

/// A rule as firing needs it.
#[derive(Debug, Clone)]
struct Firing {
    rule: Uuid,
    organization: Uuid,
    brand: Uuid,
    template: Uuid,
    recipient: String,
    conditions: Vec<Condition>,
}

fn firing(r: &sqlx::postgres::PgRow) -> Result<Firing, sqlx::Error> {
    let conditions: Value = r.try_get("conditions")?;
    Ok(Firing {
        rule: r.try_get("rule_id")?,
        organization: r.try_get("organization_id")?,
        brand: r.try_get("brand_id")?,
        template: r.try_get("template_id")?,
        recipient: r.try_get("recipient")?,
        conditions: serde_json::from_value(conditions).unwrap_or_default(),
    })
}

const FIRING: &str = "rule_id, organization_id, brand_id, template_id, recipient, conditions";

/// Queues `rule`'s email about `record` for `trigger` unless it was queued before; returns
/// whether it queued one.
async fn queue(
    tx: &mut PgConnection,
    rule: &Firing,
    trigger: &str,
    kind: Kind,
    record: Uuid,
) -> Result<bool, sqlx::Error> {
    let mut data = context(tx, rule.brand, kind, record).await?;
    if !conditions_hold(&rule.conditions, &data) {
        return Ok(false);
    }
    let (email, name, client_facing) = recipient(tx, &rule.recipient, kind, &data).await?;
    data["recipient"] = json!({"name": name, "email": email});
    let (status, error) = if email.contains('@') { ("queued", "") } else { ("failed", "no recipient address") };
    let inserted = sqlx::query(
        "INSERT INTO automated_emails (email_id, organization_id, brand_id, rule_id, template_id, trigger_key, \
         subject_ref, recipient, recipient_name, client_facing, data, status, last_error) VALUES ($1, $2, $3, $4, $5, \
         $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (rule_id, trigger_key) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(rule.organization)
    .bind(rule.brand)
    .bind(rule.rule)
    .bind(rule.template)
    .bind(trigger)
    .bind(format!("{}s/{record}", kind.as_str()))
    .bind(&email)
    .bind(&name)
    .bind(client_facing)
    .bind(&data)
    .bind(status)
    .bind(error)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted > 0 {
        sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(&mut *tx).await?;
    }
    Ok(inserted > 0)
}

/// Queues the email of a notification whose recipient chose the email channel (in the
/// notification's transaction, once per notification); the mailer sends it like an automated
/// email, from `automation.default_from`.
pub async fn queue_notification(
    tx: &mut PgConnection,
    organization: Uuid,
    notification: Uuid,
    user: Uuid,
    brand: Option<Uuid>,
    title: &str,
) -> Result<(), sqlx::Error> {
    let person: Option<(String, String)> =
        sqlx::query_as("SELECT email, display_name FROM known_users WHERE user_id = $1")
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
    let (email, name) = person.unwrap_or_default();
    let (status, error) = if email.contains('@') { ("queued", "") } else { ("failed", "no recipient address") };
    let data = json!({"notification": {"title": title}, "sender": {"name": "Sentra", "email": ""},
                      "recipient": {"name": name, "email": email}});
    sqlx::query(
        "INSERT INTO automated_emails (email_id, organization_id, brand_id, rule_id, template_id, trigger_key, \
         subject_ref, recipient, recipient_name, client_facing, data, status, last_error) VALUES ($1, $2, $3, $4, $4, \
         $5, $6, $7, $8, false, $9, $10, $11) ON CONFLICT (rule_id, trigger_key) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(organization)
    .bind(brand)
    .bind(Uuid::nil())
    .bind(format!("notification:{notification}"))
    .bind(format!("notifications/{notification}"))
    .bind(email.to_lowercase())
    .bind(&name)
    .bind(&data)
    .bind(status)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(&mut *tx).await?;
    Ok(())
}

/// Fires the enabled rules of the record's brand that wait for `event_type`.
pub async fn fire_event_rules(
    tx: &mut PgConnection,
    organization: Uuid,
    event_type: &str,
    trigger: &str,
    kind: Kind,
    record: Uuid,
) -> Result<usize, sqlx::Error> {
    let brand: Option<Uuid> =
        sqlx::query_scalar("SELECT brand_id FROM known_records WHERE kind = $1 AND record_id = $2")
            .bind(kind.as_str())
            .bind(record)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
    let Some(brand) = brand else { return Ok(0) };
    let rules = sqlx::query(&format!(
        "SELECT {FIRING} FROM automation_rules WHERE organization_id = $1 AND brand_id = $2 AND enabled AND \
         event_type = $3"
    ))
    .bind(organization)
    .bind(brand)
    .bind(event_type)
    .fetch_all(&mut *tx)
    .await?;
    let mut queued = 0;
    for rule in rules.iter().map(firing) {
        if queue(tx, &rule?, trigger, kind, record).await? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// One pass of the date rules: every open invoice whose due date plus a rule's offset has come
/// (UTC days) and that the rule has not fired for. Returns how many emails it queued.
pub async fn fire_date_rules(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let due = sqlx::query(
        "SELECT r.rule_id, r.organization_id, r.brand_id, r.template_id, r.recipient, r.conditions, k.record_id FROM \
         automation_rules r JOIN known_records k ON k.kind = 'invoice' AND \
         k.brand_id = r.brand_id AND k.organization_id = r.organization_id WHERE r.enabled AND r.date_field = \
         'invoice_due' AND coalesce(k.data->>'due_date', '') <> '' AND (k.data->>'due_date')::date + r.offset_days <= \
         (now() AT TIME ZONE 'UTC')::date AND k.data->>'status' IN ('issued', 'overdue') AND \
         coalesce((k.data->>'balance_minor')::bigint, 0) > 0 AND NOT EXISTS (SELECT 1 FROM automated_emails e WHERE \
         e.rule_id = r.rule_id AND e.trigger_key = 'invoice:' || k.record_id) LIMIT 500",
    )
    .fetch_all(pool)
    .await?;
    let mut queued = 0;
    for row in &due {
        let rule = firing(row)?;
        let invoice: Uuid = row.try_get("record_id")?;
        let mut tx = pool.begin().await?;
        if queue(&mut tx, &rule, &format!("invoice:{invoice}"), Kind::Invoice, invoice).await? {
            queued += 1;
        }
        tx.commit().await?;
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(field: &str, operator: &str, value: &str) -> Condition {
        Condition { field: field.into(), operator: operator.into(), value: value.into() }
    }

    #[test]
    fn conditions_compare_text_and_numbers() {
        let data = json!({"invoice": {"balance_minor": 11900, "status": "overdue"}, "lead": {"source": "website"}});
        assert!(conditions_hold(&[], &data));
        assert!(conditions_hold(&[c("invoice.balance_minor", "greater_than", "10000")], &data));
        assert!(!conditions_hold(&[c("invoice.balance_minor", "less_than", "100")], &data));
        assert!(conditions_hold(
            &[c("invoice.status", "equals", "overdue"), c("lead.source", "not_equals", "referral")],
            &data
        ));
        assert!(!conditions_hold(&[c("lead.missing", "equals", "x")], &data));
        assert!(conditions_hold(&[c("invoice.balance_minor", "equals", "11900.0")], &data));
    }
}
