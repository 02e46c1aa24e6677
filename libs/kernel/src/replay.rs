//! Event replay for analysts: the `ReadEvents` stream both Sales and Finance serve.
//!
//! A reader follows its context's feed from a position (a resume token of an earlier batch), keeps
//! the caller's organization's events that match the query, and turns each into its public
//! integration event (the service's mapper, the same one the bus relay uses). Payloads never carry
//! a service's private storage shape, and personal data is redacted unless the caller may read
//! every lead and client (an owner or admin): an analyst sees what happened, not to whom.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sentra_auth::Caller;
use sentra_auth::permissions::ANALYTICS_EVENTS_READ;
use sentra_event_store::{Cursor, RecordedEvent, Subscription};
use sentra_proto::sentra::analytics::v1 as pb;
use sentra_runtime::wire;
use uuid::Uuid;

use crate::{AppError, Kernel, Result};

/// Events read from the feed per batch (and at most per streamed message).
const BATCH: usize = 1000;
/// Feed batches skipped without a match before a reader reports its position anyway, so a
/// resumable client keeps moving past other organizations' events.
const SKIPPED_BATCHES_PER_REPORT: usize = 10;
/// Most aggregate or event types one query may name.
const MAX_TYPES: usize = 64;

/// Whether personal data may leave in payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pii {
    /// The caller may read every lead and client: payloads are complete.
    Keep,
    /// Contact names, emails and phones are cleared.
    Redact,
}

/// A validated `sentra.analytics.v1.EventQuery`.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Read after this position.
    pub after: Cursor,
    /// Only these aggregate types (empty: all).
    pub aggregate_types: Vec<String>,
    /// Only these event types (empty: all).
    pub event_types: Vec<String>,
    /// Only events recorded at or after this instant.
    pub recorded_from: Option<DateTime<Utc>>,
    /// Only events recorded before this instant.
    pub recorded_to: Option<DateTime<Utc>>,
    /// Stay open for new events after catching up.
    pub follow: bool,
}

fn type_names(field: &'static str, names: &[String]) -> Result<Vec<String>> {
    if names.len() > MAX_TYPES {
        return Err(AppError::invalid(field, format!("at most {MAX_TYPES} names")));
    }
    for name in names {
        let plain = !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if !plain {
            return Err(AppError::invalid(field, format!("{name:?} is not a type name (lower case and _)")));
        }
    }
    Ok(names.to_vec())
}

impl TryFrom<Option<&pb::EventQuery>> for EventQuery {
    type Error = AppError;

    fn try_from(query: Option<&pb::EventQuery>) -> Result<Self> {
        let Some(query) = query else { return Ok(Self::default()) };
        let after = match query.after.as_str() {
            "" => Cursor::START,
            token => token
                .parse()
                .map_err(|_| AppError::invalid("query.after", "not a position from an earlier ReadEvents answer"))?,
        };
        let instant = |field: &'static str, t: Option<&prost_types::Timestamp>| {
            t.map(|t| wire::from_timestamp(t).ok_or_else(|| AppError::invalid(field, "not a valid timestamp")))
                .transpose()
        };
        let recorded_from = instant("query.recorded_from", query.recorded_from.as_ref())?;
        let recorded_to = instant("query.recorded_to", query.recorded_to.as_ref())?;
        if let (Some(from), Some(to)) = (recorded_from, recorded_to)
            && to <= from
        {
            return Err(AppError::invalid("query.recorded_to", "must be after recorded_from"));
        }
        Ok(Self {
            after,
            aggregate_types: type_names("query.aggregate_types", &query.aggregate_types)?,
            event_types: type_names("query.event_types", &query.event_types)?,
            recorded_from,
            recorded_to,
            follow: query.follow,
        })
    }
}

impl EventQuery {
    fn matches(&self, event: &RecordedEvent) -> bool {
        (self.aggregate_types.is_empty() || self.aggregate_types.contains(&event.aggregate_type))
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
            && self.recorded_from.is_none_or(|from| event.recorded_at >= from)
            && self.recorded_to.is_none_or(|to| event.recorded_at < to)
    }
}

/// One answer of a reader: matching events and the position after everything it read.
#[derive(Debug)]
pub struct EventBatch {
    /// The organization's matching events, in feed order.
    pub events: Vec<RecordedEvent>,
    /// Resume after this.
    pub position: Cursor,
    /// This batch reached the end of the feed as it was when read.
    pub caught_up: bool,
}

/// A running replay of one organization's events (see [`Kernel::read_events`]).
pub struct EventReader {
    subscription: Subscription,
    tenant: Uuid,
    query: EventQuery,
    pii: Pii,
    caught_up: bool,
    finished: bool,
}

impl std::fmt::Debug for EventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReader").field("tenant", &self.tenant).field("query", &self.query).finish_non_exhaustive()
    }
}

