//! Sales -> RabbitMQ -> Finance: confirmed orders become draft invoices, exactly once.

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use sentra_proto::sentra::finance::v1 as pb;
use sentra_proto::sentra::sales::v1 as spb;

use crate::helpers::{bearer, eur, spawn, spawn_with, spy};

/// description, quantity, unit price, tax, discount, total.
type LineFields = (String, String, Option<i64>, i32, i32, Option<i64>);

fn lines() -> Vec<spb::OrderLine> {
    vec![
        spb::OrderLine {
            description: "Brand workshop".into(),
            quantity: "1.5".into(),
            unit_price: eur(80_000),
            tax_rate_bps: 1900,
            discount_bps: 500,
            ..Default::default()
        },
        spb::OrderLine {
            description: "Logo files".into(),
            quantity: "3".into(),
            unit_price: eur(3_333),
            tax_rate_bps: 700,
            ..Default::default()
        },
    ]
}

#[tokio::test]
async fn a_confirmed_order_becomes_a_draft_invoice_with_the_same_lines_and_totals() {
    let world = spawn().await;
    let agency = world.agency("Invoice Agency").await;
    let client = world.client(&agency, "Ada Client").await;
    let order = world.confirmed_order(&agency, &client, lines()).await;
    let invoice = world.invoice_for(&agency.finance, &order.id).await;

    assert_eq!(invoice.status, pb::InvoiceStatus::Draft as i32);
    assert_eq!((invoice.brand_id.as_str(), invoice.client_id.as_str()), (agency.alpha.as_str(), client.as_str()));
    assert_eq!(invoice.currency_code, "EUR");
    assert_eq!(invoice.subtotal, order.subtotal);
    assert_eq!(invoice.discount_total, order.discount_total);
    assert_eq!(invoice.tax_total, order.tax_total);
    assert_eq!(invoice.total, order.total);
    assert_eq!(invoice.balance, order.total);
    let copied: Vec<LineFields> = invoice
        .lines
        .iter()
        .map(|l| {
            (
                l.description.clone(),
                l.quantity.clone(),
                l.unit_price.as_ref().map(|m| m.amount_minor),
                l.tax_rate_bps,
                l.discount_bps,
                l.total.as_ref().map(|m| m.amount_minor),
            )
        })
        .collect();
    let ordered: Vec<LineFields> = order
        .lines
        .iter()
        .map(|l| {
            (
                l.description.clone(),
                l.quantity.clone(),
                l.unit_price.as_ref().map(|m| m.amount_minor),
                l.tax_rate_bps,
                l.discount_bps,
                l.total.as_ref().map(|m| m.amount_minor),
            )
        })
        .collect();
    assert_eq!(copied, ordered);
}

