//! ReadEvents: analysts replay their organization's Sales events as public integration events,
//! from a position, filtered, then live; personal data redacted unless the caller may read it.

use std::time::Duration;

use prost::Message;
use sentra_proto::sentra::analytics::v1 as apb;
use sentra_proto::sentra::sales::events::v1 as ev;
use sentra_proto::sentra::sales::v1 as pb;
use tonic::Code;

use crate::helpers::{Agency, World, advance, bearer, create_lead, spawn};

const WAIT: Duration = Duration::from_secs(20);

fn query(after: &str) -> apb::EventQuery {
    apb::EventQuery { after: after.into(), ..Default::default() }
}

fn request(token: &str, query: apb::EventQuery) -> tonic::Request<pb::ReadEventsRequest> {
    bearer(token, pb::ReadEventsRequest { query: Some(query) })
}

/// Every event of a non-following read, and the batches' positions; checks the stream ends
/// right after the one batch marked caught up.
async fn read_all(world: &World, token: &str, query: apb::EventQuery) -> Result<(Vec<apb::Event>, String), Code> {
    let mut stream = world.sales.clone().read_events(request(token, query)).await.map_err(|s| s.code())?.into_inner();
    let (mut events, mut position, mut caught_up) = (Vec::new(), String::new(), false);
    while let Some(message) =
        tokio::time::timeout(WAIT, stream.message()).await.expect("in time").map_err(|s| s.code())?
    {
        let batch = message.batch.expect("every message carries a batch");
        assert!(!caught_up, "nothing follows the caught-up batch of a read that does not follow");
        caught_up = batch.caught_up;
        events.extend(batch.events);
        position = batch.position;
    }
    assert!(caught_up, "a read ends by saying it caught up");
    Ok((events, position))
}

fn lead_created(event: &apb::Event) -> ev::LeadCreated {
    let any = event.payload.as_ref().expect("a payload");
    assert_eq!(any.type_url, "type.googleapis.com/sentra.sales.events.v1.LeadCreated");
    ev::LeadCreated::decode(any.value.as_slice()).expect("a LeadCreated")
}

async fn analyst(world: &World, agency: &Agency) -> String {
    let email = format!("analyst@{}.example", agency.slug);
    sentra_testkit::tenancy::analyst(&world.tenancy, &agency.owner, &email).await;
    world.login(&email, "").await
}

#[tokio::test]
async fn analysts_replay_their_organization_only_with_personal_data_redacted() {
    let world = spawn().await;
    let agency = world.agency("Replay Agency").await;
    let other = world.agency("Other Replay Agency").await;
    let lead = create_lead(&world, &agency.agent.1, &agency.alpha, "Rita Private").await;
    advance(&world, &agency.agent.1, &lead, pb::LeadStage::Contacted).await;
    let theirs = create_lead(&world, &other.agent.1, &other.alpha, "Otto Outsider").await;

    // The owner sees the organization's events in order, complete, as public events.
    let (events, _) = read_all(&world, &agency.owner, query("")).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| (e.aggregate_id.as_str(), e.event_type.as_str())).collect();
    assert_eq!(kinds, [(lead.id.as_str(), "created"), (lead.id.as_str(), "stage_changed")]);
    assert!(events.iter().all(|e| e.context == "sales" && e.aggregate_type == "lead" && !e.redacted));
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2]);
    let created = lead_created(&events[0]);
    assert_eq!(created.contact.as_ref().unwrap().name, "Rita Private");
    assert_eq!(created.contact.as_ref().unwrap().email, lead.email);
    let moved = events[1].payload.as_ref().unwrap();
    let moved = ev::LeadStageChanged::decode(moved.value.as_slice()).unwrap();
    assert_eq!(moved.to_stage(), pb::LeadStage::Contacted);

    // An analyst sees the same events without who they are about; the business stays.
    let analyst = analyst(&world, &agency).await;
    let (redacted, _) = read_all(&world, &analyst, query("")).await.unwrap();
    assert_eq!(redacted.len(), 2);
    assert!(redacted.iter().all(|e| e.redacted));
    assert_eq!(redacted[0].event_id, events[0].event_id);
    let contact = lead_created(&redacted[0]).contact.unwrap();
    assert_eq!((contact.name.as_str(), contact.email.as_str(), contact.phone.as_str()), ("", "", ""));
    assert_eq!(contact.company, "Rita Private GmbH");

    // Another organization's owner reads only their own organization's history.
    let (outside, _) = read_all(&world, &other.owner, query("")).await.unwrap();
    assert_eq!(outside.iter().map(|e| e.aggregate_id.as_str()).collect::<Vec<_>>(), [theirs.id.as_str()]);

    // Brand roles do not include replay: agents, managers, viewers are refused; so are portal clients.
    for token in [&agency.agent.1, &agency.manager.1, &agency.viewer.1] {
        assert_eq!(read_all(&world, token, query("")).await.unwrap_err(), Code::PermissionDenied);
    }
}

