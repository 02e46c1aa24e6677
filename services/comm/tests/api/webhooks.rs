//! Webhooks end to end: Sales publishes on the real broker, Comm signs and POSTs to receivers on
//! loopback, and the receivers verify with the Standard Webhooks reference library.

use std::time::Duration;

use sentra_proto::sentra::comm::v1 as pb;
use sentra_proto::sentra::comm::v1::notification_service_client::NotificationServiceClient;
use sentra_proto::sentra::comm::v1::webhook_service_client::WebhookServiceClient;
use sentra_testkit::grpc::{bearer, eventually, expect_code};
use sentra_testkit::webhooks::{Received, Receiver};
use standardwebhooks::Webhook;
use tonic::Code;

use crate::helpers::{World, spawn, spawn_with};

fn client(world: &World) -> WebhookServiceClient<tonic::transport::Channel> {
    WebhookServiceClient::new(sentra_testkit::grpc::channel(world.comm_addr))
}

async fn endpoint(world: &World, token: &str, url: &str, types: &[&str]) -> (pb::WebhookEndpoint, String) {
    let created = client(world)
        .create_webhook_endpoint(bearer(
            token,
            pb::CreateWebhookEndpointRequest {
                endpoint: Some(pb::WebhookEndpoint {
                    url: url.into(),
                    description: "CRM sync".into(),
                    event_types: types.iter().map(|t| (*t).to_owned()).collect(),
                    enabled: true,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    (created.endpoint.unwrap(), created.secret)
}

/// The endpoint once the server has disabled it.
async fn disabled(world: &World, token: &str, endpoint: &str) -> pb::WebhookEndpoint {
    eventually("the endpoint disabled", || async {
        let request = pb::GetWebhookEndpointRequest { endpoint_id: endpoint.to_owned() };
        let found = client(world).get_webhook_endpoint(bearer(token, request)).await.ok()?.into_inner().endpoint?;
        (!found.enabled).then_some(found)
    })
    .await
}

async fn until_count(receiver: &Receiver, n: usize) -> Vec<Received> {
    eventually(&format!("{n} requests at the receiver"), || async {
        let got = receiver.received();
        (got.len() >= n).then_some(got)
    })
    .await
}

fn verify(secret: &str, request: &Received) -> Result<(), String> {
    Webhook::new(secret).map_err(|e| e.to_string())?.verify(&request.body, &request.headers).map_err(|e| e.to_string())
}

async fn deliveries(world: &World, token: &str, endpoint: &str) -> Vec<pb::WebhookDelivery> {
    client(world)
        .list_webhook_deliveries(bearer(
            token,
            pb::ListWebhookDeliveriesRequest { endpoint_id: endpoint.into(), ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner()
        .deliveries
}

#[tokio::test]
async fn events_arrive_signed_and_a_standard_webhooks_library_verifies_them() {
    let world = spawn().await;
    let agency = world.agency("Hooked Co").await;
    let receiver = Receiver::start().await;
    let (created, secret) = endpoint(&world, &agency.owner, &receiver.url(), &["sales.lead.created"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(created.enabled);
    assert_eq!(created.event_types, ["sales.lead.created"]);

    let lead = world.lead(&agency.manager, &agency.alpha, "Wanda Webhook", "wanda@client.example").await;
    let got = until_count(&receiver, 1).await;
    let request = &got[0];
    verify(&secret, request).unwrap();
    let body = request.json();
    assert_eq!(body["type"], "sales.lead.created");
    // The proto JSON mapping of sentra.sales.events.v1.LeadCreated.
    assert_eq!(body["data"]["leadId"], lead.as_str());
    assert_eq!(body["data"]["brandId"], agency.alpha.as_str());
    assert_eq!(body["data"]["contact"]["name"], "Wanda Webhook");
    assert!(request.header("webhook-id").starts_with("msg_"));
    assert_eq!(request.header("content-type"), "application/json");

    // What a receiver must refuse: a changed body, another secret.
    let mut forged = request.clone();
    forged.body = request.body.iter().copied().chain(*b" ").collect::<Vec<u8>>().into();
    assert!(verify(&secret, &forged).is_err());
    assert!(verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", request).is_err());

    // The log holds it, succeeded on the first attempt.
    let log = deliveries(&world, &agency.owner, &created.endpoint_id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status(), pb::WebhookDeliveryStatus::Succeeded);
    assert_eq!(log[0].message_id, request.header("webhook-id"));
    assert_eq!(log[0].attempts.len(), 1);
    assert_eq!(log[0].attempts[0].response_status, 200);
    assert_eq!(log[0].attempts[0].response_body, "received");
    world.shutdown().await;
}

#[tokio::test]
async fn failures_are_retried_with_the_same_webhook_id_and_can_be_replayed() {
    let world = spawn().await;
    let agency = world.agency("Retry Co").await;
    let receiver = Receiver::start().await;
    receiver.answer(500, None);
    receiver.answer(502, None);
    let (created, secret) = endpoint(&world, &agency.owner, &receiver.url(), &["sales.lead.*"]).await;
    world.lead(&agency.manager, &agency.alpha, "Rita Retry", "rita@client.example").await;

    let got = until_count(&receiver, 3).await;
    let id = got[0].header("webhook-id");
    assert!(got.iter().all(|r| r.header("webhook-id") == id), "one id across retries");
    assert!(got.iter().all(|r| verify(&secret, r).is_ok()));
    let log = eventually("the delivery succeeded", || async {
        let log = deliveries(&world, &agency.owner, &created.endpoint_id).await;
        (log.first()?.status() == pb::WebhookDeliveryStatus::Succeeded).then_some(log)
    })
    .await;
    let statuses: Vec<i32> = log[0].attempts.iter().map(|a| a.response_status).collect();
    assert_eq!(statuses, [500, 502, 200]);

    // Replay of that delivery: a new delivery, the same message id.
    let mut hooks = client(&world);
    let replayed = hooks
        .replay_webhook_deliveries(bearer(
            &agency.owner,
            pb::ReplayWebhookDeliveriesRequest {
                endpoint_id: created.endpoint_id.clone(),
                target: Some(pb::replay_webhook_deliveries_request::Target::DeliveryId(log[0].delivery_id.clone())),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.queued, 1);
    let got = until_count(&receiver, 4).await;
    assert_eq!(got[3].header("webhook-id"), id);
    verify(&secret, &got[3]).unwrap();

    // Replay of everything since an hour ago: the one event again.
    let since = prost_types::Timestamp { seconds: chrono::Utc::now().timestamp() - 3600, nanos: 0 };
    let replayed = hooks
        .replay_webhook_deliveries(bearer(
            &agency.owner,
            pb::ReplayWebhookDeliveriesRequest {
                endpoint_id: created.endpoint_id.clone(),
                target: Some(pb::replay_webhook_deliveries_request::Target::SinceTime(since)),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.queued, 1);
    assert_eq!(until_count(&receiver, 5).await[4].header("webhook-id"), id);
    world.shutdown().await;
}

#[tokio::test]
async fn retry_after_is_honoured_and_410_disables_the_endpoint_and_tells_its_creator() {
    let world = spawn().await;
    let agency = world.agency("Gone Co").await;
    let gone = Receiver::start().await;
    gone.answer(503, Some(1));
    gone.answer(410, None);
    let witness = Receiver::start().await;
    let (created, _) = endpoint(&world, &agency.owner, &gone.url(), &[]).await;
    let (other, _) = endpoint(&world, &agency.owner, &witness.url(), &["sales.lead.created"]).await;
    world.lead(&agency.manager, &agency.alpha, "Gus Gone", "gus@client.example").await;

    let endpoint = disabled(&world, &agency.owner, &created.endpoint_id).await;
    assert_eq!(endpoint.disabled_reason, "the receiver answered 410 Gone");
    let log = deliveries(&world, &agency.owner, &created.endpoint_id).await;
    let attempts = &log[0].attempts;
    assert_eq!(attempts.iter().map(|a| a.response_status).collect::<Vec<_>>(), [503, 410]);
    let waited = sentra_runtime::wire::from_timestamp(attempts[1].attempt_time.as_ref().unwrap()).unwrap()
        - sentra_runtime::wire::from_timestamp(attempts[0].attempt_time.as_ref().unwrap()).unwrap();
    // The schedule says 0.2 s; the receiver asked for 1 s.
    assert!(waited >= chrono::Duration::milliseconds(950), "waited {waited}");

    let mut notes = NotificationServiceClient::new(sentra_testkit::grpc::channel(world.comm_addr));
    let listed = notes
        .list_notifications(bearer(&agency.owner, pb::ListNotificationsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let note = listed.notifications.iter().find(|n| n.kind() == pb::NotificationKind::WebhookDisabled).unwrap();
    assert_eq!(note.subject, format!("webhooks/{}", created.endpoint_id));

    // Later events skip the disabled endpoint (the enabled witness gets them).
    world.lead(&agency.manager, &agency.alpha, "Later Lead", "later@client.example").await;
    until_count(&witness, 2).await;
    assert_eq!(deliveries(&world, &agency.owner, &created.endpoint_id).await.len(), 1);
    assert_eq!(deliveries(&world, &agency.owner, &other.endpoint_id).await.len(), 2);
    // Replaying to a disabled endpoint is refused until it is enabled again.
    let refused = client(&world)
        .replay_webhook_deliveries(bearer(
            &agency.owner,
            pb::ReplayWebhookDeliveriesRequest {
                endpoint_id: created.endpoint_id.clone(),
                target: Some(pb::replay_webhook_deliveries_request::Target::DeliveryId(log[0].delivery_id.clone())),
            },
        ))
        .await;
    expect_code(refused, Code::FailedPrecondition);
    world.shutdown().await;
}

#[tokio::test]
async fn a_rotated_secret_verifies_with_either_key_during_its_grace_period() {
    let world = spawn().await;
    let agency = world.agency("Rotate Co").await;
    let receiver = Receiver::start().await;
    let (created, old) = endpoint(&world, &agency.owner, &receiver.url(), &["sales.lead.created"]).await;
    let mut hooks = client(&world);
    let rotated = hooks
        .rotate_webhook_secret(bearer(
            &agency.owner,
            pb::RotateWebhookSecretRequest {
                endpoint_id: created.endpoint_id.clone(),
                grace_period: Some(prost_types::Duration { seconds: 3600, nanos: 0 }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.secret, old);
    assert!(rotated.endpoint.unwrap().previous_secret_expire_time.is_some());
    world.lead(&agency.manager, &agency.alpha, "Rosa Rotate", "rosa@client.example").await;
    let got = until_count(&receiver, 1).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    verify(&old, &got[0]).unwrap();
    verify(&rotated.secret, &got[0]).unwrap();

    // Without grace the old key stops at once.
    let newest = hooks
        .rotate_webhook_secret(bearer(
            &agency.owner,
            pb::RotateWebhookSecretRequest {
                endpoint_id: created.endpoint_id.clone(),
                grace_period: Some(prost_types::Duration { seconds: 0, nanos: 0 }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    world.lead(&agency.manager, &agency.alpha, "Ned Newkey", "ned@client.example").await;
    let got = until_count(&receiver, 2).await;
    assert_eq!(got[1].header("webhook-signature").split(' ').count(), 1);
    verify(&newest.secret, &got[1]).unwrap();
    assert!(verify(&rotated.secret, &got[1]).is_err());

    // Secrets are ciphertext in the database.
    let pool = world.pool().await;
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret FROM comm.webhook_endpoints WHERE endpoint_id = $1::uuid")
        .bind(&created.endpoint_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &newest.secret["whsec_".len()..]).unwrap();
    assert!(!sealed.windows(raw.len()).any(|w| w == raw.as_slice()));
    world.shutdown().await;
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowlisted() {
    let mut world = spawn_with(|c| c.webhooks.allow_addresses.clear()).await;
    let agency = world.agency("Ssrf Co").await;
    let receiver = Receiver::start().await;
    let mut hooks = client(&world);
    for url in [
        receiver.url(),
        receiver.url().replace("127.0.0.1", "localhost"),
        "http://10.0.0.7/hooks".into(),
        "http://169.254.169.254/latest/meta-data".into(),
        "http://[::1]:8080/".into(),
        "http://[::ffff:127.0.0.1]/".into(),
        "http://100.64.1.1/".into(),
    ] {
        let refused = hooks
            .create_webhook_endpoint(bearer(
                &agency.owner,
                pb::CreateWebhookEndpointRequest {
                    endpoint: Some(pb::WebhookEndpoint { url: url.clone(), enabled: true, ..Default::default() }),
                    request_id: String::new(),
                },
            ))
            .await;
        let status = expect_code(refused, Code::InvalidArgument);
        assert!(status.message().starts_with("url: refused"), "{url}: {}", status.message());
    }

    // An endpoint made while loopback was allowed is refused at connect time once it is not.
    world.stop_comm().await;
    world.comm_config.webhooks.allow_addresses = vec!["127.0.0.1".into()];
    world.start_comm().await;
    let (created, _) = endpoint(&world, &agency.owner, &receiver.url().replace("127.0.0.1", "localhost"), &[]).await;
    world.stop_comm().await;
    world.comm_config.webhooks.allow_addresses.clear();
    world.start_comm().await;
    world.lead(&agency.manager, &agency.alpha, "Sam Ssrf", "sam@client.example").await;
    // Three Comm starts in one test: under a loaded CI the restarted consumer can take a while
    // to become the queue's active one.
    let log = crate::helpers::eventually_long("a refused attempt", Duration::from_secs(90), || async {
        let log = deliveries(&world, &agency.owner, &created.endpoint_id).await;
        (!log.first()?.attempts.is_empty()).then_some(log)
    })
    .await;
    let attempt = &log[0].attempts[0];
    assert_eq!(attempt.response_status, 0);
    assert!(attempt.error.contains("loopback"), "{}", attempt.error);
    assert_eq!(receiver.count(), 0);
    world.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_named_and_etags_guard_updates() {
    let world = spawn().await;
    let agency = world.agency("Valid Co").await;
    let receiver = Receiver::start().await;
    let mut hooks = client(&world);
    for (url, types, field) in [
        ("", vec![], "url"),
        ("ftp://example.com/x", vec![], "url"),
        ("https://user:pw@example.com/x", vec![], "url"),
        ("not a url", vec![], "url"),
        ("https://example.com/x", vec!["Sales.Lead".to_owned()], "event_types"),
        ("https://example.com/x", vec!["sales..x".to_owned()], "event_types"),
    ] {
        let status = expect_code(
            hooks
                .create_webhook_endpoint(bearer(
                    &agency.owner,
                    pb::CreateWebhookEndpointRequest {
                        endpoint: Some(pb::WebhookEndpoint {
                            url: url.into(),
                            event_types: types,
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await,
            Code::InvalidArgument,
        );
        assert!(status.message().starts_with(field), "{url}: {}", status.message());
    }

    // A retried create answers the same endpoint and secret.
    let request = pb::CreateWebhookEndpointRequest {
        endpoint: Some(pb::WebhookEndpoint { url: receiver.url(), enabled: true, ..Default::default() }),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let first = hooks.create_webhook_endpoint(bearer(&agency.owner, request.clone())).await.unwrap().into_inner();
    let again = hooks.create_webhook_endpoint(bearer(&agency.owner, request)).await.unwrap().into_inner();
    assert_eq!(first.endpoint, again.endpoint);
    assert_eq!(first.secret, again.secret);

    let mut current = first.endpoint.unwrap();
    current.description = "Billing".into();
    current.enabled = false;
    let mask = prost_types::FieldMask { paths: vec!["description".into(), "enabled".into()] };
    let updated = hooks
        .update_webhook_endpoint(bearer(
            &agency.owner,
            pb::UpdateWebhookEndpointRequest { endpoint: Some(current.clone()), update_mask: Some(mask.clone()) },
        ))
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert_eq!(updated.description, "Billing");
    assert!(!updated.enabled);
    assert_ne!(updated.etag, current.etag);
    // The stale etag is refused, and nothing changes.
    current.description = "Lost update".into();
    expect_code(
        hooks
            .update_webhook_endpoint(bearer(
                &agency.owner,
                pb::UpdateWebhookEndpointRequest { endpoint: Some(current.clone()), update_mask: Some(mask) },
            ))
            .await,
        Code::Aborted,
    );
    let bad_mask = prost_types::FieldMask { paths: vec!["secret".into()] };
    let status = expect_code(
        hooks
            .update_webhook_endpoint(bearer(
                &agency.owner,
                pb::UpdateWebhookEndpointRequest { endpoint: Some(updated.clone()), update_mask: Some(bad_mask) },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert!(status.message().starts_with("update_mask"), "{}", status.message());
    expect_code(
        hooks
            .delete_webhook_endpoint(bearer(
                &agency.owner,
                pb::DeleteWebhookEndpointRequest { endpoint_id: updated.endpoint_id.clone(), etag: current.etag },
            ))
            .await,
        Code::Aborted,
    );
    hooks
        .delete_webhook_endpoint(bearer(
            &agency.owner,
            pb::DeleteWebhookEndpointRequest { endpoint_id: updated.endpoint_id.clone(), etag: updated.etag },
        ))
        .await
        .unwrap();
    let listed = hooks
        .list_webhook_endpoints(bearer(&agency.owner, pb::ListWebhookEndpointsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.endpoints.is_empty());
    world.shutdown().await;
}

#[tokio::test]
async fn other_organizations_and_non_admins_reach_no_endpoint() {
    let world = spawn().await;
    let ours = world.agency("Our Hooks").await;
    let theirs = world.agency("Their Hooks").await;
    let receiver = Receiver::start().await;
    let (created, _) = endpoint(&world, &ours.owner, &receiver.url(), &["sales.lead.created"]).await;
    world.lead(&ours.manager, &ours.alpha, "Olga Ours", "olga@client.example").await;
    until_count(&receiver, 1).await;
    let delivery = eventually("the delivery logged", || async {
        deliveries(&world, &ours.owner, &created.endpoint_id).await.into_iter().next()
    })
    .await;
    let id = created.endpoint_id.clone();
    let mut hooks = client(&world);
    let theirs_token = theirs.owner.clone();
    let calls: Vec<Result<(), tonic::Status>> = vec![
        hooks
            .get_webhook_endpoint(bearer(&theirs_token, pb::GetWebhookEndpointRequest { endpoint_id: id.clone() }))
            .await
            .map(drop),
        hooks
            .update_webhook_endpoint(bearer(
                &theirs_token,
                pb::UpdateWebhookEndpointRequest {
                    endpoint: Some(pb::WebhookEndpoint { description: "x".into(), ..created.clone() }),
                    update_mask: Some(prost_types::FieldMask { paths: vec!["description".into()] }),
                },
            ))
            .await
            .map(drop),
        hooks
            .delete_webhook_endpoint(bearer(
                &theirs_token,
                pb::DeleteWebhookEndpointRequest { endpoint_id: id.clone(), etag: String::new() },
            ))
            .await
            .map(drop),
        hooks
            .rotate_webhook_secret(bearer(
                &theirs_token,
                pb::RotateWebhookSecretRequest { endpoint_id: id.clone(), grace_period: None },
            ))
            .await
            .map(drop),
        hooks
            .list_webhook_deliveries(bearer(
                &theirs_token,
                pb::ListWebhookDeliveriesRequest { endpoint_id: id.clone(), ..Default::default() },
            ))
            .await
            .map(drop),
        hooks
            .replay_webhook_deliveries(bearer(
                &theirs_token,
                pb::ReplayWebhookDeliveriesRequest {
                    endpoint_id: id.clone(),
                    target: Some(pb::replay_webhook_deliveries_request::Target::DeliveryId(
                        delivery.delivery_id.clone(),
                    )),
                },
            ))
            .await
            .map(drop),
    ];
    for call in calls {
        expect_code(call, Code::NotFound);
    }
    let listed = hooks
        .list_webhook_endpoints(bearer(&theirs.owner, pb::ListWebhookEndpointsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.endpoints.is_empty());
    // Their events never reach our endpoint.
    world.lead(&theirs.owner, &theirs.alpha, "Tom Theirs", "tom@client.example").await;
    world.lead(&ours.manager, &ours.alpha, "Second Ours", "second@client.example").await;
    let got = until_count(&receiver, 2).await;
    assert!(got.iter().all(|r| r.json()["data"]["brandId"] == ours.alpha.as_str()));

    // Brand roles (manager, agent) hold no webhook rights: those are the organization admins'.
    for token in [&ours.manager, &ours.agent] {
        expect_code(
            hooks.list_webhook_endpoints(bearer(token, pb::ListWebhookEndpointsRequest::default())).await,
            Code::PermissionDenied,
        );
        expect_code(
            hooks.get_webhook_endpoint(bearer(token, pb::GetWebhookEndpointRequest { endpoint_id: id.clone() })).await,
            Code::PermissionDenied,
        );
    }
    // The endpoint is untouched.
    let still = hooks
        .get_webhook_endpoint(bearer(&ours.owner, pb::GetWebhookEndpointRequest { endpoint_id: id }))
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert_eq!(still, created);
    world.shutdown().await;
}

#[tokio::test]
async fn a_slow_endpoint_never_delays_the_others() {
    let world = spawn_with(|c| c.webhooks.per_endpoint_concurrency = 1).await;
    let agency = world.agency("Slow Co").await;
    let slow = Receiver::start().await;
    slow.slow(Duration::from_secs(30));
    let fast = Receiver::start().await;
    endpoint(&world, &agency.owner, &slow.url(), &["sales.lead.created"]).await;
    endpoint(&world, &agency.owner, &fast.url(), &["sales.lead.created"]).await;
    for n in 0..3 {
        world.lead(&agency.manager, &agency.alpha, &format!("Lead {n}"), &format!("l{n}@client.example")).await;
    }
    until_count(&fast, 3).await;
    // One request to the slow endpoint at a time, still waiting on its first answer.
    assert_eq!(slow.count(), 1);
    world.shutdown().await;
}

#[tokio::test]
async fn an_endpoint_failing_for_too_long_is_disabled_and_its_creator_told() {
    // "Too long" is half a second here (days in production).
    let world = spawn_with(|c| {
        c.webhooks.disable_after_secs = 0.5;
        c.webhooks.retry_schedule_secs = vec![0.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3];
    })
    .await;
    let agency = world.agency("Failing Co").await;
    let receiver = Receiver::start().await;
    for _ in 0..20 {
        receiver.answer(503, None);
    }
    let (created, _) = endpoint(&world, &agency.owner, &receiver.url(), &["sales.lead.created"]).await;
    world.lead(&agency.manager, &agency.alpha, "Fred Failing", "fred@client.example").await;
    let disabled = disabled(&world, &agency.owner, &created.endpoint_id).await;
    assert!(disabled.disabled_reason.starts_with("every delivery failed for"), "{}", disabled.disabled_reason);
    assert!(receiver.count() >= 2, "it was retried before");
    let log = deliveries(&world, &agency.owner, &created.endpoint_id).await;
    assert_eq!(log[0].status(), pb::WebhookDeliveryStatus::Failed, "given up");
    let mut notes = NotificationServiceClient::new(sentra_testkit::grpc::channel(world.comm_addr));
    let listed = notes
        .list_notifications(bearer(&agency.owner, pb::ListNotificationsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.notifications.iter().any(|n| n.kind() == pb::NotificationKind::WebhookDisabled
        && n.subject == format!("webhooks/{}", created.endpoint_id)));
    world.shutdown().await;
}
