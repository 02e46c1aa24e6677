//! Notifications for staff: made from bus events, once per (event, recipient), pushed live to
//! open streams, read and marked through the API, honouring each person's preferences.

use std::time::Duration;

use futures::StreamExt as _;
use sentra_bus::{Envelope, Handler as _, Payload};
use sentra_comm::notifications::Notifier;
use sentra_proto::sentra::comm::v1 as pb;
use sentra_proto::sentra::comm::v1::notification_service_client::NotificationServiceClient;
use sentra_proto::sentra::sales::events::v1::LeadAssigned;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_testkit::grpc::{bearer, eventually, expect_code};
use tonic::Code;

use crate::helpers::spawn;

fn client(world: &crate::helpers::World) -> NotificationServiceClient<tonic::transport::Channel> {
    NotificationServiceClient::new(sentra_testkit::grpc::channel(world.comm_addr))
}

/// A lead of Alpha named `name`, created by the manager and assigned to the agent: the lead as
/// created and as assigned.
async fn assigned_lead(
    world: &crate::helpers::World,
    agency: &crate::helpers::Agency,
    name: &str,
) -> (spb::Lead, spb::Lead) {
    let mut sales = world.sales.clone();
    let lead = spb::Lead { brand_id: agency.alpha.clone(), contact_name: name.into(), ..Default::default() };
    let lead = sales
        .create_lead(bearer(&agency.manager, spb::CreateLeadRequest { lead: Some(lead), request_id: String::new() }))
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    let request =
        spb::AssignLeadRequest { lead_id: lead.id.clone(), assignee_id: agency.agent_id.clone(), ..Default::default() };
    let assigned = sales.assign_lead(bearer(&agency.manager, request)).await.unwrap().into_inner().lead.unwrap();
    (lead, assigned)
}

/// Sets how `token`'s person gets lead assignments; returns all their preferences.
async fn lead_assigned_by(
    notes: &mut NotificationServiceClient<tonic::transport::Channel>,
    token: &str,
    channel: pb::NotificationChannel,
) -> Vec<pb::NotificationPreference> {
    let preference =
        pb::NotificationPreference { kind: pb::NotificationKind::LeadAssigned.into(), channel: channel.into() };
    let request = pb::UpdateNotificationPreferencesRequest { preferences: vec![preference] };
    notes.update_notification_preferences(bearer(token, request)).await.unwrap().into_inner().preferences
}

/// The next notification on `stream`, skipping keep-alives (within 10 s).
async fn next(stream: &mut tonic::Streaming<pb::WatchNotificationsResponse>) -> pb::Notification {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let message = stream.next().await.expect("the stream stays open").expect("a message");
            if let Some(n) = message.notification {
                return n;
            }
        }
    })
    .await
    .expect("a notification within 10 s")
}

