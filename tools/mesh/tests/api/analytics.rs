//! ReadEvents through the gateway: the gateway enforces `analytics.events.read` from the contract
//! and streams the replay; an analyst gets the organization's events with personal data redacted.

use std::path::Path;
use std::time::Duration;

use prost::Message;
use sentra_mesh::Mesh;
use sentra_proto::sentra::analytics::v1 as apb;
use sentra_proto::sentra::sales::events::v1 as ev;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_testkit::grpc::{bearer, channel};
use sentra_testkit::tenancy;
use tonic::Code;

async fn replay(gateway: &SalesServiceClient<tonic::transport::Channel>, token: &str) -> Result<Vec<apb::Event>, Code> {
    let request = bearer(token, spb::ReadEventsRequest { query: Some(apb::EventQuery::default()) });
    let mut stream = gateway.clone().read_events(request).await.map_err(|s| s.code())?.into_inner();
    let mut events = Vec::new();
    while let Some(message) =
        tokio::time::timeout(Duration::from_secs(20), stream.message()).await.unwrap().map_err(|s| s.code())?
    {
        events.extend(message.batch.unwrap().events);
    }
    Ok(events)
}

#[tokio::test]
async fn an_analyst_replays_sales_history_through_the_gateway_redacted_and_an_agent_is_refused() {
    let mesh = Mesh::start(Path::new("/nonexistent")).await.unwrap();
    let gateway_channel = channel(mesh.gateway);
    let tenancy_client = TenancyServiceClient::new(gateway_channel.clone());
    let auth = AuthServiceClient::new(gateway_channel.clone());
    tenancy::sign_up(&tenancy_client, "Mesh Analytics").await;
    let owner = tenancy::login(&auth, &tenancy::owner_email("Mesh Analytics"), "").await;
    let brand = tpb::Brand {
        name: "Counted".into(),
        domain: "app.counted.example".into(),
        invoice_prefix: "CT".into(),
        default_currency: "EUR".into(),
        ..Default::default()
    };
    let brand = tenancy::create_brand(&tenancy_client, &owner, brand).await.id;
    tenancy::analyst(&tenancy_client, &owner, "analyst@counted.example").await;
    let analyst = tenancy::login(&auth, "analyst@counted.example", "").await;
    tenancy::staff_member(&tenancy_client, &owner, "agent@counted.example", &brand, tpb::BrandRole::Agent).await;
    let agent = tenancy::login(&auth, "agent@counted.example", "").await;

    let sales = SalesServiceClient::new(gateway_channel);
    let lead = spb::Lead {
        brand_id: brand,
        contact_name: "Paula Private".into(),
        email: "paula@example.com".into(),
        company: "Counted Ltd".into(),
        ..Default::default()
    };
    let request = spb::CreateLeadRequest { lead: Some(lead), request_id: String::new() };
    let lead = sales.clone().create_lead(bearer(&owner, request)).await.unwrap().into_inner().lead.unwrap();

    let events = replay(&sales, &analyst).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].aggregate_id.as_str(), events[0].redacted), (lead.id.as_str(), true));
    let created = ev::LeadCreated::decode(events[0].payload.as_ref().unwrap().value.as_slice()).unwrap();
    let contact = created.contact.unwrap();
    assert_eq!((contact.name.as_str(), contact.email.as_str(), contact.company.as_str()), ("", "", "Counted Ltd"));

    // The gateway refuses before forwarding: the agent's token lacks the permission.
    assert_eq!(replay(&sales, &agent).await.unwrap_err(), Code::PermissionDenied);
    mesh.stop().await;
}