impl Kernel {
    /// Starts a replay of the caller's organization's events; needs `analytics.events.read`.
    pub async fn read_events(&self, who: &Caller, query: EventQuery) -> Result<EventReader> {
        who.principal.require(ANALYTICS_EVENTS_READ, None)?;
        let pii = if who.principal.is_org_admin() { Pii::Keep } else { Pii::Redact };
        let subscription = self.store.feed().follow(query.after, BATCH).await;
        Ok(EventReader { subscription, tenant: who.tenant(), query, pii, caught_up: false, finished: false })
    }
}

impl EventReader {
    /// Whether payloads keep personal data.
    pub fn pii(&self) -> Pii {
        self.pii
    }

    /// The next batch; `None` once a reader that does not follow has caught up. A following
    /// reader that sees nothing new for `keepalive` answers an empty batch (a keep-alive).
    pub async fn next(&mut self, keepalive: Duration) -> Result<Option<EventBatch>> {
        if self.finished {
            return Ok(None);
        }
        let mut skipped = 0;
        loop {
            let read = if self.caught_up {
                match tokio::time::timeout(keepalive, self.subscription.next_batch()).await {
                    Ok(batch) => Some(batch?),
                    Err(_) => return Ok(Some(self.batch(Vec::new(), false))),
                }
            } else {
                self.subscription.poll().await?
            };
            let Some(read) = read else {
                self.caught_up = true;
                self.finished = !self.query.follow;
                return Ok(Some(self.batch(Vec::new(), true)));
            };
            let events: Vec<_> =
                read.into_iter().filter(|e| e.tenant_id == self.tenant && self.query.matches(e)).collect();
            skipped += 1;
            if !events.is_empty() || skipped >= SKIPPED_BATCHES_PER_REPORT {
                return Ok(Some(self.batch(events, false)));
            }
        }
    }

    fn batch(&self, events: Vec<RecordedEvent>, caught_up: bool) -> EventBatch {
        EventBatch { events, position: self.subscription.cursor(), caught_up }
    }
}

/// A context's mapping of a recorded event to its public integration event as an `Any`
/// (`None`: the event is private to the context).
pub type PublicMapper = fn(&RecordedEvent, Pii) -> std::result::Result<Option<prost_types::Any>, AppError>;

/// The wire form of one batch, each event mapped by `mapper`.
pub fn batch_pb(context: &str, batch: &EventBatch, pii: Pii, mapper: PublicMapper) -> Result<pb::EventBatch> {
    let mut events = Vec::with_capacity(batch.events.len());
    for event in &batch.events {
        let Some(payload) = mapper(event, pii)? else { continue };
        events.push(pb::Event {
            position: event.cursor().to_string(),
            context: context.to_owned(),
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            record_time: Some(wire::timestamp(event.recorded_at)),
            payload: Some(payload),
            redacted: pii == Pii::Redact,
            event_id: event.event_id.to_string(),
        });
    }
    Ok(pb::EventBatch { events, position: batch.position.to_string(), caught_up: batch.caught_up })
}

/// The `ReadEvents` stream of `reader`: each batch mapped by `mapper` and wrapped by `wrap` into
/// the service's response message; an error ends the stream with its status.
pub fn stream<T: Send + 'static>(
    reader: EventReader,
    context: &'static str,
    mapper: PublicMapper,
    keepalive: Duration,
    wrap: fn(pb::EventBatch) -> T,
) -> impl futures::Stream<Item = std::result::Result<T, tonic::Status>> + Send {
    futures::stream::unfold(Some(reader), move |reader| async move {
        let mut reader = reader?;
        let next = reader
            .next(keepalive)
            .await
            .and_then(|batch| batch.map(|batch| batch_pb(context, &batch, reader.pii(), mapper)).transpose());
        match next {
            Ok(Some(batch)) => Some((Ok(wrap(batch)), Some(reader))),
            Ok(None) => None,
            Err(error) => Some((Err(error.into()), None)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_garbage_is_refused() {
        let cursor = Cursor { transaction_id: 7_341, position: 99 };
        assert_eq!(cursor.to_string().parse::<Cursor>().ok(), Some(cursor));
        for bad in ["", "7", "a-b", "1-", "-1-2", "1-2-3", "1.2"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn queries_name_the_bad_field() {
        let bad = |q: pb::EventQuery| match EventQuery::try_from(Some(&q)) {
            Err(AppError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(bad(pb::EventQuery { after: "x".into(), ..Default::default() }), "query.after");
        assert_eq!(
            bad(pb::EventQuery { event_types: vec!["Created".into()], ..Default::default() }),
            "query.event_types"
        );
        assert_eq!(
            bad(pb::EventQuery { aggregate_types: vec![String::new()], ..Default::default() }),
            "query.aggregate_types"
        );
        let t = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        assert_eq!(
            bad(pb::EventQuery { recorded_from: t(10), recorded_to: t(10), ..Default::default() }),
            "query.recorded_to"
        );
        let ok = EventQuery::try_from(None).unwrap();
        assert_eq!(ok.after, Cursor::START);
        assert!(!ok.follow);
    }
}
