use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use sentra_bus::{Envelope, FeedRelay, Payload, RelayConfig, header_str, header_u64, headers};
use sentra_event_store::EventStore;
use sentra_proto::sentra::sales::events::v1::OrderConfirmed;

use crate::support::{Probe, append, env, stop, stop_signal, wait_until};

fn spawn(
    relay: &Arc<FeedRelay>,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<sentra_bus::Result<()>>) {
    let (tx, signal) = stop_signal();
    let relay = relay.clone();
    (tx, tokio::spawn(async move { relay.run(signal).await }))
}

#[tokio::test]
async fn relay_publishes_in_order_with_ids_keys_and_headers_and_resumes_from_its_checkpoint() {
    let env = env().await;
    let tenant = uuid::Uuid::new_v4();
    let mut probe = Probe::bind(&env.broker, &["sales.#"]).await;

    // Two aggregates, interleaved across commands.
    let mut expected = Vec::new();
    expected.extend(append(&env.store, tenant, "order", "o-1", 0, &["created", "line_added"]).await);
    expected.extend(append(&env.store, tenant, "lead", "l-1", 0, &["created"]).await);
    expected.extend(append(&env.store, tenant, "order", "o-1", 2, &["confirmed"]).await);
    expected.extend(append(&env.store, tenant, "lead", "l-1", 1, &["stage_changed"]).await);

    // Slow polling, so a prompt arrival of the live event below normally comes from NOTIFY. (Not
    // only: the feed holds an event back while an older transaction anywhere on the server is
    // open, and then only the poll picks it up, which parallel tests make common enough.)
    let config = RelayConfig::new(env.broker.clone())
        .with_poll_interval(Duration::from_secs(2))
        .with_idle_check_interval(Duration::from_secs(2));
    let relay = Arc::new(FeedRelay::new(&env.store, "sales", config.clone()));
    let (tx, task) = spawn(&relay);

    let keys = [
        ("sales.order.created", "o-1", 1),
        ("sales.order.line_added", "o-1", 2),
        ("sales.lead.created", "l-1", 1),
        ("sales.order.confirmed", "o-1", 3),
        ("sales.lead.stage_changed", "l-1", 2),
    ];
    for (event_id, (key, aggregate_id, sequence)) in expected.iter().zip(keys) {
        let delivery = probe.next().await;
        let properties = &delivery.properties;
        assert_eq!(delivery.routing_key.as_str(), key);
        assert_eq!(properties.message_id().as_ref().unwrap().as_str(), event_id.to_string());
        assert_eq!(*properties.delivery_mode(), Some(2));
        assert_eq!(properties.content_type().as_ref().unwrap().as_str(), "application/json");
        assert_eq!(header_str(properties, headers::TENANT_ID).unwrap(), tenant.to_string());
        assert_eq!(header_str(properties, headers::CORRELATION_ID).unwrap(), "corr-1");
        // The header names the relay's publish span: same trace as the event, a span of its own.
        let traceparent = header_str(properties, headers::TRACEPARENT).unwrap();
        assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{traceparent}");
        assert!(traceparent.ends_with("-01") && traceparent.len() == 55, "{traceparent}");
        assert!(!traceparent.contains("00f067aa0ba902b7"), "{traceparent}");
        let envelope = Envelope::from_message(&delivery.properties, &delivery.data).unwrap();
        assert_eq!(envelope.traceparent(), Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert_eq!(header_str(properties, headers::EVENT_TYPE).unwrap(), envelope.event_type);
        assert_eq!(envelope.event_id, *event_id);
        assert_eq!(envelope.tenant_id, tenant);
        assert_eq!(envelope.routing_key, key);
        assert_eq!(envelope.aggregate_id, aggregate_id);
        assert_eq!(envelope.sequence, sequence);
        assert_eq!(envelope.event_version, "1");
        let Payload::Json(payload) = &envelope.payload else { panic!("a JSON payload without a mapper") };
        assert_eq!(payload["kind"], envelope.event_type);
        assert_eq!(envelope.metadata_str("actor"), Some("user:alice"));
    }
    wait_until("the relay to be active and connected", || async { relay.is_active() && relay.is_connected() }).await;

    // Appended by another process (its own store: no in-process wake-up, NOTIFY or the poll).
    let other = EventStore::new(env.pool.clone());
    let live = append(&other, tenant, "order", "o-2", 0, &["created"]).await;
    let delivery = probe.next().await;
    assert_eq!(delivery.properties.message_id().as_ref().unwrap().as_str(), live[0].to_string());
    probe.assert_quiet(Duration::from_millis(500)).await;

    stop(tx, task).await;
    assert!(!relay.is_active());
    wait_until("the checkpoint to cover everything", || async { relay.lag().await.unwrap().events == 0 }).await;

    // A new relay (a restart) resumes after the checkpoint: only the new event is published.
    let late = append(&env.store, tenant, "order", "o-2", 1, &["confirmed"]).await;
    let restarted =
        Arc::new(FeedRelay::new(&env.store, "sales", config.with_poll_interval(Duration::from_millis(200))));
    let (tx, task) = spawn(&restarted);
    let delivery = probe.next().await;
    assert_eq!(delivery.properties.message_id().as_ref().unwrap().as_str(), late[0].to_string());
    probe.assert_quiet(Duration::from_secs(1)).await;
    stop(tx, task).await;
}

#[tokio::test]
async fn a_relay_with_a_mapper_publishes_protobuf_integration_events_and_skips_internal_ones() {
    let env = env().await;
    let tenant = uuid::Uuid::new_v4();
    let mut probe = Probe::bind(&env.broker, &["sales.#"]).await;
    let ids = append(&env.store, tenant, "order", "o-1", 0, &["created", "internal_note", "confirmed"]).await;

    // `internal_note` stays inside the context; the others become `OrderConfirmed` messages.
    let mapper: sentra_bus::EventMapper = Arc::new(|event| {
        if event.event_type == "internal_note" {
            return Ok(None);
        }
        Ok(Some(Payload::proto(&OrderConfirmed { order_id: event.aggregate_id.clone(), ..Default::default() })))
    });
    let relay = Arc::new(FeedRelay::new(&env.store, "sales", RelayConfig::new(env.broker.clone())).with_mapper(mapper));
    let (tx, task) = spawn(&relay);
    for (event_id, sequence) in [(ids[0], 1), (ids[2], 3)] {
        let delivery = probe.next().await;
        let properties = &delivery.properties;
        assert_eq!(properties.content_type().as_ref().unwrap().as_str(), "application/protobuf");
        assert_eq!(properties.kind().as_ref().unwrap().as_str(), "sentra.sales.events.v1.OrderConfirmed");
        assert_eq!(header_str(properties, headers::SCHEMA_VERSION).as_deref(), Some("v1"));
        assert_eq!(header_u64(properties, headers::SEQUENCE), Some(sequence));
        // The body is the bare message: any AMQP client decodes it with the .proto file alone.
        assert_eq!(OrderConfirmed::decode(delivery.data.as_slice()).unwrap().order_id, "o-1");
        let envelope = Envelope::from_message(properties, &delivery.data).unwrap();
        assert_eq!(envelope.event_id, event_id);
        assert_eq!(envelope.tenant_id, tenant);
        assert_eq!(envelope.routing_key, format!("sales.order.{}", envelope.event_type));
        assert_eq!((envelope.aggregate_type.as_str(), envelope.aggregate_id.as_str()), ("order", "o-1"));
        assert_eq!(envelope.sequence, sequence);
        assert_eq!(envelope.metadata_str("actor"), Some("user:alice"));
        assert_eq!(envelope.decode::<OrderConfirmed>().unwrap().order_id, "o-1");
        assert!(envelope.decode_payload::<serde_json::Value>().is_err(), "not JSON");
    }
    probe.assert_quiet(Duration::from_millis(500)).await;
    wait_until("the checkpoint to pass the skipped event", || async { relay.lag().await.unwrap().events == 0 }).await;
    stop(tx, task).await;
}

#[tokio::test]
async fn only_one_relay_is_active_and_events_are_published_once() {
    let env = env().await;
    let tenant = uuid::Uuid::new_v4();
    let mut probe = Probe::bind(&env.broker, &["sales.#"]).await;
    let config = RelayConfig::new(env.broker.clone()).with_standby_interval(Duration::from_millis(200));
    let first = Arc::new(FeedRelay::new(&env.store, "sales", config.clone()));
    let second = Arc::new(FeedRelay::new(&env.store, "sales", config));
    let (tx1, task1) = spawn(&first);
    let (tx2, task2) = spawn(&second);
    wait_until("one relay to lead", || async { first.is_active() || second.is_active() }).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(first.is_active() != second.is_active(), "exactly one relay must be active");

    let ids = append(&env.store, tenant, "order", "o-1", 0, &["created", "confirmed"]).await;
    for id in &ids {
        let delivery = probe.next().await;
        assert_eq!(delivery.properties.message_id().as_ref().unwrap().as_str(), id.to_string());
    }
    probe.assert_quiet(Duration::from_secs(1)).await;

    // The leader stops; the standby takes over and carries on from the shared checkpoint.
    let (leader_tx, leader_task, standby) =
        if first.is_active() { (tx1, task1, (tx2, task2, second)) } else { (tx2, task2, (tx1, task1, first)) };
    stop(leader_tx, leader_task).await;
    let (standby_tx, standby_task, standby) = standby;
    wait_until("the standby to take over", || async { standby.is_active() }).await;
    let later = append(&env.store, tenant, "order", "o-1", 2, &["shipped"]).await;
    let delivery = probe.next().await;
    assert_eq!(delivery.properties.message_id().as_ref().unwrap().as_str(), later[0].to_string());
    probe.assert_quiet(Duration::from_secs(1)).await;
    stop(standby_tx, standby_task).await;
}
