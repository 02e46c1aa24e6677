//! WatchPipeline: live lead changes, for the caller's tenant and readable brands only.

use std::time::{Duration, Instant};

use sentra_proto::sentra::sales::v1 as pb;
use tonic::{Code, Streaming};

use crate::helpers::{World, advance, bearer, create_lead, expect_code, spawn};

/// Upper bound of every wait: a missing message fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(20);

/// Opens a watch as `token` and waits for its "watching" message.
async fn watch(world: &World, token: &str, brand: &str) -> Streaming<pb::WatchPipelineResponse> {
    let request = bearer(token, pb::WatchPipelineRequest { brand_id: brand.into() });
    let mut stream = world.sales.clone().watch_pipeline(request).await.expect("watch").into_inner();
    let first = next(&mut stream).await;
    assert!(first.lead.is_none() && first.event_type.is_empty(), "the first message only says the watch is on");
    stream
}

/// The next message, keep-alives included.
async fn message(stream: &mut Streaming<pb::WatchPipelineResponse>) -> pb::WatchPipelineResponse {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a message within the wait")
        .expect("the stream stays healthy")
        .expect("the stream stays open")
}

/// The next message that is not a keep-alive.
async fn next(stream: &mut Streaming<pb::WatchPipelineResponse>) -> pb::WatchPipelineResponse {
    loop {
        let message = message(stream).await;
        if !message.keepalive {
            return message;
        }
        assert!(message.lead.is_none() && message.event_type.is_empty(), "a keep-alive carries nothing");
    }
}

/// The next change's lead and event type.
async fn change(stream: &mut Streaming<pb::WatchPipelineResponse>) -> (pb::Lead, String) {
    let message = next(stream).await;
    (message.lead.expect("a change carries its lead"), message.event_type)
}

#[tokio::test]
async fn a_watch_sees_every_change_it_may_read_as_the_lead_now_stands_and_nothing_else() {
    let world = spawn().await;
    let agency = world.agency("Live Agency").await;
    let other = world.agency("Other Agency").await;

    let mut owner = watch(&world, &agency.owner, "").await;
    let mut beta_only = watch(&world, &agency.beta_agent.1, "").await;
    let mut outsider = watch(&world, &other.owner, "").await;

    // Alpha: created, then moved; the owner sees both, each with the lead as it stands.
    let lead = create_lead(&world, &agency.agent.1, &agency.alpha, "Lena Live").await;
    let created_at = Instant::now();
    let (seen, event) = change(&mut owner).await;
    let latency = created_at.elapsed();
    assert_eq!((seen.id.as_str(), event.as_str()), (lead.id.as_str(), "created"));
    assert_eq!(seen.etag, lead.etag);
    let moved = advance(&world, &agency.agent.1, &lead, pb::LeadStage::Contacted).await;
    let (seen, event) = change(&mut owner).await;
    assert_eq!((seen.id.as_str(), event.as_str()), (lead.id.as_str(), "stage_changed"));
    assert_eq!(seen.stage, pb::LeadStage::Contacted as i32);
    assert_eq!(seen.etag, moved.etag);
    assert_eq!(seen.contact_name, "Lena Live");

    // Beta: the Beta agent's first change is its own brand's lead, not Alpha's before it.
    let beta = create_lead(&world, &agency.beta_agent.1, &agency.beta, "Bert Beta").await;
    let (seen, _) = change(&mut beta_only).await;
    assert_eq!(seen.id, beta.id, "a Beta agent sees no Alpha lead");
    let (seen, _) = change(&mut owner).await;
    assert_eq!(seen.id, beta.id);

    // The other organization's first change is its own, nothing of the first tenant's.
    let theirs = create_lead(&world, &other.agent.1, &other.alpha, "Olga Other").await;
    let (seen, _) = change(&mut outsider).await;
    assert_eq!(seen.id, theirs.id, "another organization sees none of these leads");

    // Narrowed to a brand: only that brand's changes.
    let mut alpha_only = watch(&world, &agency.owner, &agency.beta).await;
    create_lead(&world, &agency.agent.1, &agency.alpha, "Alfred Alpha").await;
    let later = create_lead(&world, &agency.beta_agent.1, &agency.beta, "Betty Beta").await;
    let (seen, _) = change(&mut alpha_only).await;
    assert_eq!(seen.id, later.id, "a watch of Beta skips Alpha's leads");

    // A quiet stream keeps itself alive (0.3 s in these tests, 25 s by default).
    let quiet = message(&mut alpha_only).await;
    assert!(quiet.keepalive && quiet.lead.is_none(), "{quiet:?}");
    eprintln!("watch: a created lead reached the watcher {latency:?} after CreateLead returned");
}

#[tokio::test]
async fn a_watch_of_what_the_caller_may_not_read_is_refused_with_the_field_named() {
    let world = spawn().await;
    let agency = world.agency("Guarded Agency").await;
    let other = world.agency("Nosy Agency").await;
    let mut s = world.sales.clone();
    let open = |token: &str, brand: &str| bearer(token, pb::WatchPipelineRequest { brand_id: brand.into() });

    expect_code(s.watch_pipeline(open(&other.owner, &agency.alpha)).await, Code::NotFound);
    expect_code(s.watch_pipeline(open(&agency.beta_agent.1, &agency.alpha)).await, Code::NotFound);
    let status = s.watch_pipeline(open(&agency.owner, "not-a-uuid")).await.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("brand_id"), "{}", status.message());
    expect_code(
        s.watch_pipeline(tonic::Request::new(pb::WatchPipelineRequest::default())).await,
        Code::Unauthenticated,
    );
}
