//! Sends queued automated emails through SMTP (lettre): claims due emails with a lease, skips
//! suppressed recipients, renders the template with the data stored at firing, adds one-click
//! unsubscribe headers (RFC 8058) to client-facing mail, and records the outcome: a 5xx reply
//! fails the email for good, a 4xx or a connection failure defers it on the retry schedule until
//! the schedule runs out.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::{PgPool, Row as _};
use tokio::sync::Notify;
use uuid::Uuid;

use super::render::{Part, render};
use super::rules::CHANNEL;
use super::{AutomationConfig, SmtpTls};

/// The email of a notification sent by email (subject, HTML, text).
const NOTIFICATION: [&str; 3] = [
    "{{ notification.title }}",
    "<p>{{ notification.title }}</p><p>Open Sentra to see it.</p>",
    "{{ notification.title }}\n\nOpen Sentra to see it.",
];

#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

/// Signs and reads unsubscribe tokens: `base64url(brand ‖ address).base64url(HMAC-SHA256[..16])`.
#[derive(Clone)]
pub struct Links {
    key: Arc<[u8]>,
}

impl Links {
    /// Tokens signed with `key` (every replica needs the same).
    pub fn new(key: Arc<[u8]>) -> Self {
        Self { key }
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"unsubscribe:");
        mac.update(payload);
        mac.finalize().into_bytes()[..16].to_vec()
    }

    /// The token of `address` on `brand`.
    pub fn token(&self, brand: Uuid, address: &str) -> String {
        let mut payload = brand.as_bytes().to_vec();
        payload.extend_from_slice(address.as_bytes());
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(self.mac(&payload)))
    }

    /// The brand and address of a token this service made; `None` for anything else.
    pub fn read(&self, token: &str) -> Option<(Uuid, String)> {
        let (payload, mac) = token.trim().split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        // Constant-time comparison through the MAC's own verifier.
        #[allow(clippy::expect_used)]
        let mut check = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        check.update(b"unsubscribe:");
        check.update(&payload);
        check.verify_truncated_left(&mac).ok()?;
        if payload.len() < 17 {
            return None;
        }
        let brand = Uuid::from_slice(&payload[..16]).ok()?;
        Some((brand, String::from_utf8(payload[16..].to_vec()).ok()?))
    }
}

