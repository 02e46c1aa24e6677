//! The whole mesh behind Envoy: a browser signs in and calls Sales and Finance through the edge.

use std::net::Ipv4Addr;
use std::time::Duration;

use sentra_gateway::AddressList;
use sentra_proto::sentra::finance::v1 as fpb;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_testkit::envoy::{Envoy, grpc_web_call};
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn a_browser_signs_in_and_calls_sales_and_finance_through_envoy() {
    let tenancy = spawn_tenancy().await;
    let tenancy_url = format!("http://{}", tenancy.addr);
    let prefix = sentra_testkit::unique_prefix("mesh");

    let mut sales = sentra_sales::Config::default();
    sales.server.host = Ipv4Addr::LOCALHOST.into();
    sales.server.port = 0;
    sales.database.url = tenancy.inner.secret_url();
    sales.database.max_connections = 4;
    sales.amqp.prefix = prefix.clone();
    sales.shutdown.drain = Duration::ZERO;
    sales.tenancy_url = tenancy_url.clone();
    let sales = sentra_sales::Application::build(sales).await.expect("sales builds");
    let sales_addr = sales.local_addr();
    tokio::spawn(sales.run_until(std::future::pending()));

    let mut finance = sentra_finance::Config::default();
    finance.server.host = Ipv4Addr::LOCALHOST.into();
    finance.server.port = 0;
    finance.database.url = tenancy.inner.secret_url();
    finance.database.max_connections = 4;
    finance.amqp.prefix = prefix;
    finance.amqp.queue_expiry_secs = sentra_testkit::QUEUE_EXPIRY_SECS;
    finance.shutdown.drain = Duration::ZERO;
    finance.tenancy_url = tenancy_url.clone();
    let finance = sentra_finance::Application::build(finance).await.expect("finance builds");
    let finance_addr = finance.local_addr();
    tokio::spawn(finance.run_until(std::future::pending()));

    let mut config = gateway_config(&[tenancy.addr]);
    config.upstreams.sales = AddressList(vec![format!("http://{sales_addr}")]);
    config.upstreams.finance = AddressList(vec![format!("http://{finance_addr}")]);
    let gateway = spawn_gateway(config).await;
    let envoy = Envoy::start(gateway.addr, ORIGINS).await;

    // An agency with a brand, set up directly at Tenancy.
    let channel = sentra_testkit::grpc::channel(tenancy.addr);
    let mut t = pb::tenancy_service_client::TenancyServiceClient::new(channel.clone());
    t.sign_up(pb::SignUpRequest {
        organization_name: "Mesh Agency".into(),
        owner_email: "owner@mesh.example".into(),
        owner_display_name: "Owner".into(),
        password: PASSWORD.into(),
        request_id: String::new(),
    })
    .await
    .expect("sign up");

    let call = |path: &'static str, token: Option<String>, body: Vec<u8>| {
        let addr = envoy.addr;
        async move {
            let bearer = token.map(|t| format!("Bearer {t}"));
            let mut headers = vec![("x-forwarded-host", "app.mesh.example")];
            if let Some(b) = &bearer {
                headers.push(("authorization", b.as_str()));
            }
            grpc_web_call(addr, path, &RawMessage(body), &headers).await.expect("gRPC-Web call")
        }
    };
    use prost::Message;

    // Sign in through Envoy (the brand's host is not needed for staff).
    let login = pb::LoginRequest { email: "owner@mesh.example".into(), password: PASSWORD.into(), host: String::new() };
    let answer = call("/sentra.tenancy.v1.AuthService/Login", None, login.encode_to_vec()).await;
    assert_status(&answer, Code::Ok);
    let token = answer.message::<pb::LoginResponse>().expect("login").tokens.expect("tokens").access_token;

    let brand = pb::Brand {
        name: "Mesh".into(),
        domain: "app.mesh.example".into(),
        invoice_prefix: "ME".into(),
        default_currency: "EUR".into(),
        ..Default::default()
    };
    let answer = call(
        "/sentra.tenancy.v1.TenancyService/CreateBrand",
        Some(token.clone()),
        pb::CreateBrandRequest { brand: Some(brand), request_id: String::new() }.encode_to_vec(),
    )
    .await;
    assert_status(&answer, Code::Ok);
    let brand_id = answer.message::<pb::CreateBrandResponse>().expect("brand").brand.expect("brand").id;

    // Sales through the edge.
    let lead = spb::Lead { brand_id: brand_id.clone(), contact_name: "Edge Lead".into(), ..Default::default() };
    let answer = call(
        "/sentra.sales.v1.SalesService/CreateLead",
        Some(token.clone()),
        spb::CreateLeadRequest { lead: Some(lead), request_id: String::new() }.encode_to_vec(),
    )
    .await;
    assert_status(&answer, Code::Ok);
    let created = answer.message::<spb::CreateLeadResponse>().expect("lead").lead.expect("lead");
    let answer = call(
        "/sentra.sales.v1.SalesService/GetLead",
        Some(token.clone()),
        spb::GetLeadRequest { lead_id: created.id.clone() }.encode_to_vec(),
    )
    .await;
    assert_status(&answer, Code::Ok);
    assert_eq!(answer.message::<spb::GetLeadResponse>().expect("lead").lead.expect("lead").contact_name, "Edge Lead");

    // Finance through the edge.
    let line = fpb::InvoiceLine {
        description: "Edge work".into(),
        quantity: "1".into(),
        unit_price: Some(sentra_proto::sentra::r#type::v1::Money { currency_code: "EUR".into(), amount_minor: 4_200 }),
        ..Default::default()
    };
    let invoice = fpb::CreateInvoiceRequest {
        brand_id: brand_id.clone(),
        client_id: uuid::Uuid::new_v4().to_string(),
        currency_code: "EUR".into(),
        lines: vec![line],
        ..Default::default()
    };
    let answer =
        call("/sentra.finance.v1.FinanceService/CreateInvoice", Some(token.clone()), invoice.encode_to_vec()).await;
    assert_status(&answer, Code::Ok);
    let drafted = answer.message::<fpb::CreateInvoiceResponse>().expect("invoice").invoice.expect("invoice");
    assert_eq!(drafted.total.expect("total").amount_minor, 4_200);
    let answer = call(
        "/sentra.finance.v1.FinanceService/GetInvoice",
        Some(token.clone()),
        fpb::GetInvoiceRequest { invoice_id: drafted.id }.encode_to_vec(),
    )
    .await;
    assert_status(&answer, Code::Ok);

    // Without a token both are refused at the edge.
    let answer =
        call("/sentra.sales.v1.SalesService/ListLeads", None, spb::ListLeadsRequest::default().encode_to_vec()).await;
    assert_status(&answer, Code::Unauthenticated);
    let answer = call(
        "/sentra.finance.v1.FinanceService/ListInvoices",
        None,
        fpb::ListInvoicesRequest::default().encode_to_vec(),
    )
    .await;
    assert_status(&answer, Code::Unauthenticated);
}
