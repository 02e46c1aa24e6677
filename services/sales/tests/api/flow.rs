//! The whole flow: lead -> assign -> stages -> convert -> client -> order -> confirm.

use sentra_proto::sentra::sales::v1 as pb;

use crate::helpers::{advance, bearer, create_lead, eur, eventually, spawn};

#[tokio::test]
async fn lead_to_confirmed_order_with_read_models_and_history() {
    let world = spawn().await;
    let agency = world.agency("Flow Agency").await;
    let mut s = world.sales.clone();
    let (agent2_id, agent2) = agency.agent2.clone();

    // An agent captures a lead: it is theirs.
    let lead = create_lead(&world, &agency.agent.1, &agency.alpha, "Ada Lovelace").await;
    assert_eq!(lead.stage, pb::LeadStage::New as i32);
    assert_eq!(lead.assignee_id, agency.agent.0);
    assert_eq!(lead.email, "ada.lovelace@prospect.example");
    assert_eq!(lead.source, "website");

    // The manager reassigns it to another agent of the brand.
    let lead = s
        .assign_lead(bearer(
            &agency.manager.1,
            pb::AssignLeadRequest { lead_id: lead.id.clone(), assignee_id: agent2_id.clone(), etag: lead.etag.clone() },
        ))
        .await
        .expect("assign")
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(lead.assignee_id, agent2_id);

    // The new assignee works it up to qualified, with a note.
    let lead = advance(&world, &agent2, &lead, pb::LeadStage::Qualified).await;
    assert_eq!(lead.stage, pb::LeadStage::Qualified as i32);
    s.add_lead_note(bearer(
        &agent2,
        pb::AddLeadNoteRequest { lead_id: lead.id.clone(), text: "Budget confirmed".into() },
    ))
    .await
    .expect("note");

    // Conversion makes a client linked both ways.
    let converted = s
        .convert_lead(bearer(
            &agent2,
            pb::ConvertLeadRequest { lead_id: lead.id.clone(), existing_client_id: String::new(), etag: String::new() },
        ))
        .await
        .expect("convert")
        .into_inner();
    let (lead, client) = (converted.lead.unwrap(), converted.client.unwrap());
    assert_eq!(lead.stage, pb::LeadStage::Won as i32);
    assert_eq!(lead.client_id, client.id);
    assert_eq!(client.lead_ids, std::slice::from_ref(&lead.id));
    assert_eq!((client.contact_name.as_str(), client.brand_id.as_str()), ("Ada Lovelace", agency.alpha.as_str()));

    // An order with exact totals: 2.5 h at 120.00, 10% off, 19% VAT; plus 1 licence at 99.99.
    let lines = vec![
        pb::OrderLine {
            description: "Design work".into(),
            quantity: "2.5".into(),
            unit_price: eur(12_000),
            tax_rate_bps: 1900,
            discount_bps: 1000,
            ..Default::default()
        },
        pb::OrderLine {
            description: "Font licence".into(),
            quantity: "1".into(),
            unit_price: eur(9_999),
            tax_rate_bps: 1900,
            discount_bps: 0,
            ..Default::default()
        },
    ];
    let order = s
        .create_order(bearer(
            &agent2,
            pb::CreateOrderRequest {
                client_id: client.id.clone(),
                currency_code: String::new(),
                lines,
                request_id: "order-1".into(),
            },
        ))
        .await
        .expect("order")
        .into_inner()
        .order
        .unwrap();
    // 30000 - 3000 = 27000, tax 5130 -> 32130; 9999 + tax 1899.81 -> 1900 -> 11899; total 44029.
    assert_eq!(order.subtotal, eur(39_999));
    assert_eq!(order.discount_total, eur(3_000));
    assert_eq!(order.tax_total, eur(7_030));
    assert_eq!(order.total, eur(44_029));
    assert_eq!(order.lines[0].total, eur(32_130));
    assert_eq!(order.state, pb::OrderState::Draft as i32);

    let confirmed = s
        .confirm_order(bearer(
            &agent2,
            pb::ConfirmOrderRequest { order_id: order.id.clone(), etag: order.etag.clone() },
        ))
        .await
        .expect("confirm")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(confirmed.state, pb::OrderState::Confirmed as i32);

    // Every read model agrees with the aggregates (once the projections caught up).
    let listed_lead = eventually("the lead in the read model", || {
        let mut s = s.clone();
        let token = agency.manager.1.clone();
        let etag = lead.etag.clone();
        async move {
            let leads = s
                .list_leads(bearer(&token, pb::ListLeadsRequest { brand_id: String::new(), ..Default::default() }))
                .await
                .ok()?
                .into_inner()
                .leads;
            leads.into_iter().find(|l| l.etag == etag)
        }
    })
    .await;
    let got = s
        .get_lead(bearer(&agency.manager.1, pb::GetLeadRequest { lead_id: lead.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(pb::Lead { activity_notes: vec![], ..got.clone() }, listed_lead);
    assert_eq!(got.activity_notes.len(), 1);

    let listed_client = eventually("the client in the read model", || {
        let mut s = s.clone();
        let token = agency.manager.1.clone();
        async move {
            s.list_clients(bearer(&token, pb::ListClientsRequest::default()))
                .await
                .ok()?
                .into_inner()
                .clients
                .into_iter()
                .next()
        }
    })
    .await;
    assert_eq!(listed_client, client);
    let listed_order = eventually("the confirmed order in the read model", || {
        let mut s = s.clone();
        let token = agency.manager.1.clone();
        let etag = confirmed.etag.clone();
        async move {
            let orders =
                s.list_orders(bearer(&token, pb::ListOrdersRequest::default())).await.ok()?.into_inner().orders;
            orders.into_iter().find(|o| o.etag == etag)
        }
    })
    .await;
    assert_eq!(listed_order, confirmed);

    // The history lists every step with its actor.
    let history = s
        .get_lead_history(bearer(&agency.viewer.1, pb::GetLeadHistoryRequest { lead_id: lead.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .entries;
    let steps: Vec<(&str, &str)> = history.iter().map(|e| (e.event_type.as_str(), e.actor_id.as_str())).collect();
    assert_eq!(
        steps,
        [
            ("created", agency.agent.0.as_str()),
            ("assigned", agency.manager.0.as_str()),
            ("stage_changed", agent2_id.as_str()),
            ("stage_changed", agent2_id.as_str()),
            ("note_added", agent2_id.as_str()),
            ("converted", agent2_id.as_str()),
        ]
    );
    assert_eq!(history[2].summary, "Stage changed from NEW to CONTACTED");
    assert_eq!(history[1].changes[0].old_value, agency.agent.0);
    // Every field the creation set, from nothing; every later change, old -> new.
    let created: Vec<(&str, &str, &str)> =
        history[0].changes.iter().map(|c| (c.field.as_str(), c.old_value.as_str(), c.new_value.as_str())).collect();
    assert!(created.iter().all(|(_, old, _)| old.is_empty()), "{created:?}");
    let fields: Vec<&str> = created.iter().map(|(f, _, _)| *f).collect();
    for field in ["contact_name", "email", "phone", "company", "source", "estimated_value", "notes", "stage"] {
        assert!(fields.contains(&field), "{field} missing from {created:?}");
    }
    assert!(created.contains(&("stage", "", "NEW")), "{created:?}");
    let converted = &history[5].changes;
    assert!(converted.iter().any(|c| c.field == "stage" && c.old_value == "QUALIFIED" && c.new_value == "WON"));
    assert!(converted.iter().any(|c| c.field == "client_id" && c.old_value.is_empty() && !c.new_value.is_empty()));
    assert!(history.iter().zip(history.iter().skip(1)).all(|(a, b)| a.sequence + 1 == b.sequence));
}

#[tokio::test]
async fn a_retried_create_with_the_same_request_id_returns_the_same_lead_and_order() {
    let world = spawn().await;
    let agency = world.agency("Retry Agency").await;
    let mut s = world.sales.clone();
    let request = || pb::CreateLeadRequest {
        lead: Some(crate::helpers::new_lead(&agency.alpha, "Grace Hopper")),
        request_id: "lead-req-1".into(),
    };
    let first = s.create_lead(bearer(&agency.agent.1, request())).await.unwrap().into_inner().lead.unwrap();
    let again = s.create_lead(bearer(&agency.agent.1, request())).await.unwrap().into_inner().lead.unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(first.etag, again.etag, "nothing was appended twice");
    let history = s
        .get_lead_history(bearer(&agency.agent.1, pb::GetLeadHistoryRequest { lead_id: first.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(history.len(), 1);
}

#[tokio::test]
async fn replaying_all_events_in_one_batch_builds_the_same_read_table() {
    use sentra_event_store::{Cursor, EventStore, Projection};
    use sentra_sales::projections::LeadsProjection;

    let world = spawn().await;
    let agency = world.agency("Replay Agency").await;
    let mut s = world.sales.clone();
    // Creations interleaved with other events, so a batch mixes both.
    for name in ["Replay One", "Replay Two", "Replay Three"] {
        let lead = create_lead(&world, &agency.agent.1, &agency.alpha, name).await;
        advance(&world, &agency.agent.1, &lead, pb::LeadStage::Contacted).await;
    }
    let lost = create_lead(&world, &agency.agent.1, &agency.alpha, "Replay Lost").await;
    s.mark_lead_lost(bearer(
        &agency.agent.1,
        pb::MarkLeadLostRequest { lead_id: lost.id, reason: "timing".into(), etag: String::new() },
    ))
    .await
    .unwrap();
    create_lead(&world, &agency.agent.1, &agency.alpha, "Replay Last").await;
    eventually("the live read table", || {
        let mut s = s.clone();
        let token = agency.manager.1.clone();
        async move {
            let leads = s.list_leads(bearer(&token, pb::ListLeadsRequest::default())).await.ok()?.into_inner().leads;
            (leads.len() == 5 && leads.iter().filter(|l| l.stage == pb::LeadStage::Contacted as i32).count() == 3)
                .then_some(())
        }
    })
    .await;

    let pool = sqlx::postgres::PgPoolOptions::new()
        .after_connect(|c, _| {
            Box::pin(async move { sqlx::query("SET search_path = sales").execute(c).await.map(|_| ()) })
        })
        .connect(world.db_url())
        .await
        .unwrap();
    let store = EventStore::new(pool.clone());
    let events = store.feed().read_batch(Cursor::START, 10_000).await.unwrap();
    let projection = LeadsProjection;
    let mut tx = pool.begin().await.unwrap();
    sqlx::raw_sql("CREATE TABLE leads_replay (LIKE leads INCLUDING ALL)").execute(&mut *tx).await.unwrap();
    projection.apply_batch(&mut tx, "leads_replay", &events).await.unwrap();
    let differing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ((SELECT * FROM leads EXCEPT SELECT * FROM leads_replay)
                               UNION ALL (SELECT * FROM leads_replay EXCEPT SELECT * FROM leads)) d",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(differing, 0, "one batch of everything equals the live, event-by-event table");
}
