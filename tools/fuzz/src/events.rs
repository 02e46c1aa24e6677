//! Stored event streams, decoded and replayed the way the event store loads an aggregate.
//!
//! No upcasters are registered yet (every event is at its first schema version), so this is the
//! whole read path: a JSON payload per event (`serde_json::from_value`, as `EventStore::load`
//! does), `Aggregate::apply` in order, and the snapshot of the result (the state as JSON), which
//! must read back as the same state or a snapshot would silently change history.

use cqrs_es::Aggregate;
use sentra_finance::domain::invoice::Invoice;
use sentra_sales::domain::client::Client;
use sentra_sales::domain::lead::Lead;
use sentra_sales::domain::order::Order;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn replay<A>(payloads: Vec<serde_json::Value>) -> A
where
    A: Aggregate + Serialize + DeserializeOwned + PartialEq,
{
    let mut state = A::default();
    for payload in payloads {
        // A payload that does not decode fails the load with an error (a clean one); the
        // events before it are what a reader could have seen.
        let Ok(event) = serde_json::from_value::<A::Event>(payload) else { break };
        state.apply(event);
    }
    let snapshot = serde_json::to_value(&state).expect("a state serializes");
    let restored: A = serde_json::from_value(snapshot).expect("a snapshot reads back");
    assert!(restored == state, "the snapshot of {} changed the state", A::TYPE);
    state
}

/// The first byte picks the aggregate (lead, client, order, invoice); the rest is a JSON array of
/// event payloads.
pub fn stored_events(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(payloads) = serde_json::from_slice::<Vec<serde_json::Value>>(rest) else { return };
    match pick % 4 {
        0 => drop(replay::<Lead>(payloads)),
        1 => drop(replay::<Client>(payloads)),
        2 => drop(replay::<Order>(payloads)),
        _ => {
            let invoice = replay::<Invoice>(payloads);
            // Histories from before the money bound may hold anything: the sums saturate.
            let (paid, balance, overpaid) = (invoice.paid(), invoice.balance(), invoice.overpaid());
            assert!(balance >= 0 && overpaid >= 0, "balance {balance}, overpaid {overpaid}, paid {paid}");
        }
    }
}
