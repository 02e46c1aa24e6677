//! Live lead changes for `WatchPipeline`: one feed follower per replica, fanned out to every open
//! stream of that replica.
//!
//! The follower starts at the feed's head and, while anyone watches, loads each changed lead once
//! (the aggregate, so a change is never older than what `GetLead` says) and broadcasts it; each
//! stream keeps the changes of its caller's tenant and readable brands. A stream that falls more
//! than [`CAPACITY`] changes behind is ended with UNAVAILABLE, and its client reloads: dropping
//! changes silently would leave a board wrong without anyone knowing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sentra_event_store::{EventStore, EventStoreError, Loaded, RecordedEvent};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::lead::Lead;

/// Changes a stream may fall behind before it is ended.
pub const CAPACITY: usize = 1024;

/// One changed lead, as it stands after the change.
#[derive(Debug)]
pub struct LeadChange {
    /// The stored event type that changed it.
    pub event_type: String,
    /// The lead.
    pub lead: Loaded<Lead>,
}

impl LeadChange {
    /// The owning tenant.
    pub fn tenant(&self) -> Uuid {
        self.lead.tenant_id
    }

    /// The lead's brand.
    pub fn brand(&self) -> Uuid {
        self.lead.state.brand_id
    }
}

/// The fan-out of lead changes (cheap to clone: one channel).
#[derive(Clone, Debug)]
pub struct PipelineWatch {
    changes: broadcast::Sender<Arc<LeadChange>>,
}

impl Default for PipelineWatch {
    fn default() -> Self {
        Self { changes: broadcast::channel(CAPACITY).0 }
    }
}

impl PipelineWatch {
    /// A receiver of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LeadChange>> {
        self.changes.subscribe()
    }

    /// Follows `store`'s feed until `stop` resolves, broadcasting lead changes while anyone
    /// listens. Feed errors are retried after a second; the follower keeps its place.
    pub async fn run(&self, store: EventStore, stop: impl Future<Output = ()> + Send) -> Result<(), EventStoreError> {
        let feed = store.feed();
        let mut follower = feed.follow(feed.head().await?, 500).await;
        tokio::pin!(stop);
        loop {
            let batch = tokio::select! {
                () = &mut stop => return Ok(()),
                batch = follower.next_batch() => batch,
            };
            match batch {
                Ok(batch) if self.changes.receiver_count() > 0 => self.publish(&store, &batch).await,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "The pipeline watch cannot read the feed; retrying.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Loads each lead the batch changed once, after its last event in the batch.
    async fn publish(&self, store: &EventStore, batch: &[RecordedEvent]) {
        let mut changed: Vec<(Uuid, &str, &str)> = Vec::new();
        for event in batch.iter().filter(|e| e.aggregate_type == "lead") {
            changed.retain(|(tenant, id, _)| !(*tenant == event.tenant_id && *id == event.aggregate_id));
            changed.push((event.tenant_id, &event.aggregate_id, &event.event_type));
        }
        for (tenant, id, event_type) in changed {
            match store.load::<Lead>(tenant, id).await {
                Ok(lead) if lead.version > 0 => {
                    // No receiver left is fine: nobody watches any more.
                    let _ = self.changes.send(Arc::new(LeadChange { event_type: event_type.to_owned(), lead }));
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, lead_id = id, "The pipeline watch cannot load a changed lead."),
            }
        }
    }
}

/// One caller's view of the changes: its tenant, the brands it may read.
#[derive(Debug)]
pub struct LeadWatch {
    changes: broadcast::Receiver<Arc<LeadChange>>,
    tenant: Uuid,
    brands: Option<Vec<Uuid>>,
}

/// The watcher fell too far behind; changes were lost for it.
#[derive(Debug, thiserror::Error)]
#[error("the watch fell {0} changes behind; reconnect and reload")]
pub struct FellBehind(pub u64);

impl LeadWatch {
    /// A watch over `changes` for `tenant`, limited to `brands` (`None`: every brand).
    pub fn new(changes: broadcast::Receiver<Arc<LeadChange>>, tenant: Uuid, brands: Option<Vec<Uuid>>) -> Self {
        Self { changes, tenant, brands }
    }

    /// The next change this caller may see; `Ok(None)` when the service is stopping.
    pub async fn next(&mut self) -> Result<Option<Arc<LeadChange>>, FellBehind> {
        loop {
            match self.changes.recv().await {
                Ok(change)
                    if change.tenant() == self.tenant
                        && self.brands.as_ref().is_none_or(|brands| brands.contains(&change.brand())) =>
                {
                    return Ok(Some(change));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => return Err(FellBehind(missed)),
                Err(broadcast::error::RecvError::Closed) => return Ok(None),
            }
        }
    }
}
