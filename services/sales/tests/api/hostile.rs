//! Hostile and out-of-range input gets a clean INVALID_ARGUMENT naming the field: times outside
//! the years 1 to 9999, amounts beyond the bound, an order whose total would be negative.

use sentra_proto::sentra::sales::v1 as pb;
use tonic::Code;

use crate::helpers::{advance, bearer, create_lead, eur, expect_code, spawn};

fn names(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with(field), "{field} not named: {status:?}");
}

#[tokio::test]
async fn times_outside_the_calendar_are_invalid_not_internal() {
    let world = spawn().await;
    let agency = world.agency("Range Sales").await;
    let mut s = world.sales.clone();
    let far = || Some(prost_types::Timestamp { seconds: -7_950_000_000_000, nanos: 0 }); // year -250000
    let status = expect_code(
        s.get_pipeline_summary(bearer(
            &agency.owner,
            pb::GetPipelineSummaryRequest { as_of: far(), ..Default::default() },
        ))
        .await,
        Code::InvalidArgument,
    );
    names(&status, "as_of");
    for (field, request) in [
        ("created_after", pb::ListLeadsRequest { created_after: far(), ..Default::default() }),
        (
            "created_before",
            pb::ListLeadsRequest {
                created_before: Some(prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }),
                ..Default::default()
            },
        ),
    ] {
        names(&expect_code(s.list_leads(bearer(&agency.owner, request)).await, Code::InvalidArgument), field);
    }
}

#[tokio::test]
async fn amounts_beyond_the_bound_and_negative_orders_are_refused() {
    let world = spawn().await;
    let agency = world.agency("Bounds Sales").await;
    let mut s = world.sales.clone();
    let mut lead = crate::helpers::new_lead(&agency.alpha, "Rich Prospect");
    lead.estimated_value = eur(sentra_money::MAX_AMOUNT + 1);
    let status = expect_code(
        s.create_lead(bearer(&agency.owner, pb::CreateLeadRequest { lead: Some(lead), request_id: String::new() }))
            .await,
        Code::InvalidArgument,
    );
    names(&status, "lead.estimated_value");

    let lead = create_lead(&world, &agency.owner, &agency.alpha, "Order Prospect").await;
    let lead = advance(&world, &agency.owner, &lead, pb::LeadStage::Qualified).await;
    let converted = s
        .convert_lead(bearer(&agency.owner, pb::ConvertLeadRequest { lead_id: lead.id.clone(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    let client = converted.client.unwrap();
    let line = |price: i64| pb::OrderLine {
        description: "Line".into(),
        quantity: "1".into(),
        unit_price: eur(price),
        ..Default::default()
    };
    let order = |lines: Vec<pb::OrderLine>| pb::CreateOrderRequest {
        client_id: client.id.clone(),
        currency_code: "EUR".into(),
        lines,
        request_id: String::new(),
    };
    // An order whose only line is negative was accepted with total -100.
    names(
        &expect_code(s.create_order(bearer(&agency.owner, order(vec![line(-100)]))).await, Code::InvalidArgument),
        "lines",
    );
    names(
        &expect_code(s.create_order(bearer(&agency.owner, order(vec![line(i64::MIN)]))).await, Code::InvalidArgument),
        "lines.unit_price",
    );
    // A credit line inside a positive order is fine.
    let ok = s.create_order(bearer(&agency.owner, order(vec![line(1_000), line(-100)]))).await.unwrap().into_inner();
    assert_eq!(ok.order.unwrap().total.unwrap().amount_minor, 900);
}
