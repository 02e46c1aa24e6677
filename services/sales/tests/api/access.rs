//! Who may do what: organizations are isolated, brands separate, roles limit, portal clients
//! see only their own orders.

use prost_types::FieldMask;
use sentra_proto::sentra::sales::v1 as pb;
use tonic::Code;

use crate::helpers::{advance, bearer, create_lead, eur, eventually, expect_code, spawn};

/// One lead, client and confirmed order of an agency's brand Alpha.
async fn records(world: &crate::helpers::World, agency: &crate::helpers::Agency) -> (pb::Lead, pb::Client, pb::Order) {
    let token = &agency.agent.1;
    let lead = create_lead(world, token, &agency.alpha, "Kept Private").await;
    let qualified = advance(world, token, &lead, pb::LeadStage::Qualified).await;
    let converted = world
        .sales
        .clone()
        .convert_lead(bearer(token, pb::ConvertLeadRequest { lead_id: qualified.id.clone(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    let client = converted.client.unwrap();
    let line =
        pb::OrderLine { description: "Work".into(), quantity: "1".into(), unit_price: eur(500), ..Default::default() };
    let order = world
        .sales
        .clone()
        .create_order(bearer(
            token,
            pb::CreateOrderRequest {
                client_id: client.id.clone(),
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
    (converted.lead.unwrap(), client, order)
}

fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<(), Code> {
    result.map(|_| ()).map_err(|status| status.code())
}

/// Every SalesService RPC, aimed at `lead`, `client` and `order`, as `token`: (name, result code).
async fn every_rpc(
    s: &mut pb::sales_service_client::SalesServiceClient<tonic::transport::Channel>,
    token: &str,
    brand: &str,
    lead: &pb::Lead,
    client: &pb::Client,
    order: &pb::Order,
) -> Vec<(&'static str, Result<(), Code>)> {
    let lid = || lead.id.clone();
    let line =
        pb::OrderLine { description: "X".into(), quantity: "1".into(), unit_price: eur(1), ..Default::default() };
    vec![
        (
            "CreateLead",
            code(
                s.create_lead(bearer(
                    token,
                    pb::CreateLeadRequest {
                        lead: Some(crate::helpers::new_lead(brand, "Intruder")),
                        request_id: String::new(),
                    },
                ))
                .await,
            ),
        ),
        ("GetLead", code(s.get_lead(bearer(token, pb::GetLeadRequest { lead_id: lid() })).await)),
        (
            "UpdateLead",
            code(
                s.update_lead(bearer(
                    token,
                    pb::UpdateLeadRequest {
                        lead: Some(pb::Lead { id: lid(), company: "X".into(), ..Default::default() }),
                        update_mask: Some(FieldMask { paths: vec!["company".into()] }),
                    },
                ))
                .await,
            ),
        ),
        (
            "AssignLead",
            code(
                s.assign_lead(bearer(
                    token,
                    pb::AssignLeadRequest {
                        lead_id: lid(),
                        assignee_id: uuid::Uuid::new_v4().to_string(),
                        etag: String::new(),
                    },
                ))
                .await,
            ),
        ),
        (
            "ChangeLeadStage",
            code(
                s.change_lead_stage(bearer(
                    token,
                    pb::ChangeLeadStageRequest {
                        lead_id: lid(),
                        stage: pb::LeadStage::Contacted.into(),
                        etag: String::new(),
                    },
                ))
                .await,
            ),
        ),
        (
            "AddLeadNote",
            code(s.add_lead_note(bearer(token, pb::AddLeadNoteRequest { lead_id: lid(), text: "x".into() })).await),
        ),
        (
            "MarkLeadLost",
            code(
                s.mark_lead_lost(bearer(
                    token,
                    pb::MarkLeadLostRequest { lead_id: lid(), reason: "x".into(), etag: String::new() },
                ))
                .await,
            ),
        ),
        (
            "ReopenLead",
            code(s.reopen_lead(bearer(token, pb::ReopenLeadRequest { lead_id: lid(), etag: String::new() })).await),
        ),
        (
            "ConvertLead",
            code(s.convert_lead(bearer(token, pb::ConvertLeadRequest { lead_id: lid(), ..Default::default() })).await),
        ),
        ("GetLeadHistory", code(s.get_lead_history(bearer(token, pb::GetLeadHistoryRequest { lead_id: lid() })).await)),
        ("GetClient", code(s.get_client(bearer(token, pb::GetClientRequest { client_id: client.id.clone() })).await)),
        (
            "UpdateClient",
            code(
                s.update_client(bearer(
                    token,
                    pb::UpdateClientRequest {
                        client: Some(pb::Client { id: client.id.clone(), company: "X".into(), ..Default::default() }),
                        update_mask: Some(FieldMask { paths: vec!["company".into()] }),
                    },
                ))
                .await,
            ),
        ),
        (
            "ArchiveClient",
            code(
                s.archive_client(bearer(
                    token,
                    pb::ArchiveClientRequest { client_id: client.id.clone(), etag: String::new() },
                ))
                .await,
            ),
        ),
        (
            "CreateOrder",
            code(
                s.create_order(bearer(
                    token,
                    pb::CreateOrderRequest {
                        client_id: client.id.clone(),
                        currency_code: "EUR".into(),
                        lines: vec![line.clone()],
                        request_id: String::new(),
                    },
                ))
                .await,
            ),
        ),
        ("GetOrder", code(s.get_order(bearer(token, pb::GetOrderRequest { order_id: order.id.clone() })).await)),
        (
            "UpdateOrderLines",
            code(
                s.update_order_lines(bearer(
                    token,
                    pb::UpdateOrderLinesRequest { order_id: order.id.clone(), lines: vec![line], etag: String::new() },
                ))
                .await,
            ),
        ),
        (
            "ConfirmOrder",
            code(
                s.confirm_order(bearer(
                    token,
                    pb::ConfirmOrderRequest { order_id: order.id.clone(), etag: String::new() },
                ))
                .await,
            ),
        ),
        (
            "FulfillOrder",
            code(
                s.fulfill_order(bearer(
                    token,
                    pb::FulfillOrderRequest { order_id: order.id.clone(), etag: String::new() },
                ))
                .await,
            ),
        ),
        (
            "CancelOrder",
            code(
                s.cancel_order(bearer(
                    token,
                    pb::CancelOrderRequest { order_id: order.id.clone(), reason: "x".into(), etag: String::new() },
                ))
                .await,
            ),
        ),
        (
            "GetPipelineSummary",
            code(
                s.get_pipeline_summary(bearer(
                    token,
                    pb::GetPipelineSummaryRequest { brand_id: brand.into(), ..Default::default() },
                ))
                .await,
            ),
        ),
        (
            "WatchPipeline",
            code(s.watch_pipeline(bearer(token, pb::WatchPipelineRequest { brand_id: brand.into() })).await),
        ),
    ]
}

#[tokio::test]
async fn another_organization_reaches_nothing_on_any_rpc() {
    let world = spawn().await;
    let victim = world.agency("Victim Agency").await;
    let attacker = world.agency("Attacker Agency").await;
    let (lead, client, order) = records(&world, &victim).await;
    let mut s = world.sales.clone();

    // The attacker's people hold rights in their own organization, and none in the victim's: what
    // they may not know exists is NOT_FOUND, whatever their role (one rule, one code).
    for token in [&attacker.owner, &attacker.manager.1, &attacker.agent.1, &attacker.viewer.1] {
        for (rpc, result) in every_rpc(&mut s, token, &victim.alpha, &lead, &client, &order).await {
            assert_eq!(result, Err(Code::NotFound), "{rpc} across organizations");
        }
    }
    // Lists show nothing of the victim.
    let leads =
        s.list_leads(bearer(&attacker.owner, pb::ListLeadsRequest::default())).await.unwrap().into_inner().leads;
    assert!(leads.iter().all(|l| l.id != lead.id));
    let clients =
        s.list_clients(bearer(&attacker.owner, pb::ListClientsRequest::default())).await.unwrap().into_inner().clients;
    assert!(clients.is_empty());
    let orders =
        s.list_orders(bearer(&attacker.owner, pb::ListOrdersRequest::default())).await.unwrap().into_inner().orders;
    assert!(orders.is_empty());
    // Naming the victim's brand in a list is refused outright.
    expect_code(
        s.list_leads(bearer(
            &attacker.owner,
            pb::ListLeadsRequest { brand_id: victim.alpha.clone(), ..Default::default() },
        ))
        .await,
        Code::NotFound,
    );

    // Nothing of the victim changed.
    let now = s
        .get_lead(bearer(&victim.owner, pb::GetLeadRequest { lead_id: lead.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(now.etag, lead.etag);
    let now = s
        .get_order(bearer(&victim.owner, pb::GetOrderRequest { order_id: order.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(now.etag, order.etag);
}

#[tokio::test]
async fn another_brand_and_a_viewer_are_refused() {
    let world = spawn().await;
    let agency = world.agency("Brand Agency").await;
    let (lead, client, order) = records(&world, &agency).await;
    let mut s = world.sales.clone();

    // An agent of brand Beta gets nothing of brand Alpha, on any RPC: a brand one holds no role on
    // is one the caller may not know exists (NOT_FOUND, as for another organization).
    for (rpc, result) in every_rpc(&mut s, &agency.beta_agent.1, &agency.alpha, &lead, &client, &order).await {
        assert_eq!(result, Err(Code::NotFound), "{rpc} across brands");
    }
    let leads =
        s.list_leads(bearer(&agency.beta_agent.1, pb::ListLeadsRequest::default())).await.unwrap().into_inner().leads;
    assert!(leads.is_empty(), "a Beta agent lists no Alpha lead");

    // A viewer of Alpha reads everything and writes nothing.
    for (rpc, result) in every_rpc(&mut s, &agency.viewer.1, &agency.alpha, &lead, &client, &order).await {
        let read = matches!(
            rpc,
            "GetLead" | "GetLeadHistory" | "GetClient" | "GetOrder" | "GetPipelineSummary" | "WatchPipeline"
        );
        if read {
            assert_eq!(result, Ok(()), "viewer {rpc}");
        } else {
            assert_eq!(result, Err(Code::PermissionDenied), "viewer {rpc}");
        }
    }
}

#[tokio::test]
async fn agents_change_only_their_own_leads_and_cannot_assign() {
    let world = spawn().await;
    let agency = world.agency("Own Agency").await;
    let mut s = world.sales.clone();
    let lead = create_lead(&world, &agency.agent.1, &agency.alpha, "Mine Only").await;
    let other = &agency.agent2.1;
    expect_code(
        s.add_lead_note(bearer(other, pb::AddLeadNoteRequest { lead_id: lead.id.clone(), text: "hijack".into() }))
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        s.assign_lead(bearer(
            other,
            pb::AssignLeadRequest {
                lead_id: lead.id.clone(),
                assignee_id: agency.agent2.0.clone(),
                etag: String::new(),
            },
        ))
        .await,
        Code::PermissionDenied,
    );
    s.get_lead(bearer(other, pb::GetLeadRequest { lead_id: lead.id.clone() }))
        .await
        .expect("agents read every lead of their brand");
    // Assignment only to people who work the brand.
    let refused = s
        .assign_lead(bearer(
            &agency.manager.1,
            pb::AssignLeadRequest {
                lead_id: lead.id.clone(),
                assignee_id: agency.viewer.0.clone(),
                etag: String::new(),
            },
        ))
        .await;
    expect_code(refused, Code::FailedPrecondition);
    let refused = s
        .assign_lead(bearer(
            &agency.manager.1,
            pb::AssignLeadRequest {
                lead_id: lead.id.clone(),
                assignee_id: agency.beta_agent.0.clone(),
                etag: String::new(),
            },
        ))
        .await;
    expect_code(refused, Code::FailedPrecondition);
}

#[tokio::test]
async fn portal_clients_see_only_their_own_orders() {
    let world = spawn().await;
    let agency = world.agency("Portal Agency").await;
    let (_, client, order) = records(&world, &agency).await;
    let (_, other_client, other_order) = records(&world, &agency).await;
    let portal = world.portal(&agency, &agency.alpha, &client.id, "buyer@customer.example").await;
    let mut s = world.sales.clone();

    let mine = s
        .get_order(bearer(&portal, pb::GetOrderRequest { order_id: order.id.clone() }))
        .await
        .expect("own order")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(mine.total, order.total);
    expect_code(
        s.get_order(bearer(&portal, pb::GetOrderRequest { order_id: other_order.id.clone() })).await,
        Code::NotFound,
    );
    let listed = eventually("the portal list", || {
        let mut s = s.clone();
        let portal = portal.clone();
        let other = other_client.id.clone();
        async move {
            let orders = s
                .list_orders(bearer(&portal, pb::ListOrdersRequest { client_id: other, ..Default::default() }))
                .await
                .ok()?
                .into_inner()
                .orders;
            (!orders.is_empty()).then_some(orders)
        }
    })
    .await;
    assert_eq!(
        listed.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        [order.id.as_str()],
        "asking for another client's orders still lists only one's own"
    );
    expect_code(
        s.list_leads(bearer(&portal, pb::ListLeadsRequest::default()))
            .await
            .map(|r| r.into_inner().leads.len())
            .and_then(|n| if n == 0 { Err(tonic::Status::permission_denied("none")) } else { Ok(n) }),
        Code::PermissionDenied,
    );
    expect_code(
        s.get_client(bearer(&portal, pb::GetClientRequest { client_id: other_client.id.clone() })).await,
        Code::NotFound,
    );
    expect_code(
        s.confirm_order(bearer(&portal, pb::ConfirmOrderRequest { order_id: order.id.clone(), etag: String::new() }))
            .await,
        Code::PermissionDenied,
    );
}