#[tokio::test]
async fn delivering_the_same_message_twice_creates_one_invoice() {
    let world = spawn().await;
    let agency = world.agency("Twice Agency").await;
    let client = world.client(&agency, "Bob Client").await;

    // A spy queue on the same exchange captures the message the Sales relay publishes.
    let (_conn, channel, mut spy_consumer) = spy(&world, "spy", "sales.order.confirmed").await;
    let exchange = format!("{}sentra.events", world.amqp_prefix);

    let order = world.confirmed_order(&agency, &client, lines()).await;
    let first = world.invoice_for(&agency.finance, &order.id).await;

    use futures::StreamExt;
    let delivery = tokio::time::timeout(Duration::from_secs(20), spy_consumer.next())
        .await
        .expect("the relay published")
        .unwrap()
        .unwrap();
    // Deliver it again: same body, same message id, same routing key.
    let confirm = channel
        .basic_publish(
            exchange.as_str().into(),
            "sales.order.confirmed".into(),
            BasicPublishOptions::default(),
            &delivery.data,
            delivery.properties.clone(),
        )
        .await
        .unwrap();
    confirm.await.unwrap();

    // Messages are consumed in order, so once a later order is invoiced the duplicate has been handled.
    let later = world.confirmed_order(&agency, &client, lines()).await;
    world.invoice_for(&agency.finance, &later.id).await;

    let invoices = world
        .finance
        .clone()
        .list_invoices(bearer(
            &agency.finance,
            pb::ListInvoicesRequest { order_id: order.id.clone(), ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner()
        .invoices;
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0].etag, first.etag, "the draft was not touched again");
    let pool = sqlx::PgPool::connect(world.db.url()).await.unwrap();
    let drafted: i64 = sqlx::query_scalar("SELECT count(*) FROM finance.events WHERE event_type = 'drafted'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(drafted, 2, "one draft per order, none for the duplicate");
    let message_id = delivery.properties.message_id().as_ref().map(|m| m.to_string()).unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM finance.inbox WHERE message_id::text = $1")
        .bind(message_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(seen, 1, "the inbox knows the message once");
}

#[tokio::test]
async fn cutting_the_broker_connection_mid_stream_loses_no_order() {
    let world = spawn_with(true).await;
    let agency = world.agency("Cut Agency").await;
    let client = world.client(&agency, "Cut Client").await;
    let proxy = world.finance_broker_proxy.as_ref().unwrap();
    let mut orders = Vec::new();
    for i in 0..12 {
        if i == 4 {
            proxy.cut();
        }
        if i == 8 {
            proxy.restore();
        }
        if i == 10 {
            proxy.cut();
            tokio::time::sleep(Duration::from_millis(300)).await;
            proxy.restore();
        }
        let line = spb::OrderLine {
            description: format!("Item {i}"),
            quantity: "1".into(),
            unit_price: eur(1_000 + i),
            ..Default::default()
        };
        orders.push(world.confirmed_order(&agency, &client, vec![line]).await);
    }
    // Up to a minute: after a cut the consumer reconnects with a backoff of up to 10 s, and a
    // message whose handling failed comes back after its retry delay; what matters is that every
    // order arrives, once. A miss names what is missing.
    let mut f = world.finance.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let drafted = loop {
        let invoices = f
            .list_invoices(bearer(&agency.finance, pb::ListInvoicesRequest { page_size: 100, ..Default::default() }))
            .await
            .map(|r| r.into_inner().invoices)
            .unwrap_or_default();
        if invoices.len() >= 12 {
            break invoices;
        }
        if tokio::time::Instant::now() > deadline {
            let have: Vec<i64> = invoices.iter().map(|i| i.total.as_ref().map_or(0, |t| t.amount_minor)).collect();
            panic!("after 60 s only {} of 12 orders invoiced (totals {have:?})", invoices.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(drafted.len(), 12, "exactly one invoice per order");
    let mut totals: Vec<i64> = drafted.iter().map(|i| i.total.as_ref().unwrap().amount_minor).collect();
    totals.sort_unstable();
    assert_eq!(totals, (0..12).map(|i| 1_000 + i).collect::<Vec<_>>());
    let _ = f.list_invoices(bearer(&agency.finance, pb::ListInvoicesRequest::default())).await.unwrap();
}

#[tokio::test]
async fn the_bus_carries_the_public_protobuf_event_and_an_order_queued_before_the_switch_is_still_invoiced() {
    use futures::StreamExt;
    use prost::Message;
    use sentra_proto::sentra::sales::events::v1::OrderConfirmed;

    let world = spawn().await;
    let agency = world.agency("Switch Agency").await;
    let client = world.client(&agency, "Cy Client").await;
    let (_conn, channel, mut spy_consumer) = spy(&world, "spy-switch", "sales.order.confirmed").await;
    let order = world.confirmed_order(&agency, &client, lines()).await;
    world.invoice_for(&agency.finance, &order.id).await;

    // What Sales publishes: the bare `OrderConfirmed`, named in the AMQP type.
    let delivery = tokio::time::timeout(Duration::from_secs(20), spy_consumer.next()).await.unwrap().unwrap().unwrap();
    let properties = &delivery.properties;
    assert_eq!(properties.content_type().as_ref().map(|c| c.as_str()), Some("application/protobuf"));
    assert_eq!(properties.kind().as_ref().map(|k| k.as_str()), Some("sentra.sales.events.v1.OrderConfirmed"));
    let published = OrderConfirmed::decode(delivery.data.as_slice()).unwrap();
    assert_eq!((published.order_id.as_str(), published.client_id.as_str()), (order.id.as_str(), client.as_str()));
    assert_eq!(published.amounts.as_ref().unwrap().total, order.total);
    let tenant = sentra_bus::header_str(properties, "tenant_id").unwrap();

    // A message the relay wrote before the switch: a JSON envelope around Sales' own event.
    let old_order = uuid::Uuid::now_v7();
    let body = serde_json::json!({
        "event_id": uuid::Uuid::now_v7(), "tenant_id": tenant, "routing_key": "sales.order.confirmed",
        "aggregate_type": "order", "aggregate_id": old_order, "sequence": 2, "event_type": "confirmed",
        "event_version": "1", "recorded_at": "2026-11-30T10:00:00Z", "metadata": {},
        "payload": {
            "type": "confirmed", "brand_id": agency.alpha, "client_id": client, "currency": "EUR",
            "at": "2026-11-30T10:00:00Z",
            "lines": [{ "description": "Retainer", "quantity": 2000, "unit_price": 50000, "tax_rate_bps": 1000,
                        "discount_bps": 0, "amounts": { "subtotal": 100000, "discount": 0, "tax": 10000, "total": 110000 } }],
            "totals": { "subtotal": 100000, "discount": 0, "tax": 10000, "total": 110000 }
        }
    });
    let legacy = lapin::BasicProperties::default()
        .with_content_type("application/json".into())
        .with_message_id(body["event_id"].as_str().unwrap().into())
        .with_delivery_mode(2);
    let exchange = format!("{}sentra.events", world.amqp_prefix);
    channel
        .basic_publish(
            exchange.as_str().into(),
            "sales.order.confirmed".into(),
            BasicPublishOptions::default(),
            &serde_json::to_vec(&body).unwrap(),
            legacy,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let invoice = world.invoice_for(&agency.finance, &old_order.to_string()).await;
    assert_eq!(invoice.client_id, client);
    assert_eq!(invoice.total.as_ref().map(|m| m.amount_minor), Some(110_000));
    assert_eq!(invoice.lines[0].quantity, "2");
}
