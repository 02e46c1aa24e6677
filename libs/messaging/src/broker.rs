//! Connections, topology declaration and confirmed publishing.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ConnectionStatus, ExchangeKind};
use secrecy::ExposeSecret;

use crate::config::BrokerConfig;
use crate::envelope::short;
use crate::error::{BusError, Result};

/// Opens a connection within `connect_timeout`. `purpose` names it in the broker's connection
/// list (`sentra-bus relay sales`), which helps when reading the management UI.
pub(crate) async fn connect(config: &BrokerConfig, purpose: &str) -> Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(purpose.into());
    tokio::time::timeout(config.connect_timeout, Connection::connect(config.url.expose_secret(), properties))
        .await
        .map_err(|_| BusError::Timeout(config.connect_timeout))?
        .map_err(BusError::from)
}

/// Closes `connection` politely if it still looks open. Bounded: on a half-dead socket the
/// broker's close-ok may never come, and a reconnect must not wait for it.
pub(crate) async fn close(connection: &Connection) {
    if connection.status().connected() {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close(200, "closing".into())).await;
    }
}

const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Declares the durable topic exchange (idempotent).
pub(crate) async fn declare_exchange(channel: &Channel, config: &BrokerConfig) -> Result<ShortString> {
    let exchange = short(&config.exchange_name())?;
    channel
        .exchange_declare(
            exchange.clone(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
            FieldTable::default(),
        )
        .await?;
    Ok(exchange)
}

/// Whether a relay or consumer is active and holds a live broker connection; shared with the
/// handles services keep for health probes.
#[derive(Clone, Default)]
pub(crate) struct LinkState {
    inner: Arc<Mutex<Link>>,
}

impl std::fmt::Debug for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkState").field("active", &self.is_active()).field("connected", &self.is_connected()).finish()
    }
}

#[derive(Default)]
struct Link {
    active: bool,
    connection: Option<ConnectionStatus>,
}

impl LinkState {
    fn with<T>(&self, f: impl FnOnce(&mut Link) -> T) -> T {
        // A panic while holding this lock cannot leave the two plain fields inconsistent.
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn set_active(&self, active: bool) {
        self.with(|link| link.active = active);
    }

    pub(crate) fn set_connection(&self, connection: Option<&Connection>) {
        self.with(|link| link.connection = connection.map(|c| c.status().clone()));
    }

    pub(crate) fn is_active(&self) -> bool {
        self.with(|link| link.active)
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.with(|link| link.connection.as_ref().is_some_and(ConnectionStatus::connected))
    }
}

/// One message ready to publish.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) exchange: ShortString,
    pub(crate) routing_key: ShortString,
    pub(crate) body: Vec<u8>,
    pub(crate) properties: BasicProperties,
    /// For error messages only.
    pub(crate) message_id: String,
}

/// A connection with one confirm-mode channel and the exchange declared.
pub(crate) struct Publisher {
    connection: Connection,
    channel: Channel,
    exchange: ShortString,
    confirm_timeout: std::time::Duration,
}

impl Publisher {
    /// Connects and sets up, all within `connect_timeout` (a half-open connection must not stall
    /// the caller).
    pub(crate) async fn open(config: &BrokerConfig, purpose: &str) -> Result<Self> {
        let open = async { Self::on(connect(config, purpose).await?, config).await };
        tokio::time::timeout(config.connect_timeout, open)
            .await
            .map_err(|_| BusError::Timeout(config.connect_timeout))?
    }

    /// A confirm channel on an existing connection.
    pub(crate) async fn on(connection: Connection, config: &BrokerConfig) -> Result<Self> {
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let exchange = declare_exchange(&channel, config).await?;
        Ok(Self { connection, channel, exchange, confirm_timeout: config.confirm_timeout })
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.connection
    }

    pub(crate) fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The exchange all events go to.
    pub(crate) fn exchange(&self) -> &ShortString {
        &self.exchange
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    /// Publishes all messages in order on the one channel (so the broker keeps their order) and
    /// waits until the broker has confirmed every one. Any nack, error or timeout fails the whole
    /// batch: the caller must not mark any of it as sent.
    pub(crate) async fn publish_all(&self, messages: &[Outgoing]) -> Result<()> {
        // Sending is bounded too: on a half-dead connection a write may never complete.
        tokio::time::timeout(self.confirm_timeout, self.publish_and_confirm(messages))
            .await
            .map_err(|_| BusError::Timeout(self.confirm_timeout))?
    }

    async fn publish_and_confirm(&self, messages: &[Outgoing]) -> Result<()> {
        let mut confirms = Vec::with_capacity(messages.len());
        for message in messages {
            let confirm = self
                .channel
                .basic_publish(
                    message.exchange.clone(),
                    message.routing_key.clone(),
                    BasicPublishOptions::default(),
                    &message.body,
                    message.properties.clone(),
                )
                .await?;
            confirms.push((message, confirm));
        }
        for (message, confirm) in confirms {
            if !confirm.await?.is_ack() {
                return Err(BusError::Nacked { message_id: message.message_id.clone() });
            }
        }
        Ok(())
    }

    /// Acks or nacks a delivery within the confirm timeout. An acker of a channel that already
    /// died reports `false`; that is a lost connection too (the broker requeues the message).
    pub(crate) async fn settle(&self, settle: impl Future<Output = lapin::Result<bool>>) -> Result<()> {
        match tokio::time::timeout(self.confirm_timeout, settle).await {
            Err(_) => Err(BusError::Timeout(self.confirm_timeout)),
            Ok(Err(error)) => Err(error.into()),
            Ok(Ok(false)) => Err(BusError::Disconnected("delivery channel closed before the ack")),
            Ok(Ok(true)) => Ok(()),
        }
    }

    /// Closes the connection politely (best effort: it may already be gone).
    pub(crate) async fn close(&self) {
        close(&self.connection).await;
    }
}
