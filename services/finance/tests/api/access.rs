//! Who may do what in Finance: organizations isolated, brands separate, roles limit, portal
//! clients see only their own invoices.

use sentra_proto::sentra::finance::v1 as pb;
use sentra_proto::sentra::finance::v1::finance_service_client::FinanceServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::{bearer, eur, expect_code, spawn};

fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<(), Code> {
    result.map(|_| ()).map_err(|status| status.code())
}

/// Every FinanceService RPC aimed at `invoice` (issued) of `brand`/`client`, as `token`.
async fn every_rpc(
    f: &mut FinanceServiceClient<Channel>,
    token: &str,
    brand: &str,
    client: &str,
    invoice: &str,
) -> Vec<(&'static str, Result<(), Code>)> {
    let line =
        pb::InvoiceLine { description: "X".into(), quantity: "1".into(), unit_price: eur(1), ..Default::default() };
    vec![
        (
            "CreateInvoice",
            code(
                f.create_invoice(bearer(
                    token,
                    pb::CreateInvoiceRequest {
                        brand_id: brand.into(),
                        client_id: client.into(),
                        currency_code: "EUR".into(),
                        lines: vec![line.clone()],
                        ..Default::default()
                    },
                ))
                .await,
            ),
        ),
        ("GetInvoice", code(f.get_invoice(bearer(token, pb::GetInvoiceRequest { invoice_id: invoice.into() })).await)),
        (
            "UpdateInvoiceLines",
            code(
                f.update_invoice_lines(bearer(
                    token,
                    pb::UpdateInvoiceLinesRequest {
                        invoice_id: invoice.into(),
                        lines: vec![line],
                        etag: String::new(),
                    },
                ))
                .await,
            ),
        ),
        (
            "IssueInvoice",
            code(
                f.issue_invoice(bearer(
                    token,
                    pb::IssueInvoiceRequest { invoice_id: invoice.into(), ..Default::default() },
                ))
                .await,
            ),
        ),
        (
            "VoidInvoice",
            code(
                f.void_invoice(bearer(
                    token,
                    pb::VoidInvoiceRequest { invoice_id: invoice.into(), reason: "x".into(), etag: String::new() },
                ))
                .await,
            ),
        ),
        (
            "RecordPayment",
            code(
                f.record_payment(bearer(
                    token,
                    pb::RecordPaymentRequest {
                        invoice_id: invoice.into(),
                        amount: eur(1),
                        method: pb::PaymentMethod::Cash.into(),
                        ..Default::default()
                    },
                ))
                .await,
            ),
        ),
        (
            "IssueCreditNote",
            code(
                f.issue_credit_note(bearer(
                    token,
                    pb::IssueCreditNoteRequest {
                        invoice_id: invoice.into(),
                        amount: eur(1),
                        reason: "x".into(),
                        request_id: String::new(),
                    },
                ))
                .await,
            ),
        ),
        (
            "GetClientBalance",
            code(
                f.get_client_balance(bearer(
                    token,
                    pb::GetClientBalanceRequest { client_id: client.into(), brand_id: brand.into() },
                ))
                .await,
            ),
        ),
        (
            "GetReceivablesSummary",
            code(
                f.get_receivables_summary(bearer(
                    token,
                    pb::GetReceivablesSummaryRequest { brand_id: brand.into(), as_of: None },
                ))
                .await,
            ),
        ),
    ]
}

async fn issued(world: &crate::helpers::World, agency: &crate::helpers::Agency, client: &str) -> pb::Invoice {
    let draft = world.draft(&agency.finance, agency, client, 50_000, 30).await;
    let issued = world
        .finance
        .clone()
        .issue_invoice(bearer(&agency.finance, pb::IssueInvoiceRequest { invoice_id: draft.id, ..Default::default() }))
        .await;
    issued.unwrap().into_inner().invoice.unwrap()
}

