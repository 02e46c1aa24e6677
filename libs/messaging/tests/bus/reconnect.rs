use std::sync::Arc;
use std::time::Duration;

use sentra_bus::{BrokerConfig, Consumer, ConsumerConfig, FeedRelay, RelayConfig};
use sentra_testkit::TcpProxy;

use sentra_event_store::{EventStore, NewEvent};
use serde_json::json;
use uuid::Uuid;

use crate::support::{Probe, Recorder, count, env, fast, meta, stop, stop_signal, wait_until};

/// Event `i` of 200: order `i % 20`, version `i / 20`, with a 4 KiB payload.
async fn append_padded(store: &EventStore, tenant: Uuid, i: u64) {
    let event = NewEvent::new("changed", "1", json!({ "i": i, "padding": "x".repeat(4096) }));
    store.append(tenant, "order", &format!("o-{}", i % 20), i / 20, vec![event], &meta()).await.unwrap();
}

#[tokio::test]
async fn cutting_the_connection_mid_stream_loses_nothing() {
    let env = env().await;
    let proxy = TcpProxy::start("127.0.0.1:5672").await;
    let broker = fast(
        BrokerConfig::new(format!("amqp://guest:guest@{}/%2f", proxy.addr()))
            .with_prefix(env.broker.prefix.clone())
            .with_queue_expiry(Duration::from_secs(sentra_testkit::QUEUE_EXPIRY_SECS))
            .with_confirm_timeout(Duration::from_secs(5)),
    );
    let tenant = uuid::Uuid::new_v4();

    let config = ConsumerConfig::new(broker.clone(), "finance", "orders", ["sales.order.*"]).with_prefetch(10);
    let consumer = Arc::new(Consumer::new(config, env.pool.clone(), Recorder::default()));
    consumer.declare().await.unwrap();
    let relay = Arc::new(FeedRelay::new(
        &env.store,
        "sales",
        RelayConfig::new(broker)
            .with_batch_size(200)
            .with_poll_interval(Duration::from_millis(200))
            .with_idle_check_interval(Duration::from_millis(200)),
    ));
    // The probe watches the broker directly (not through the proxy).
    let mut probe = Probe::bind(&env.broker, &["sales.order.*"]).await;

    // Phase 1: a backlog of 100 events with bulky payloads, so the relay is still publishing its
    // batch (or waiting for confirms) when the connection is cut right after the first message
    // reaches the broker. Nothing of the batch may be committed; it is republished.
    for i in 0..100u64 {
        append_padded(&env.store, tenant, i).await;
    }
    let (relay_tx, relay_signal) = stop_signal();
    let relay_task = tokio::spawn({
        let relay = relay.clone();
        async move { relay.run(relay_signal).await }
    });
    let (consumer_tx, consumer_signal) = stop_signal();
    let consumer_task = tokio::spawn({
        let consumer = consumer.clone();
        async move { consumer.run(consumer_signal).await }
    });
    probe.next().await;
    proxy.cut();
    wait_until("both to notice the outage", || async { !relay.is_connected() && !consumer.is_connected() }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();

    // Phase 2: events keep streaming while the connection is cut again; 130..150 are appended
    // while the broker is unreachable.
    for i in 100..200u64 {
        if i == 130 {
            proxy.cut();
        }
        if i == 140 {
            wait_until("both to notice the outage", || async { !relay.is_connected() && !consumer.is_connected() })
                .await;
        }
        if i == 150 {
            proxy.restore();
        }
        append_padded(&env.store, tenant, i).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let pool = env.pool.clone();
    wait_until("200 distinct effects", || {
        let pool = pool.clone();
        async move { count(&pool, "SELECT count(DISTINCT message_id) FROM effects").await == 200 }
    })
    .await;
    // Give stray redeliveries a moment to show up, then check each event had exactly one effect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&env.pool, "SELECT count(*) FROM effects").await, 200);
    assert_eq!(count(&env.pool, "SELECT count(*) FROM inbox").await, 200);
    let complete = count(
        &env.pool,
        "SELECT count(*) FROM (SELECT aggregate_id FROM effects GROUP BY aggregate_id \
         HAVING array_agg(sequence ORDER BY sequence) = ARRAY[1,2,3,4,5,6,7,8,9,10]::bigint[]) c",
    )
    .await;
    assert_eq!(complete, 20, "every order has sequences 1..=10 exactly once");
    assert_eq!(relay.lag().await.unwrap().events, 0);
    assert!(relay.is_connected() && consumer.is_connected());

    stop(relay_tx, relay_task).await;
    stop(consumer_tx, consumer_task).await;
}
