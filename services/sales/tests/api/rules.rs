//! Business rules: transitions, optimistic concurrency, input validation.

use prost_types::FieldMask;
use sentra_proto::sentra::sales::v1 as pb;
use tonic::Code;

use crate::helpers::{advance, bearer, create_lead, eur, expect_code, spawn};

#[tokio::test]
async fn illegal_transitions_are_failed_precondition() {
    let world = spawn().await;
    let agency = world.agency("Rules Agency").await;
    let mut s = world.sales.clone();
    let token = &agency.agent.1;
    let lead = create_lead(&world, token, &agency.alpha, "Skip Ahead").await;
    let stage = |to: pb::LeadStage| pb::ChangeLeadStageRequest {
        lead_id: lead.id.clone(),
        stage: to.into(),
        etag: String::new(),
    };

    // Skipping rungs, jumping to won, converting too early.
    expect_code(s.change_lead_stage(bearer(token, stage(pb::LeadStage::Qualified))).await, Code::FailedPrecondition);
    expect_code(s.change_lead_stage(bearer(token, stage(pb::LeadStage::Won))).await, Code::FailedPrecondition);
    let early =
        s.convert_lead(bearer(token, pb::ConvertLeadRequest { lead_id: lead.id.clone(), ..Default::default() })).await;
    expect_code(early, Code::FailedPrecondition);
    expect_code(
        s.reopen_lead(bearer(token, pb::ReopenLeadRequest { lead_id: lead.id.clone(), etag: String::new() })).await,
        Code::FailedPrecondition,
    );

    // Lost leads are frozen until reopened, which returns them where they were.
    let contacted = advance(&world, token, &lead, pb::LeadStage::Contacted).await;
    let lost = s
        .mark_lead_lost(bearer(
            token,
            pb::MarkLeadLostRequest { lead_id: lead.id.clone(), reason: "Budget".into(), etag: contacted.etag.clone() },
        ))
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!((lost.stage, lost.lost_reason.as_str()), (pb::LeadStage::Lost as i32, "budget"));
    expect_code(s.change_lead_stage(bearer(token, stage(pb::LeadStage::Contacted))).await, Code::FailedPrecondition);
    let reopened = s
        .reopen_lead(bearer(token, pb::ReopenLeadRequest { lead_id: lead.id.clone(), etag: String::new() }))
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(reopened.stage, pb::LeadStage::Contacted as i32);

    // Orders: no confirming an empty draft, no fulfilling a draft, no changing a confirmed order.
    let qualified = advance(&world, token, &reopened, pb::LeadStage::Qualified).await;
    let client = s
        .convert_lead(bearer(token, pb::ConvertLeadRequest { lead_id: qualified.id.clone(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    let order = s
        .create_order(bearer(
            token,
            pb::CreateOrderRequest {
                client_id: client.id.clone(),
                currency_code: "EUR".into(),
                lines: vec![],
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    expect_code(
        s.confirm_order(bearer(token, pb::ConfirmOrderRequest { order_id: order.id.clone(), etag: String::new() }))
            .await,
        Code::FailedPrecondition,
    );
    expect_code(
        s.fulfill_order(bearer(token, pb::FulfillOrderRequest { order_id: order.id.clone(), etag: String::new() }))
            .await,
        Code::FailedPrecondition,
    );
    let line =
        pb::OrderLine { description: "Work".into(), quantity: "1".into(), unit_price: eur(100), ..Default::default() };
    s.update_order_lines(bearer(
        token,
        pb::UpdateOrderLinesRequest { order_id: order.id.clone(), lines: vec![line.clone()], etag: String::new() },
    ))
    .await
    .unwrap();
    s.confirm_order(bearer(token, pb::ConfirmOrderRequest { order_id: order.id.clone(), etag: String::new() }))
        .await
        .unwrap();
    let late = s
        .update_order_lines(bearer(
            token,
            pb::UpdateOrderLinesRequest { order_id: order.id.clone(), lines: vec![line], etag: String::new() },
        ))
        .await;
    expect_code(late, Code::FailedPrecondition);
    let cancelled = s
        .cancel_order(bearer(
            token,
            pb::CancelOrderRequest {
                order_id: order.id.clone(),
                reason: "Client withdrew".into(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(cancelled.state, pb::OrderState::Cancelled as i32);
    expect_code(
        s.fulfill_order(bearer(token, pb::FulfillOrderRequest { order_id: order.id.clone(), etag: String::new() }))
            .await,
        Code::FailedPrecondition,
    );
}

#[tokio::test]
async fn two_updates_with_the_same_etag_one_wins_one_is_aborted() {
    let world = spawn().await;
    let agency = world.agency("Race Agency").await;
    let lead = create_lead(&world, &agency.manager.1, &agency.alpha, "Race Condition").await;
    let update = |company: &str| pb::UpdateLeadRequest {
        lead: Some(pb::Lead {
            id: lead.id.clone(),
            company: company.into(),
            etag: lead.etag.clone(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["company".into()] }),
    };
    let (mut a, mut b) = (world.sales.clone(), world.sales.clone());
    let (ra, rb) = tokio::join!(
        a.update_lead(bearer(&agency.manager.1, update("Winner A"))),
        b.update_lead(bearer(&agency.manager.1, update("Winner B"))),
    );
    let (won, lost) = match (ra, rb) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w.into_inner().lead.unwrap(), l),
        other => panic!("exactly one update must win: {other:?}"),
    };
    assert_eq!(lost.code(), Code::Aborted, "{lost:?}");
    let now = world
        .sales
        .clone()
        .get_lead(bearer(&agency.manager.1, pb::GetLeadRequest { lead_id: lead.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!((now.company, now.etag), (won.company, won.etag));

    // A stale etag later is aborted too, and changes nothing.
    expect_code(world.sales.clone().update_lead(bearer(&agency.manager.1, update("Late"))).await, Code::Aborted);
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let world = spawn().await;
    let agency = world.agency("Input Agency").await;
    let mut s = world.sales.clone();
    let token = &agency.agent.1;
    let mut lead = crate::helpers::new_lead(&agency.alpha, "x");
    lead.contact_name = "  ".into();
    let status = expect_code(
        s.create_lead(bearer(token, pb::CreateLeadRequest { lead: Some(lead), request_id: String::new() })).await,
        Code::InvalidArgument,
    );
    assert!(status.message().starts_with("lead.contact_name:"), "{status:?}");
    let mut lead = crate::helpers::new_lead(&agency.alpha, "Bad Mail");
    lead.email = "not-an-email".into();
    let status = expect_code(
        s.create_lead(bearer(token, pb::CreateLeadRequest { lead: Some(lead), request_id: String::new() })).await,
        Code::InvalidArgument,
    );
    assert!(status.message().starts_with("lead.email:"));
    let status = expect_code(
        s.list_leads(bearer(token, pb::ListLeadsRequest { page_size: -5, ..Default::default() })).await,
        Code::InvalidArgument,
    );
    assert!(status.message().starts_with("page_size:"));
    let status = expect_code(
        s.get_lead(bearer(token, pb::GetLeadRequest { lead_id: "42".into() })).await,
        Code::InvalidArgument,
    );
    assert!(status.message().starts_with("lead_id:"));

    let lead = create_lead(&world, token, &agency.alpha, "Order Input").await;
    let lead = advance(&world, token, &lead, pb::LeadStage::Qualified).await;
    let client = s
        .convert_lead(bearer(token, pb::ConvertLeadRequest { lead_id: lead.id.clone(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .client
        .unwrap();
    let order = |line: pb::OrderLine| pb::CreateOrderRequest {
        client_id: client.id.clone(),
        currency_code: "EUR".into(),
        lines: vec![line],
        request_id: String::new(),
    };
    let base =
        pb::OrderLine { description: "Work".into(), quantity: "1".into(), unit_price: eur(100), ..Default::default() };
    for (line, field) in [
        (pb::OrderLine { quantity: "1.2345".into(), ..base.clone() }, "lines.quantity:"),
        (pb::OrderLine { quantity: "-1".into(), ..base.clone() }, "lines.quantity:"),
        (pb::OrderLine { tax_rate_bps: 10_001, ..base.clone() }, "lines.tax_rate_bps:"),
        (
            pb::OrderLine {
                unit_price: Some(sentra_proto::sentra::r#type::v1::Money {
                    currency_code: "USD".into(),
                    amount_minor: 1,
                }),
                ..base.clone()
            },
            "lines.unit_price.currency_code:",
        ),
    ] {
        let status = expect_code(s.create_order(bearer(token, order(line))).await, Code::InvalidArgument);
        assert!(status.message().starts_with(field), "{field} vs {status:?}");
    }
}

#[tokio::test]
async fn the_history_of_an_update_shows_each_changed_field_old_to_new_and_nothing_else() {
    let world = spawn().await;
    let agency = world.agency("History Agency").await;
    let lead = create_lead(&world, &agency.manager.1, &agency.alpha, "Hedy Lamarr").await;
    let update = pb::UpdateLeadRequest {
        lead: Some(pb::Lead {
            id: lead.id.clone(),
            company: "Frequency Hopping Inc".into(),
            phone: "+1 555 0100".into(),
            etag: lead.etag.clone(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["company".into(), "phone".into()] }),
    };
    world.sales.clone().update_lead(bearer(&agency.manager.1, update)).await.unwrap();
    let history = world
        .sales
        .clone()
        .get_lead_history(bearer(&agency.manager.1, pb::GetLeadHistoryRequest { lead_id: lead.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .entries;
    let updated = history.iter().find(|e| e.event_type == "updated").expect("an updated entry");
    let changes: Vec<(&str, &str, &str)> =
        updated.changes.iter().map(|c| (c.field.as_str(), c.old_value.as_str(), c.new_value.as_str())).collect();
    assert_eq!(
        changes,
        [("phone", lead.phone.as_str(), "+1 555 0100"), ("company", lead.company.as_str(), "Frequency Hopping Inc"),]
    );
}