#[tokio::test]
async fn a_replay_filters_resumes_and_follows_live() {
    let world = spawn().await;
    let agency = world.agency("Resume Agency").await;
    let token = &agency.owner;
    let mut leads = Vec::new();
    for name in ["Ada One", "Ben Two", "Cy Three"] {
        let lead = create_lead(&world, &agency.agent.1, &agency.alpha, name).await;
        leads.push(advance(&world, &agency.agent.1, &lead, pb::LeadStage::Contacted).await);
    }
    let (all, end) = read_all(&world, token, query("")).await.unwrap();
    assert_eq!(all.len(), 6);

    // Resuming after any event's position gives exactly the events after it.
    let (rest, rest_end) = read_all(&world, token, query(&all[2].position)).await.unwrap();
    assert_eq!(
        rest.iter().map(|e| &e.event_id).collect::<Vec<_>>(),
        all[3..].iter().map(|e| &e.event_id).collect::<Vec<_>>()
    );
    assert_eq!(rest_end, end);
    let (none, _) = read_all(&world, token, query(&end)).await.unwrap();
    assert!(none.is_empty(), "nothing after the end");

    // Filters: event types, aggregate types, recorded time.
    let moves = apb::EventQuery { event_types: vec!["stage_changed".into()], ..Default::default() };
    let (moved, _) = read_all(&world, token, moves).await.unwrap();
    assert_eq!(moved.len(), 3);
    assert!(moved.iter().all(|e| e.event_type == "stage_changed"));
    let orders = apb::EventQuery { aggregate_types: vec!["order".into()], ..Default::default() };
    assert!(read_all(&world, token, orders).await.unwrap().0.is_empty());
    let from = all[4].record_time;
    let (later, _) =
        read_all(&world, token, apb::EventQuery { recorded_from: from, ..Default::default() }).await.unwrap();
    assert!(later.iter().all(|e| e.record_time.unwrap().seconds >= from.unwrap().seconds));
    assert!(later.iter().any(|e| e.event_id == all[4].event_id));
    let (earlier, _) =
        read_all(&world, token, apb::EventQuery { recorded_to: from, ..Default::default() }).await.unwrap();
    assert!(earlier.iter().all(|e| e.event_id != all[4].event_id));
    assert_eq!(earlier.len() + later.len(), all.len(), "from and to split the history");

    // Following: the stream catches up, then delivers a new event live.
    let follow = apb::EventQuery { after: end.clone(), follow: true, ..Default::default() };
    let mut stream = world.sales.clone().read_events(request(token, follow)).await.unwrap().into_inner();
    let first = tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap().batch.unwrap();
    assert!(first.caught_up && first.events.is_empty());
    let new = create_lead(&world, &agency.agent.1, &agency.alpha, "Dee Live").await;
    let live = loop {
        let batch = tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap().batch.unwrap();
        if !batch.events.is_empty() {
            break batch;
        }
    };
    assert_eq!(live.events.len(), 1);
    assert_eq!(live.events[0].aggregate_id, new.id);
    assert_eq!(live.events[0].event_type, "created");

    // A position that is not one is the caller's mistake, named.
    let bad = world.sales.clone().read_events(request(token, query("not-a-position"))).await;
    let status = match bad {
        Err(status) => status,
        Ok(response) => response.into_inner().message().await.expect_err("refused"),
    };
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("query.after"), "{}", status.message());
}
