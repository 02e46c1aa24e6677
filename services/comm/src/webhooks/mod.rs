//! Webhooks: the organization's endpoints receive its public integration events (Sales' and
//! Finance's `*.events.v1` messages, in the proto JSON mapping), signed per the Standard Webhooks
//! specification.
//!
//! - [`endpoints`]: the endpoints and their sealed `whsec_` secrets (rotation with a grace period).
//! - [`delivery`]: the bus consumer that turns events into deliveries (once per event and
//!   endpoint) and the dispatcher that sends them, retrying on the spec's schedule.
//! - [`guard`]: the SSRF guard every request goes through.
//! - [`api`] serves `sentra.comm.v1.WebhookService`.

pub mod api;
pub mod delivery;
pub mod endpoints;
pub mod guard;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// How webhooks are delivered.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// Whether this replica runs the dispatcher.
    pub enabled: bool,
    /// Addresses (or CIDRs) requests may reach although they are loopback or private: tests and
    /// receivers on the agency's own network. Empty in production.
    pub allow_addresses: Vec<String>,
    /// Deadline of one request, seconds.
    pub timeout_secs: f64,
    /// The delay before each attempt, seconds; the first is the first attempt's (0: at once).
    /// The default is the Standard Webhooks schedule: 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
    /// 14 h, 20 h, 24 h.
    pub retry_schedule_secs: Vec<f64>,
    /// Each delay is stretched or shrunk by up to this fraction, so retries do not arrive in
    /// waves.
    pub jitter: f64,
    /// An endpoint whose deliveries have all failed for this long is disabled, seconds (5 days).
    pub disable_after_secs: f64,
    /// Requests in flight at once, over all endpoints.
    pub concurrency: usize,
    /// Requests in flight at once to one endpoint.
    pub per_endpoint_concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_addresses: Vec::new(),
            timeout_secs: 15.0,
            retry_schedule_secs: vec![0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0],
            jitter: 0.1,
            disable_after_secs: 5.0 * 86400.0,
            concurrency: 64,
            per_endpoint_concurrency: 4,
        }
    }
}

/// A new random secret: 24 bytes, shown to people as `whsec_` and base64.
pub fn new_secret() -> Vec<u8> {
    let mut key = vec![0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    key
}

/// The secret as shown once to the caller.
pub fn display_secret(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// One `v1,<base64>` signature: HMAC-SHA256 over `{id}.{timestamp}.{body}` with the secret's
/// bytes, as the Standard Webhooks specification defines it.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    // HMAC accepts keys of any length.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether `event_type` is one `filter` selects: an empty filter selects everything; an entry is
/// an exact type, `*`, or a prefix ending in `.*`.
pub fn selects(filter: &[String], event_type: &str) -> bool {
    filter.is_empty()
        || filter.iter().any(|f| {
            f == "*"
                || f == event_type
                || f.strip_suffix(".*")
                    .is_some_and(|prefix| event_type.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_specifications_example() {
        // The example of the Standard Webhooks specification (and of every reference library).
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_or_default();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn filters_select_exact_types_and_prefixes() {
        let filter = vec!["finance.invoice.*".to_owned(), "sales.lead.created".to_owned()];
        assert!(selects(&filter, "finance.invoice.overdue"));
        assert!(selects(&filter, "sales.lead.created"));
        assert!(!selects(&filter, "sales.lead.assigned"));
        assert!(!selects(&filter, "finance.invoices.x"));
        assert!(selects(&[], "anything.at.all"));
        assert!(selects(&["*".to_owned()], "sales.order.confirmed"));
    }
}
