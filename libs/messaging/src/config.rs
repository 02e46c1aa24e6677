//! Broker settings shared by relays and consumers, and the reconnect backoff.

use std::time::Duration;

use secrecy::SecretString;

/// Name of the single topic exchange every event goes through (before the prefix).
pub const EXCHANGE: &str = "sentra.events";

/// How to reach RabbitMQ and how to name things on it.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Connection URL, for example `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: SecretString,
    /// Prefix of every exchange and queue name: empty in production, unique per test so parallel
    /// tests never share broker state.
    pub prefix: String,
    /// Longest wait for a connection (TCP + AMQP handshake) before it counts as failed.
    pub connect_timeout: Duration,
    /// Longest wait for the broker to confirm a batch of publishes; past it the batch counts as
    /// failed, the connection is reopened and the batch republished.
    pub confirm_timeout: Duration,
    /// First delay before reconnecting after a broker error; doubles per failure.
    pub reconnect_min: Duration,
    /// Ceiling of the reconnect delay.
    pub reconnect_max: Duration,
    /// For throwaway namespaces (tests, previews): the broker deletes a consumer's queues once
    /// they have gone this long without a consumer or a declaration (`x-expires`). `None` keeps
    /// them, as production must.
    pub queue_expiry: Option<Duration>,
}

impl BrokerConfig {
    /// Settings for the broker at `url` with no prefix and default timeouts (connect 10 s,
    /// confirm 30 s, reconnect 100 ms doubling up to 10 s).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            prefix: String::new(),
            connect_timeout: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(30),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            queue_expiry: None,
        }
    }

    /// Prefixes every exchange and queue name with `prefix`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the reconnect backoff bounds.
    pub fn with_reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max.max(min);
        self
    }

    /// Lets the broker delete queues unused for `expiry` (see [`BrokerConfig::queue_expiry`]).
    pub fn with_queue_expiry(mut self, expiry: Duration) -> Self {
        self.queue_expiry = Some(expiry);
        self
    }

    /// Sets the longest wait for publisher confirms.
    pub fn with_confirm_timeout(mut self, timeout: Duration) -> Self {
        self.confirm_timeout = timeout;
        self
    }

    /// `<prefix>sentra.events`, the topic exchange.
    pub fn exchange_name(&self) -> String {
        format!("{}{EXCHANGE}", self.prefix)
    }
}

impl From<&sentra_runtime::config::AmqpConfig> for BrokerConfig {
    fn from(config: &sentra_runtime::config::AmqpConfig) -> Self {
        let broker = Self { url: config.url.clone(), ..Self::new("").with_prefix(config.prefix.clone()) };
        match config.queue_expiry_secs {
            0 => broker,
            secs => broker.with_queue_expiry(Duration::from_secs(secs)),
        }
    }
}

/// Exponential backoff between reconnect attempts (and between consumer infrastructure retries).
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self { min, max: max.max(min), next: min }
    }

    pub(crate) fn for_broker(config: &BrokerConfig) -> Self {
        Self::new(config.reconnect_min, config.reconnect_max)
    }

    /// The delay to wait now; the following one doubles.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Back to the minimum after a success.
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}
