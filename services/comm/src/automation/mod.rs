//! Email automation: a brand's templates (minijinja) and rules send its reminders and
//! follow-ups — on bus events (`finance.invoice.overdue`, `sales.lead.assigned`, …) or at a time
//! relative to a date (three days before an invoice is due) — from the brand's default sender
//! alias through SMTP, once per (rule, trigger), with one-click unsubscribe on client-facing mail.
//!
//! - [`records`]: the bus consumer keeping what emails render, and firing event rules.
//! - [`rules`]: conditions, the rendering data, recipients, queuing, the date rules' pass.
//! - [`render`]: templates, checked when saved.
//! - [`mailer`]: the SMTP worker, its retries, the unsubscribe tokens; [`links`]: the
//!   one-click unsubscribe over HTTP.
//! - [`store`] and [`api`]: the templates, rules, log and suppression list behind
//!   `sentra.comm.v1.AutomationService`.

pub mod api;
pub mod links;
pub mod mailer;
pub mod records;
pub mod render;
pub mod rules;
pub mod store;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// How automated email is sent.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AutomationConfig {
    /// Whether this replica sends (and runs the date rules).
    pub enabled: bool,
    /// The SMTP relay.
    pub smtp: SmtpConfig,
    /// The From address when a brand has no verified default alias.
    pub default_from: String,
    /// Waits after each temporary failure, seconds; when they run out the email fails.
    pub retry_schedule_secs: Vec<f64>,
    /// Seconds between two passes of the date rules.
    pub schedule_interval_secs: f64,
    /// Where unsubscribe links point (`{base}/email/unsubscribe?token=…`); empty: `https://` and
    /// the brand's domain.
    pub unsubscribe_base_url: String,
}

impl Default for AutomationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            smtp: SmtpConfig::default(),
            default_from: "no-reply@sentra.invalid".into(),
            retry_schedule_secs: vec![60.0, 300.0, 1800.0, 7200.0, 21600.0],
            schedule_interval_secs: 60.0,
            unsubscribe_base_url: String::new(),
        }
    }
}

/// An SMTP relay.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct SmtpConfig {
    /// Host name.
    pub host: String,
    /// Port (587 for STARTTLS, 465 for TLS, 25 without).
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// User name; empty sends without authentication.
    pub username: String,
    /// Password.
    #[serde(skip_serializing)]
    pub password: SecretString,
    /// Deadline of one SMTP exchange, seconds.
    pub timeout_secs: f64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password: SecretString::from(String::new()),
            timeout_secs: 30.0,
        }
    }
}

/// SMTP transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the same host or network only).
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// The event types rules can wait for (those [`records`] keeps a record for).
pub const EVENT_TYPES: &[&str] = &[
    "sales.lead.created",
    "sales.lead.updated",
    "sales.lead.assigned",
    "sales.lead.stage_changed",
    "sales.client.created",
    "sales.client.updated",
    "sales.order.created",
    "sales.order.confirmed",
    "finance.invoice.drafted",
    "finance.invoice.issued",
    "finance.invoice.payment_recorded",
    "finance.invoice.credit_note_issued",
    "finance.invoice.overdue",
    "finance.invoice.voided",
];