/// The sending worker.
pub struct Mailer {
    pool: PgPool,
    config: AutomationConfig,
    links: Links,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Mailer {
    /// A mailer sending through `config.smtp`.
    pub fn new(pool: PgPool, config: AutomationConfig, links: Links) -> Result<Self, String> {
        let smtp = &config.smtp;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
            .port(smtp.port)
            .timeout(Some(Duration::try_from_secs_f64(smtp.timeout_secs).unwrap_or(Duration::from_secs(30))));
        let tls = || TlsParameters::new(smtp.host.clone()).map_err(|e| format!("smtp tls: {e}"));
        builder = match smtp.tls {
            SmtpTls::None => builder.tls(Tls::None),
            SmtpTls::Starttls => builder.tls(Tls::Required(tls()?)),
            SmtpTls::Tls => builder.tls(Tls::Wrapper(tls()?)),
        };
        if !smtp.username.is_empty() {
            builder =
                builder.credentials(Credentials::new(smtp.username.clone(), smtp.password.expose_secret().to_owned()));
        }
        Ok(Self { pool, transport: builder.build(), config, links })
    }

    /// Runs until `stop`: sends due emails as they are queued, and fires date rules every
    /// `schedule_interval_secs`.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) -> Result<(), std::convert::Infallible> {
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(crate::pg::listen(self.pool.clone(), CHANNEL, wake.clone()));
        let interval =
            Duration::try_from_secs_f64(self.config.schedule_interval_secs).unwrap_or(Duration::from_secs(60));
        let mut schedule = tokio::time::interval(interval.max(Duration::from_millis(50)));
        tokio::pin!(stop);
        loop {
            let sent = match self.send_due().await {
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(%error, "Sending automated emails failed.");
                    0
                }
            };
            if sent > 0 {
                continue;
            }
            tokio::select! {
                () = &mut stop => break,
                () = wake.notified() => {}
                _ = schedule.tick() => {
                    match super::rules::fire_date_rules(&self.pool).await {
                        Ok(0) => {}
                        Ok(queued) => tracing::info!(queued, "Date rules fired."),
                        Err(error) => tracing::warn!(%error, "Date rules failed."),
                    }
                }
            }
        }
        listener.abort();
        Ok(())
    }

    /// Claims and sends one batch; returns how many it handled.
    async fn send_due(&self) -> Result<usize, sqlx::Error> {
        let claimed: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE automated_emails SET lease_until = now() + interval '120 seconds' WHERE email_id IN (SELECT \
             email_id FROM automated_emails WHERE status IN ('queued', 'deferred') AND due_at <= now() AND \
             (lease_until IS NULL OR lease_until < now()) ORDER BY due_at LIMIT 16 FOR UPDATE SKIP LOCKED) RETURNING \
             email_id",
        )
        .fetch_all(&self.pool)
        .await?;
        for email in &claimed {
            if let Err(error) = self.send_one(*email).await {
                tracing::warn!(%error, %email, "Automated email not recorded; retried when its lease expires.");
            }
        }
        Ok(claimed.len())
    }

    async fn send_one(&self, email: Uuid) -> Result<(), sqlx::Error> {
        let row = sqlx::query(
            "SELECT e.brand_id, e.recipient, e.recipient_name, e.client_facing, e.data, e.attempts, t.subject, \
             t.html_body, t.text_body, EXISTS (SELECT 1 FROM email_suppressions s WHERE s.brand_id = e.brand_id AND \
             s.email_address = e.recipient) AS suppressed FROM automated_emails e LEFT JOIN email_templates t USING \
             (template_id) WHERE e.email_id = $1",
        )
        .bind(email)
        .fetch_one(&self.pool)
        .await?;
        let attempts: i32 = row.try_get("attempts")?;
        if row.try_get::<bool, _>("suppressed")? {
            return self.finish(email, "suppressed", attempts, "the recipient unsubscribed", "", "", None).await;
        }
        // Notification emails belong to no brand.
        let brand: Uuid = row.try_get::<Option<Uuid>, _>("brand_id")?.unwrap_or_default();
        let recipient: String = row.try_get("recipient")?;
        let mut data: Value = row.try_get("data")?;
        let unsubscribe =
            row.try_get::<bool, _>("client_facing")?.then(|| self.unsubscribe_url(brand, &recipient, &data));
        data["unsubscribe_url"] = json!(unsubscribe.clone().unwrap_or_default());
        let parts: [Option<String>; 3] =
            [row.try_get("subject")?, row.try_get("html_body")?, row.try_get("text_body")?];
        let message_id = format!("<{email}@sentra.automation>");
        let built = self.build(&row, &data, &parts, unsubscribe.as_deref(), &message_id);
        let (message, subject) = match built {
            Ok(built) => built,
            Err(why) => return self.finish(email, "failed", attempts, &why, "", "", None).await,
        };
        match self.transport.send(message).await {
            Ok(_) => self.finish(email, "sent", attempts + 1, "", &subject, &message_id, None).await,
            Err(error) => {
                let reason = error.to_string();
                let next = (!error.is_permanent())
                    .then(|| {
                        self.config.retry_schedule_secs.get(usize::try_from(attempts).unwrap_or(usize::MAX)).copied()
                    })
                    .flatten();
                match next {
                    Some(delay) => {
                        self.finish(email, "deferred", attempts + 1, &reason, &subject, "", Some(delay)).await
                    }
                    None => self.finish(email, "failed", attempts + 1, &reason, &subject, "", None).await,
                }
            }
        }
    }

    fn unsubscribe_url(&self, brand: Uuid, recipient: &str, data: &Value) -> String {
        let base = match self.config.unsubscribe_base_url.trim_end_matches('/') {
            "" => format!("https://{}", data["brand"]["domain"].as_str().unwrap_or_default()),
            base => base.to_owned(),
        };
        format!("{base}/email/unsubscribe?token={}", self.links.token(brand, recipient))
    }

    fn build(
        &self,
        row: &sqlx::postgres::PgRow,
        data: &Value,
        parts: &[Option<String>; 3],
        unsubscribe: Option<&str>,
        message_id: &str,
    ) -> Result<(Message, String), String> {
        let [subject, html, text] = match parts {
            [Some(subject), Some(html), Some(text)] => [subject.as_str(), html.as_str(), text.as_str()],
            _ if data["notification"].is_object() => NOTIFICATION,
            _ => return Err("the template was deleted".to_owned()),
        };
        let subject = render(Part::Subject, subject, data).map_err(|e| e.to_string())?;
        let subject = subject.lines().next().unwrap_or_default().trim().to_owned();
        let html = render(Part::Html, html, data).map_err(|e| e.to_string())?;
        let text = render(Part::Text, text, data).map_err(|e| e.to_string())?;
        let sender_name = data["sender"]["name"].as_str().unwrap_or_default();
        let sender_email = match data["sender"]["email"].as_str().unwrap_or_default() {
            "" => self.config.default_from.as_str(),
            email => email,
        };
        let from = Mailbox::new(
            (!sender_name.is_empty()).then(|| sender_name.to_owned()),
            sender_email.parse().map_err(|e| format!("sender {sender_email:?}: {e}"))?,
        );
        let recipient: String = row.try_get("recipient").map_err(|e| e.to_string())?;
        let name: String = row.try_get("recipient_name").map_err(|e| e.to_string())?;
        let to = Mailbox::new(
            (!name.is_empty()).then_some(name),
            recipient.parse().map_err(|e| format!("recipient {recipient:?}: {e}"))?,
        );
        let mut builder =
            Message::builder().from(from).to(to).subject(subject.clone()).message_id(Some(message_id.to_owned()));
        if let Some(url) = unsubscribe {
            builder = builder.header(ListUnsubscribe(format!("<{url}>"))).header(ListUnsubscribePost);
        }
        let message = builder.multipart(MultiPart::alternative_plain_html(text, html)).map_err(|e| e.to_string())?;
        Ok((message, subject))
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        email: Uuid,
        status: &str,
        attempts: i32,
        error: &str,
        subject: &str,
        message_id: &str,
        retry_in: Option<f64>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE automated_emails SET status = $2, attempts = $3, last_error = $4, subject = CASE WHEN $5 = '' THEN \
             subject ELSE $5 END, message_id = $6, sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END, due_at \
             = now() + make_interval(secs => coalesce($7, 0)), lease_until = NULL WHERE email_id = $1",
        )
        .bind(email)
        .bind(status)
        .bind(attempts)
        .bind(error)
        .bind(subject)
        .bind(message_id)
        .bind(retry_in)
        .execute(&self.pool)
        .await
        .map(drop)
    }
}

