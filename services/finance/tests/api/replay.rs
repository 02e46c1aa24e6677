//! ReadEvents in Finance: the organization's invoice history as public integration events, for
//! analysts and owners only, never another organization's.

use std::time::Duration;

use prost::Message;
use sentra_proto::sentra::analytics::v1 as apb;
use sentra_proto::sentra::finance::events::v1 as ev;
use sentra_proto::sentra::finance::v1 as pb;
use tonic::Code;

use crate::helpers::{World, bearer, spawn};

async fn read_all(world: &World, token: &str) -> Result<Vec<apb::Event>, Code> {
    let request = bearer(token, pb::ReadEventsRequest { query: Some(apb::EventQuery::default()) });
    let mut stream = world.finance.clone().read_events(request).await.map_err(|s| s.code())?.into_inner();
    let mut events = Vec::new();
    while let Some(message) =
        tokio::time::timeout(Duration::from_secs(20), stream.message()).await.expect("in time").map_err(|s| s.code())?
    {
        events.extend(message.batch.expect("a batch").events);
    }
    Ok(events)
}

#[tokio::test]
async fn owners_and_analysts_replay_invoices_of_their_organization_only() {
    let world = spawn().await;
    let agency = world.agency("Ledger Agency").await;
    let other = world.agency("Other Ledger Agency").await;
    let client = world.client(&agency, "Carla Client").await;
    let draft = world.draft(&agency.finance, &agency, &client, 12_000, 14).await;
    let other_client = world.client(&other, "Olaf Other").await;
    let other_draft = world.draft(&other.finance, &other, &other_client, 500, 14).await;

    let events = read_all(&world, &agency.owner).await.unwrap();
    let drafted: Vec<_> = events.iter().filter(|e| e.aggregate_id == draft.id).collect();
    assert_eq!(drafted.len(), 1);
    let event = drafted[0];
    assert_eq!((event.context.as_str(), event.aggregate_type.as_str()), ("finance", "invoice"));
    let any = event.payload.as_ref().unwrap();
    assert_eq!(any.type_url, "type.googleapis.com/sentra.finance.events.v1.InvoiceDrafted");
    let payload = ev::InvoiceDrafted::decode(any.value.as_slice()).unwrap();
    assert_eq!(payload.client_id, client);
    assert_eq!(payload.amounts.unwrap().total.unwrap().amount_minor, 12_000);
    assert!(events.iter().all(|e| e.aggregate_id != other_draft.id), "another organization's invoice");

    let email = format!("analyst@{}.example", agency.slug);
    sentra_testkit::tenancy::analyst(&world.tenancy, &agency.owner, &email).await;
    let analyst = world.login(&email, "").await;
    let seen = read_all(&world, &analyst).await.unwrap();
    assert_eq!(
        seen.iter().map(|e| &e.event_id).collect::<Vec<_>>(),
        events.iter().map(|e| &e.event_id).collect::<Vec<_>>()
    );

    for token in [&agency.finance, &agency.agent, &agency.viewer] {
        assert_eq!(read_all(&world, token).await.unwrap_err(), Code::PermissionDenied);
    }
}
