//! The overdue job: marks issued invoices past their due date (with a balance) `overdue`, which
//! records an `invoice.overdue` event the bus publishes. One replica runs it at a time (advisory
//! lock); every run is idempotent, since the aggregate ignores invoices that are not due.

use std::time::Duration;

use chrono::Utc;
use sentra_event_store::EventStore;

use crate::app::system_metadata;
use crate::domain::invoice::{Invoice, InvoiceCommand};
use crate::queries;

/// Runs one pass: returns how many invoices became overdue.
pub async fn mark_overdue(store: &EventStore) -> Result<usize, crate::error::FinanceError> {
    let today = Utc::now().date_naive();
    let mut marked = 0;
    for (tenant, id) in queries::due_for_overdue(store.pool(), today).await? {
        let mut invoice = store.load::<Invoice>(tenant, &id.to_string()).await?;
        let events =
            sentra_event_store::decide(&mut invoice.state, InvoiceCommand::CheckOverdue { today }, &()).await?;
        if events.is_empty() {
            continue;
        }
        match store.commit(&mut invoice, events, &system_metadata()).await {
            Ok(_) => marked += 1,
            // Someone changed it meanwhile (a payment); the next pass looks again.
            Err(sentra_event_store::EventStoreError::Conflict { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(marked)
}

/// Runs [`mark_overdue`] every `interval` while this replica holds the job's lock.
pub async fn run_overdue(store: EventStore, interval: Duration, shutdown: impl std::future::Future<Output = ()>) {
    let mut shutdown = std::pin::pin!(shutdown);
    let feed = store.feed();
    loop {
        match feed.try_lead("finance.overdue").await {
            Ok(Some(lock)) => {
                match mark_overdue(&store).await {
                    Ok(0) => {}
                    Ok(marked) => tracing::info!(marked, "Invoices marked overdue."),
                    Err(error) => tracing::warn!(%error, "Overdue pass failed; retrying next interval."),
                }
                if let Err(error) = lock.release().await {
                    tracing::warn!(%error, "Overdue lock release failed.");
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "Overdue lock unavailable."),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
