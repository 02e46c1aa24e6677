//! One trace across the mesh and the bus: a ConfirmOrder sent through Envoy is traced from
//! Envoy's span through the gateway, Sales, the relay's publish to RabbitMQ and Finance's
//! consumer down to the span drafting the invoice, with every parent link intact.
//!
//! The collector is an OTLP/gRPC trace service run by the test (`opentelemetry-proto`'s tonic
//! server); Envoy and the services export to it as they would to a real one. Its own test binary:
//! the tracer provider is global to the process.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use sentra_mesh::Mesh;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_proto::sentra::r#type::v1::Money;
use sentra_runtime::config::LogConfig;
use sentra_runtime::telemetry::{self, Export};
use sentra_testkit::grpc::{bearer, channel};

/// A span as received: who sent it (the resource's `service.name`) and what it says.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    name: String,
    kind: SpanKind,
}

/// An OTLP trace collector keeping every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(name) => Some(name.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    kept.push(Received {
                        service: service.clone(),
                        kind: span.kind(),
                        trace_id: span.trace_id,
                        span_id: span.span_id,
                        parent_span_id: span.parent_span_id,
                        name: span.name,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

async fn start_collector() -> (Collector, SocketAddr) {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (collector, addr)
}

/// The chain of spans from `leaf` up to its root, as far as the collector has them.
fn ancestry(spans: &[Received], leaf: &Received) -> Vec<Received> {
    let by_id: HashMap<&[u8], &Received> = spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    let mut chain = vec![leaf.clone()];
    let mut at = leaf;
    while !at.parent_span_id.is_empty() {
        match by_id.get(at.parent_span_id.as_slice()) {
            Some(parent) => {
                chain.push((*parent).clone());
                at = parent;
            }
            None => break,
        }
    }
    chain
}

fn describe(chain: &[Received]) -> String {
    chain.iter().map(|s| format!("{} [{}, {:?}]", s.name, s.service, s.kind)).collect::<Vec<_>>().join("\n  <- ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_order_is_one_trace_from_envoy_to_the_invoice_draft() {
    let (collector, otlp) = start_collector().await;
    let _telemetry = telemetry::init_with(
        "mesh",
        &LogConfig { filter: "warn".into(), ..LogConfig::default() },
        &Export::Otlp(format!("http://{otlp}")),
    );
    let mesh = Mesh::start_exporting(Path::new("/nonexistent"), Some(otlp)).await.unwrap();

    // Set up directly against the services: only the confirmation goes through Envoy.
    let tenancy_channel = channel(mesh.tenancy);
    let tenancy = TenancyServiceClient::new(tenancy_channel.clone());
    let auth = AuthServiceClient::new(tenancy_channel);
    sentra_testkit::tenancy::sign_up(&tenancy, "Traced Agency").await;
    let owner = sentra_testkit::tenancy::login(&auth, &sentra_testkit::tenancy::owner_email("Traced Agency"), "").await;
    let brand = sentra_testkit::tenancy::create_brand(
        &tenancy,
        &owner,
        tpb::Brand {
            name: "Traced".into(),
            domain: "app.traced.example".into(),
            invoice_prefix: "TR".into(),
            default_currency: "EUR".into(),
            time_zone: "Europe/Berlin".into(),
            ..Default::default()
        },
    )
    .await;
    let mut sales = SalesServiceClient::new(channel(mesh.sales));
    let client = sentra_testkit::sales::client(&sales, &owner, &brand.id, "Ada Client").await;
    let line = spb::OrderLine {
        description: "Brand identity".into(),
        quantity: "1".into(),
        unit_price: Some(Money { currency_code: "EUR".into(), amount_minor: 250_000 }),
        ..Default::default()
    };
    let order = sales
        .create_order(bearer(
            &owner,
            spb::CreateOrderRequest {
                client_id: client.id,
                currency_code: "EUR".into(),
                lines: vec![line],
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();

    let mut through_envoy = SalesServiceClient::new(channel(mesh.envoy.addr));
    through_envoy
        .confirm_order(bearer(&owner, spb::ConfirmOrderRequest { order_id: order.id.clone(), etag: String::new() }))
        .await
        .expect("ConfirmOrder through Envoy");

    // Envoy flushes its spans every 5 s; the services every 100 ms.
    let started = Instant::now();
    let chain = loop {
        let spans = collector.spans.lock().unwrap().clone();
        let chain = spans
            .iter()
            .find(|s| s.name == "draft invoice from confirmed order")
            .map(|draft| ancestry(&spans, draft))
            .unwrap_or_default();
        if chain.last().is_some_and(|root| root.service == "sentra-envoy") {
            break chain;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no trace from Envoy to the invoice draft after 30 s; longest chain:\n  {}\nspans: {}",
            describe(&chain),
            spans.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let trace_id = &chain[0].trace_id;
    assert!(chain.iter().all(|s| &s.trace_id == trace_id), "one trace id:\n  {}", describe(&chain));
    let root = chain.last().unwrap();
    assert!(root.parent_span_id.is_empty(), "Envoy's span starts the trace");
    // From the root down: Envoy, the gateway (server, then client), Sales, the relay's publish,
    // Finance's consumer, the draft. (Event-store spans hang off these; they are not ancestors.)
    let path: Vec<(&str, SpanKind)> = chain.iter().rev().map(|s| (s.name.as_str(), s.kind)).collect();
    let confirm = "sentra.sales.v1.SalesService/ConfirmOrder";
    let expected_kinds = [
        SpanKind::Server,   // Envoy
        SpanKind::Server,   // gateway
        SpanKind::Client,   // gateway -> Sales
        SpanKind::Server,   // Sales
        SpanKind::Producer, // relay publish
        SpanKind::Consumer, // Finance's consumer
        SpanKind::Internal, // the draft
    ];
    assert_eq!(
        path.iter().map(|(_, kind)| *kind).collect::<Vec<_>>(),
        expected_kinds,
        "the chain:\n  {}",
        describe(&chain)
    );
    assert_eq!(path[1].0, confirm, "the gateway's span names the method");
    assert_eq!(path[2].0, confirm);
    assert_eq!(path[3].0, confirm, "Sales' span names the method");
    assert_eq!(path[4].0, "sales.order.confirmed publish");
    assert!(path[5].0.ends_with(" process"), "{}", path[5].0);
    assert!(chain[..chain.len() - 1].iter().all(|s| s.service == "sentra-mesh"));

    // The event store's spans are in the same trace (Sales' append under its server span).
    let spans = collector.spans.lock().unwrap().clone();
    let sales_span = &chain[chain.len() - 4];
    assert!(
        spans.iter().any(|s| s.name == "event_store.append" && s.parent_span_id == sales_span.span_id),
        "Sales' append is a child of its ConfirmOrder span"
    );
    mesh.stop().await;
}