#[tokio::test]
async fn another_organization_reaches_nothing_on_any_rpc() {
    let world = spawn().await;
    let victim = world.agency("Victim Finance").await;
    let attacker = world.agency("Attacker Finance").await;
    let client = world.client(&victim, "Victim Client").await;
    let invoice = issued(&world, &victim, &client).await;
    let mut f = world.finance.clone();
    for (rpc, result) in every_rpc(&mut f, &attacker.owner, &victim.alpha, &client, &invoice.id).await {
        assert_eq!(result, Err(Code::NotFound), "{rpc} across organizations");
    }
    let listed = f
        .list_invoices(bearer(&attacker.owner, pb::ListInvoicesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .invoices;
    assert!(listed.is_empty());
    let now = f
        .get_invoice(bearer(&victim.finance, pb::GetInvoiceRequest { invoice_id: invoice.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    assert_eq!(now.etag, invoice.etag, "nothing changed");
}

#[tokio::test]
async fn other_brands_agents_and_viewers_are_limited() {
    let world = spawn().await;
    let agency = world.agency("Roles Finance").await;
    let client = world.client(&agency, "Roles Client").await;
    let invoice = issued(&world, &agency, &client).await;
    let mut f = world.finance.clone();

    // A brand one holds no role on is one the caller may not know exists: NOT_FOUND, the same
    // answer another organization gets.
    for (rpc, result) in every_rpc(&mut f, &agency.beta_finance, &agency.alpha, &client, &invoice.id).await {
        assert_eq!(result, Err(Code::NotFound), "{rpc} from another brand");
    }
    // Agents read their brand's invoices and balances; they write nothing and see no receivables.
    for token in [&agency.agent, &agency.viewer] {
        for (rpc, result) in every_rpc(&mut f, token, &agency.alpha, &client, &invoice.id).await {
            let allowed = match rpc {
                "GetInvoice" | "GetClientBalance" => true,
                "GetReceivablesSummary" => token == &agency.viewer,
                _ => false,
            };
            if allowed {
                assert_eq!(result, Ok(()), "{rpc}");
            } else {
                assert_eq!(result, Err(Code::PermissionDenied), "{rpc}");
            }
        }
    }
}

#[tokio::test]
async fn portal_clients_see_only_their_own_invoices() {
    let world = spawn().await;
    let agency = world.agency("Portal Finance").await;
    let client = world.client(&agency, "Portal Client").await;
    let other = world.client(&agency, "Other Client").await;
    let mine = issued(&world, &agency, &client).await;
    let theirs = issued(&world, &agency, &other).await;
    let unissued = world.draft(&agency.finance, &agency, &client, 70_000, 30).await;
    world
        .tenancy
        .clone()
        .create_portal_user(bearer(
            &agency.owner,
            sentra_proto::sentra::tenancy::v1::CreatePortalUserRequest {
                brand_id: agency.alpha.clone(),
                client_id: client.clone(),
                email: "buyer@portal.example".into(),
                display_name: "Buyer".into(),
                password: crate::helpers::PASSWORD.into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let portal = world.login("buyer@portal.example", &format!("alpha.{}.example", agency.slug)).await;
    let mut f = world.finance.clone();

    let got = f
        .get_invoice(bearer(&portal, pb::GetInvoiceRequest { invoice_id: mine.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    assert_eq!(got.total, mine.total);
    expect_code(
        f.get_invoice(bearer(&portal, pb::GetInvoiceRequest { invoice_id: theirs.id.clone() })).await,
        Code::NotFound,
    );
    // A draft of their own is still the agency's work: not shown, not listed, not even on request.
    expect_code(
        f.get_invoice(bearer(&portal, pb::GetInvoiceRequest { invoice_id: unissued.id.clone() })).await,
        Code::NotFound,
    );
    let drafts_only = pb::ListInvoicesRequest { statuses: vec![pb::InvoiceStatus::Draft.into()], ..Default::default() };
    let listed = f.list_invoices(bearer(&portal, drafts_only)).await.unwrap().into_inner();
    assert!(listed.invoices.is_empty(), "{listed:?}");
    crate::helpers::eventually("the portal's invoice list", || {
        let mut f = f.clone();
        let request = bearer(&portal, pb::ListInvoicesRequest { client_id: other.clone(), ..Default::default() });
        let mine = mine.id.clone();
        async move {
            let ids: Vec<String> =
                f.list_invoices(request).await.ok()?.into_inner().invoices.into_iter().map(|i| i.id).collect();
            (ids == [mine]).then_some(())
        }
    })
    .await;
    expect_code(
        f.get_client_balance(bearer(
            &portal,
            pb::GetClientBalanceRequest { client_id: other.clone(), brand_id: agency.alpha.clone() },
        ))
        .await,
        Code::NotFound,
    );
    f.get_client_balance(bearer(
        &portal,
        pb::GetClientBalanceRequest { client_id: client.clone(), brand_id: agency.alpha.clone() },
    ))
    .await
    .expect("own balance");
    expect_code(
        f.record_payment(bearer(
            &portal,
            pb::RecordPaymentRequest {
                invoice_id: mine.id.clone(),
                amount: eur(1),
                method: pb::PaymentMethod::Card.into(),
                ..Default::default()
            },
        ))
        .await,
        Code::PermissionDenied,
    );
}