/// Adds `address` to `brand`'s suppression list (the unsubscribe link); returns the brand's name.
pub async fn unsubscribe(pool: &PgPool, brand: Uuid, address: &str) -> Result<Option<String>, sqlx::Error> {
    let known: Option<(Uuid, String, String)> =
        sqlx::query_as("SELECT organization_id, name, display_name FROM known_brands WHERE brand_id = $1")
            .bind(brand)
            .fetch_optional(pool)
            .await?;
    let Some((organization, name, display)) = known else { return Ok(None) };
    sqlx::query(
        "INSERT INTO email_suppressions (brand_id, email_address, organization_id, reason) VALUES ($1, $2, $3, \
         'unsubscribed') ON CONFLICT (brand_id, email_address) DO NOTHING",
    )
    .bind(brand)
    .bind(address.to_lowercase())
    .bind(organization)
    .execute(pool)
    .await?;
    Ok(Some(if display.is_empty() { name } else { display }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let links = Links::new(Arc::from(b"key".as_slice()));
        let brand = Uuid::now_v7();
        let token = links.token(brand, "clara@client.example");
        assert_eq!(links.read(&token), Some((brand, "clara@client.example".to_owned())));
        let other = links.token(brand, "mallory@client.example");
        let forged =
            format!("{}.{}", other.split('.').next().unwrap_or_default(), token.split('.').nth(1).unwrap_or_default());
        assert_eq!(links.read(&forged), None);
        assert_eq!(Links::new(Arc::from(b"other".as_slice())).read(&token), None);
        assert_eq!(links.read("garbage"), None);
    }
}