#[tokio::test]
async fn assigning_a_lead_notifies_the_agent_on_an_open_stream_and_stage_changes_follow() {
    let world = spawn().await;
    let agency = world.agency("Notify Co").await;
    let mut notes = client(&world);
    let mut stream = notes
        .watch_notifications(bearer(&agency.agent, pb::WatchNotificationsRequest {}))
        .await
        .expect("watch")
        .into_inner();

    let mut sales = world.sales.clone();
    let (lead, assigned) = assigned_lead(&world, &agency, "Nora Newlead").await;
    let n = next(&mut stream).await;
    assert_eq!(n.kind(), pb::NotificationKind::LeadAssigned);
    assert_eq!(n.title, "Nora Newlead was assigned to you");
    assert_eq!(n.subject, format!("leads/{}", lead.id));
    assert_eq!(n.brand_id, agency.alpha);
    assert!(n.read_time.is_none());

    // The manager moves it: the assignee hears of it.
    sales
        .change_lead_stage(bearer(
            &agency.manager,
            spb::ChangeLeadStageRequest {
                lead_id: lead.id.clone(),
                stage: spb::LeadStage::Contacted.into(),
                etag: assigned.etag,
            },
        ))
        .await
        .unwrap();
    let moved = next(&mut stream).await;
    assert_eq!(moved.kind(), pb::NotificationKind::LeadStageChanged);
    assert_eq!(moved.title, "Nora Newlead moved to Contacted");

    // Listed newest first, marked read, and nobody else's.
    let listed = notes
        .list_notifications(bearer(
            &agency.agent,
            pb::ListNotificationsRequest { unread_only: true, ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.unread_count, 2);
    assert_eq!(
        listed.notifications.iter().map(|n| n.kind()).collect::<Vec<_>>(),
        [pb::NotificationKind::LeadStageChanged, pb::NotificationKind::LeadAssigned]
    );
    let page = notes
        .list_notifications(bearer(&agency.agent, pb::ListNotificationsRequest { page_size: 1, ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    let rest = notes
        .list_notifications(bearer(
            &agency.agent,
            pb::ListNotificationsRequest {
                page_size: 1,
                page_token: page.next_page_token.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.notifications[0].notification_id, n.notification_id);
    assert!(rest.next_page_token.is_empty());
    let others =
        notes.list_notifications(bearer(&agency.manager, pb::ListNotificationsRequest::default())).await.unwrap();
    assert!(others.into_inner().notifications.is_empty());
    // Someone else cannot mark them; the owner can.
    let foreign = notes
        .mark_notifications_read(bearer(
            &agency.manager,
            pb::MarkNotificationsReadRequest { notification_ids: vec![n.notification_id.clone()], all: false },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(foreign.marked, 0);
    let mine = notes
        .mark_notifications_read(bearer(
            &agency.agent,
            pb::MarkNotificationsReadRequest { notification_ids: vec![n.notification_id.clone()], all: false },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((mine.marked, mine.unread_count), (1, 1));
    let all = notes
        .mark_notifications_read(bearer(
            &agency.agent,
            pb::MarkNotificationsReadRequest { notification_ids: vec![], all: true },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((all.marked, all.unread_count), (1, 0));
    for (request, field) in [
        (pb::MarkNotificationsReadRequest::default(), "notification_ids"),
        (pb::MarkNotificationsReadRequest { notification_ids: vec!["x".into()], all: false }, "notification_ids"),
    ] {
        let status =
            expect_code(notes.mark_notifications_read(bearer(&agency.agent, request)).await, Code::InvalidArgument);
        assert!(status.message().contains(field));
    }
    let bad = pb::ListNotificationsRequest { page_token: "garbage!".into(), ..Default::default() };
    expect_code(notes.list_notifications(bearer(&agency.agent, bad)).await, Code::InvalidArgument);

    // Another organization sees none of it.
    let other = world.agency("Other Notify").await;
    let theirs = notes.list_notifications(bearer(&other.owner, pb::ListNotificationsRequest::default())).await.unwrap();
    assert!(theirs.into_inner().notifications.is_empty());
    let foreign = notes
        .mark_notifications_read(bearer(
            &other.owner,
            pb::MarkNotificationsReadRequest { notification_ids: vec![], all: true },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(foreign.marked, 0);
    world.shutdown().await;
}

#[tokio::test]
async fn a_kind_turned_off_is_not_notified_and_a_redelivered_event_notifies_once() {
    let world = spawn().await;
    let agency = world.agency("Prefs Co").await;
    let mut notes = client(&world);
    let prefs = lead_assigned_by(&mut notes, &agency.agent, pb::NotificationChannel::Off).await;
    assert_eq!(prefs.len(), 6);
    assert!(
        prefs
            .iter()
            .any(|p| p.kind() == pb::NotificationKind::LeadAssigned && p.channel() == pb::NotificationChannel::Off)
    );
    assert!(
        prefs.iter().any(
            |p| p.kind() == pb::NotificationKind::LeadStageChanged && p.channel() == pb::NotificationChannel::InApp
        )
    );
    let bad = pb::NotificationPreference { kind: 0, channel: pb::NotificationChannel::Off.into() };
    let status = expect_code(
        notes
            .update_notification_preferences(bearer(
                &agency.agent,
                pb::UpdateNotificationPreferencesRequest { preferences: vec![bad] },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("preferences.kind"));

    // Assigned (off), then moved (on): only the move is notified. One queue, in order.
    let mut sales = world.sales.clone();
    let (lead, assigned) = assigned_lead(&world, &agency, "Otto Off").await;
    sales
        .change_lead_stage(bearer(
            &agency.manager,
            spb::ChangeLeadStageRequest {
                lead_id: lead.id.clone(),
                stage: spb::LeadStage::Contacted.into(),
                etag: assigned.etag,
            },
        ))
        .await
        .unwrap();
    let listed = eventually("the stage change notified", || {
        let mut notes = notes.clone();
        let request = bearer(&agency.agent, pb::ListNotificationsRequest::default());
        async move {
            Some(notes.list_notifications(request).await.ok()?.into_inner()).filter(|l| !l.notifications.is_empty())
        }
    })
    .await;
    assert_eq!(
        listed.notifications.iter().map(|n| n.kind()).collect::<Vec<_>>(),
        [pb::NotificationKind::LeadStageChanged]
    );

    // The same event handled twice (a redelivery past the inbox) notifies once.
    let pool = world.pool().await;
    let org: uuid::Uuid =
        sqlx::query_scalar("SELECT organization_id FROM comm.lead_assignees WHERE lead_id = $1::uuid")
            .bind(&lead.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let on = pb::NotificationPreference {
        kind: pb::NotificationKind::LeadAssigned.into(),
        channel: pb::NotificationChannel::InApp.into(),
    };
    notes
        .update_notification_preferences(bearer(
            &agency.agent,
            pb::UpdateNotificationPreferencesRequest { preferences: vec![on] },
        ))
        .await
        .unwrap();
    let event = Envelope {
        event_id: uuid::Uuid::now_v7(),
        tenant_id: org,
        routing_key: "sales.lead.assigned".into(),
        aggregate_type: "lead".into(),
        aggregate_id: lead.id.clone(),
        sequence: 9,
        event_type: "assigned".into(),
        event_version: "1".into(),
        recorded_at: chrono::Utc::now(),
        payload: Payload::proto(&LeadAssigned {
            lead_id: lead.id.clone(),
            previous_assignee_id: agency.agent_id.clone(),
            assignee_id: agency.agent_id.clone(),
            occur_time: None,
        }),
        metadata: serde_json::json!({ "actor": "someone-else" }),
    };
    for _ in 0..2 {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL search_path TO comm").execute(&mut *tx).await.unwrap();
        Notifier.handle(&mut tx, &event).await.unwrap();
        tx.commit().await.unwrap();
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM comm.notifications WHERE event_id = $1")
        .bind(event.event_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    world.shutdown().await;
}

#[tokio::test]
async fn an_overdue_invoice_notifies_the_brands_finance_people_once() {
    use sentra_proto::sentra::tenancy::v1 as tpb;
    use sentra_testkit::tenancy;
    let world = spawn().await;
    let agency = world.agency("Overdue Co").await;
    let email = agency.email("fay");
    tenancy::staff_member(&world.tenancy, &agency.owner, &email, &agency.alpha, tpb::BrandRole::Finance).await;
    let fay = world.login(&email).await;
    let pool = world.pool().await;
    // Tenancy's grant reached Comm; the organization comes with it.
    let org: uuid::Uuid = eventually("the finance role in Comm", || {
        let (pool, brand) = (pool.clone(), agency.alpha.clone());
        async move {
            sqlx::query_scalar(
                "SELECT organization_id FROM comm.known_brand_roles WHERE brand_id = $1::uuid AND role = 'finance'",
            )
            .bind(brand)
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten()
        }
    })
    .await;
    let mut notes = client(&world);
    let mut stream =
        notes.watch_notifications(bearer(&fay, pb::WatchNotificationsRequest {})).await.unwrap().into_inner();

    let invoice =
        crate::helpers::issued_invoice(&world, org, &agency.alpha, &uuid::Uuid::now_v7().to_string(), "AL-9", -5).await;
    let overdue = crate::helpers::envelope(
        org,
        &invoice,
        "overdue",
        Payload::proto(&sentra_proto::sentra::finance::events::v1::InvoiceOverdue {
            invoice_id: invoice.clone(),
            ..Default::default()
        }),
    );
    crate::helpers::publish(&world, &overdue).await;
    crate::helpers::publish(&world, &overdue).await;
    let n = next(&mut stream).await;
    assert_eq!(n.kind(), pb::NotificationKind::InvoiceOverdue);
    assert_eq!(n.title, "Invoice AL-9 is overdue: EUR 1,190.00 open");
    assert_eq!(n.subject, format!("invoices/{invoice}"));
    assert_eq!(n.brand_id, agency.alpha);
    // Delivered twice, notified once; the agent (no finance role) is not told.
    let later =
        crate::helpers::issued_invoice(&world, org, &agency.alpha, &uuid::Uuid::now_v7().to_string(), "AL-10", -1)
            .await;
    crate::helpers::publish(
        &world,
        &crate::helpers::envelope(
            org,
            &later,
            "overdue",
            Payload::proto(&sentra_proto::sentra::finance::events::v1::InvoiceOverdue {
                invoice_id: later.clone(),
                ..Default::default()
            }),
        ),
    )
    .await;
    assert_eq!(next(&mut stream).await.subject, format!("invoices/{later}"));
    let listed =
        notes.list_notifications(bearer(&fay, pb::ListNotificationsRequest::default())).await.unwrap().into_inner();
    assert_eq!(listed.notifications.len(), 2);
    let agent = notes
        .list_notifications(bearer(&agency.agent, pb::ListNotificationsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(agent.notifications.iter().all(|n| n.kind() != pb::NotificationKind::InvoiceOverdue));
    world.shutdown().await;
}

#[tokio::test]
async fn mail_from_a_lead_tells_its_assignee_but_the_first_sync_tells_nobody() {
    use sentra_testkit::gmail::MailSpec;
    let world = spawn().await;
    let agency = world.agency("Reply Co").await;
    let me = agency.email("agent");
    world.gmail.add_user(&me);
    // History before the mailbox was connected: imported, not announced.
    world.gmail.deliver(&me, MailSpec::new("Nora", "nora@client.example", "Earlier", "old").to("Agent", &me));
    let lead = world.lead(&agency.manager, &agency.alpha, "Nora Newlead", "Nora@Client.example").await;
    world
        .sales
        .clone()
        .assign_lead(bearer(
            &agency.manager,
            spb::AssignLeadRequest {
                lead_id: lead.clone(),
                assignee_id: agency.agent_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let pool = world.pool().await;
    eventually("the assignment in Comm", || {
        let (pool, lead) = (pool.clone(), lead.clone());
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM comm.lead_assignees WHERE lead_id = $1::uuid AND assignee_id IS NOT NULL",
            )
            .bind(lead)
            .fetch_one(&pool)
            .await
            .ok()?;
            (n == 1).then_some(())
        }
    })
    .await;
    let mailbox = world.connect(&agency.agent, &me).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, 1).await;
    let mut notes = client(&world);
    let mut stream =
        notes.watch_notifications(bearer(&agency.agent, pb::WatchNotificationsRequest {})).await.unwrap().into_inner();

    world
        .gmail
        .deliver(&me, MailSpec::new("Nora", "nora@client.example", "Re: proposal", "Yes, go ahead").to("Agent", &me));
    // Mail the agent sends from the mailbox is no reply.
    world.gmail.deliver(&me, MailSpec::new("Agent", &me, "Re: proposal", "Great").to("Nora", "nora@client.example"));
    world.sync_now(&agency.agent, &mailbox.mailbox_id).await;
    world.synced(&agency.agent, &mailbox.mailbox_id, 3).await;
    let n = loop {
        let n = next(&mut stream).await;
        if n.kind() == pb::NotificationKind::ReplyReceived {
            break n;
        }
    };
    assert_eq!(n.title, "Nora Newlead wrote: Re: proposal");
    assert_eq!(n.subject, format!("leads/{lead}"));
    assert_eq!(n.brand_id, agency.alpha);
    let listed = notes
        .list_notifications(bearer(&agency.agent, pb::ListNotificationsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.notifications.iter().filter(|n| n.kind() == pb::NotificationKind::ReplyReceived).count(), 1);
    world.shutdown().await;
}

#[tokio::test]
async fn a_kind_chosen_by_email_also_arrives_by_email() {
    let smtp = sentra_testkit::smtp::SmtpServer::start().await;
    let port = smtp.port();
    let world = crate::helpers::spawn_with(move |c| c.automation.smtp.port = port).await;
    let agency = world.agency("Mailed Co").await;
    let mut notes = client(&world);
    let prefs = lead_assigned_by(&mut notes, &agency.agent, pb::NotificationChannel::Email).await;
    assert!(
        prefs
            .iter()
            .any(|p| p.kind() == pb::NotificationKind::LeadAssigned && p.channel() == pb::NotificationChannel::Email)
    );
    let lead = world.lead(&agency.manager, &agency.alpha, "Ella Email", "ella@client.example").await;
    world
        .sales
        .clone()
        .assign_lead(bearer(
            &agency.manager,
            spb::AssignLeadRequest { lead_id: lead, assignee_id: agency.agent_id.clone(), ..Default::default() },
        ))
        .await
        .unwrap();
    let mail = eventually("the notification's email", || async { smtp.messages().into_iter().next() }).await;
    assert!(mail.contains(&format!("X-Envelope-To: {}", agency.email("agent"))), "{mail}");
    assert!(mail.contains("Subject: Ella Email was assigned to you"), "{mail}");
    assert!(!mail.contains("List-Unsubscribe"), "staff mail is not client-facing");
    // In the bell as well.
    let listed = notes
        .list_notifications(bearer(&agency.agent, pb::ListNotificationsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.notifications.len(), 1);
    world.shutdown().await;
}
