//! `sentra-ctl seed`: the demo agency `make run` starts with: two brands, people in every role,
//! leads, a client with an issued, partly paid invoice and a portal login, and (given Comm) the
//! manager's mailbox connected with a brand alias. Idempotent: every
//! create carries a request id (or tolerates ALREADY_EXISTS) and every state change looks first,
//! so running it twice changes nothing.

use anyhow::Context;
use sentra_proto::sentra::comm::v1 as cpb;
use sentra_proto::sentra::comm::v1::comm_service_client::CommServiceClient;
use sentra_proto::sentra::finance::v1 as fpb;
use sentra_proto::sentra::finance::v1::finance_service_client::FinanceServiceClient;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_proto::sentra::r#type::v1::Money;
use tonic::transport::Channel;

/// The password of every demo login.
pub const PASSWORD: &str = "sentra-demo-2026";

fn bearer<T>(token: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// Ignores ALREADY_EXISTS (the thing is there from an earlier run).
fn tolerate<T>(result: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<Option<T>> {
    match result {
        Ok(response) => Ok(Some(response.into_inner())),
        Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(None),
        Err(status) => Err(status.into()),
    }
}

async fn login(auth: &mut AuthServiceClient<Channel>, email: &str, host: &str) -> anyhow::Result<String> {
    login_with(auth, email, PASSWORD, host).await
}

/// Signs in as `email` and returns the access token.
pub async fn login_with(
    auth: &mut AuthServiceClient<Channel>,
    email: &str,
    password: &str,
    host: &str,
) -> anyhow::Result<String> {
    let request = tpb::LoginRequest { email: email.into(), password: password.into(), host: host.into() };
    let tokens = auth.login(request).await.with_context(|| format!("login as {email}"))?.into_inner().tokens;
    Ok(tokens.context("login returned no tokens")?.access_token)
}

/// The demo lead moved to Qualified and converted (once): its client id.
async fn demo_client(s: &mut SalesServiceClient<Channel>, token: &str, lead: &spb::Lead) -> anyhow::Result<String> {
    let mut lead = lead.clone();
    let stage = |l: &spb::Lead| spb::LeadStage::try_from(l.stage).unwrap_or(spb::LeadStage::Unspecified);
    if stage(&lead) == spb::LeadStage::Won {
        return Ok(lead.client_id);
    }
    while matches!(stage(&lead), spb::LeadStage::New | spb::LeadStage::Contacted) {
        let next =
            if stage(&lead) == spb::LeadStage::New { spb::LeadStage::Contacted } else { spb::LeadStage::Qualified };
        let request =
            spb::ChangeLeadStageRequest { lead_id: lead.id.clone(), stage: next.into(), etag: lead.etag.clone() };
        lead = s.change_lead_stage(bearer(token, request)?).await?.into_inner().lead.context("no lead")?;
    }
    let request = spb::ConvertLeadRequest { lead_id: lead.id.clone(), etag: lead.etag.clone(), ..Default::default() };
    let converted = s.convert_lead(bearer(token, request)?).await.context("convert the demo lead")?.into_inner();
    Ok(converted.client.context("no client")?.id)
}

/// An order for the demo client, confirmed, and the invoice Finance drafts for it issued with a
/// first payment (each step once).
async fn demo_invoice(
    s: &mut SalesServiceClient<Channel>,
    finance_url: &str,
    auth: &mut AuthServiceClient<Channel>,
    agent: &str,
    client_id: &str,
) -> anyhow::Result<()> {
    let eur = |amount_minor| Some(Money { currency_code: "EUR".into(), amount_minor });
    let lines = vec![
        spb::OrderLine {
            description: "Brand identity workshop".into(),
            quantity: "2".into(),
            unit_price: eur(180_000),
            tax_rate_bps: 1900,
            ..Default::default()
        },
        spb::OrderLine {
            description: "Website design".into(),
            quantity: "1".into(),
            unit_price: eur(640_000),
            tax_rate_bps: 1900,
            discount_bps: 500,
            ..Default::default()
        },
    ];
    let request = spb::CreateOrderRequest {
        client_id: client_id.into(),
        currency_code: "EUR".into(),
        lines,
        request_id: "demo-seed-order".into(),
    };
    let order = s.create_order(bearer(agent, request)?).await.context("create the demo order")?.into_inner().order;
    let order = order.context("no order")?;
    if order.state == spb::OrderState::Draft as i32 {
        let request = spb::ConfirmOrderRequest { order_id: order.id.clone(), etag: order.etag.clone() };
        s.confirm_order(bearer(agent, request)?).await.context("confirm the demo order")?;
    }

    let finance = Channel::from_shared(finance_url.to_owned())?.connect().await.context("connect to finance")?;
    let mut f = FinanceServiceClient::new(finance);
    let fiona = login(auth, "fiona@urbanquill.example", "").await?;
    // Finance drafts the invoice from the order's event on the bus: wait for it.
    let mut invoice = None;
    for _ in 0..150 {
        let request = fpb::ListInvoicesRequest { order_id: order.id.clone(), ..Default::default() };
        invoice = f.list_invoices(bearer(&fiona, request)?).await?.into_inner().invoices.into_iter().next();
        if invoice.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let mut invoice = invoice.context("Finance drafted no invoice for the demo order within 30 s")?;
    if invoice.status == fpb::InvoiceStatus::Draft as i32 {
        let request =
            fpb::IssueInvoiceRequest { invoice_id: invoice.id.clone(), etag: invoice.etag, ..Default::default() };
        invoice = f.issue_invoice(bearer(&fiona, request)?).await?.into_inner().invoice.context("no invoice")?;
    }
    let request = fpb::RecordPaymentRequest {
        invoice_id: invoice.id,
        amount: eur(300_000),
        method: fpb::PaymentMethod::BankTransfer.into(),
        reference: "Deposit".into(),
        request_id: "demo-seed-payment".into(),
        ..Default::default()
    };
    f.record_payment(bearer(&fiona, request)?).await.context("record the demo payment")?;
    Ok(())
}

/// Seeds the demo data through Tenancy, Sales and Finance; prints the logins.
/// Connects Mark's demo mailbox through Comm's consent flow, as the dashboard would from
/// `origin` (the provider's consent page answers at once: `make run` runs the fake Google, which
/// already holds the demo mail), and adds the brand alias it sends as.
async fn demo_mailbox(comm_url: &str, origin: &str, manager: &str, brand_id: &str) -> anyhow::Result<String> {
    let comm = Channel::from_shared(comm_url.to_owned())?.connect().await.context("connect to comm")?;
    let mut c = CommServiceClient::new(comm);
    let mut start = bearer(manager, cpb::StartMailboxConnectionRequest {})?;
    start.metadata_mut().insert("origin", origin.parse()?);
    let started = c.start_mailbox_connection(start).await.context("start the mailbox connection")?.into_inner();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let consent = http.get(&started.authorization_url).send().await.context("the consent page")?;
    let location = consent
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .context("the consent page did not redirect back")?;
    let back = reqwest::Url::parse(location)?;
    let code = back.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).context("no code")?;
    let complete = cpb::CompleteMailboxConnectionRequest { code, state: started.state };
    let mailbox = c
        .complete_mailbox_connection(bearer(manager, complete)?)
        .await
        .context("complete the mailbox connection")?
        .into_inner()
        .mailbox
        .context("no mailbox")?;
    let alias = cpb::CreateEmailAliasRequest {
        brand_id: brand_id.into(),
        email_address: "hello@app.urbanquill.localhost".into(),
        display_name: "Urban Quill".into(),
        mailbox_id: mailbox.mailbox_id,
        is_default: true,
    };
    tolerate(c.create_email_alias(bearer(manager, alias)?).await).context("create the demo alias")?;
    Ok(mailbox.email_address)
}

/// Seeds the demo agency; with `comm` (Comm's URL and the dashboard's origin), also its mailbox.
pub async fn seed(
    tenancy_url: &str,
    sales_url: &str,
    finance_url: &str,
    comm: Option<(&str, &str)>,
) -> anyhow::Result<()> {
    let tenancy = Channel::from_shared(tenancy_url.to_owned())?.connect().await.context("connect to tenancy")?;
    let mut t = TenancyServiceClient::new(tenancy.clone());
    let mut auth = AuthServiceClient::new(tenancy);
    let owner_email = "owner@urbanquill.example";
    t.sign_up(tpb::SignUpRequest {
        organization_name: "Urban Quill Agency".into(),
        owner_email: owner_email.into(),
        owner_display_name: "Olivia Owner".into(),
        password: PASSWORD.into(),
        request_id: "demo-seed-organization".into(),
    })
    .await
    .context("sign up the demo organization")?;
    let owner = login(&mut auth, owner_email, "").await?;

    let mut brands = Vec::new();
    for (name, domain, prefix, color) in [
        ("Urban Quill", "app.urbanquill.localhost", "UQ", "#1f6feb"),
        ("The Pulp House", "app.thepulphouse.localhost", "PH", "#d9480f"),
    ] {
        let brand = tpb::Brand {
            name: name.into(),
            domain: domain.into(),
            display_name: name.into(),
            primary_color: color.into(),
            support_email: format!("help@{domain}"),
            invoice_prefix: prefix.into(),
            default_currency: "EUR".into(),
            time_zone: "Europe/Berlin".into(),
            email_aliases: vec![format!("hello@{domain}")],
            ..Default::default()
        };
        let request = tpb::CreateBrandRequest { brand: Some(brand), request_id: format!("demo-seed-brand-{prefix}") };
        let created = t.create_brand(bearer(&owner, request)?).await.context("create a demo brand")?.into_inner();
        brands.push((created.brand.context("no brand")?, domain));
    }

    let people = [
        ("mark@urbanquill.example", "Mark Manager", 0, tpb::BrandRole::Manager),
        ("alice@urbanquill.example", "Alice Agent", 0, tpb::BrandRole::Agent),
        ("fiona@urbanquill.example", "Fiona Finance", 0, tpb::BrandRole::Finance),
        ("victor@urbanquill.example", "Victor Viewer", 1, tpb::BrandRole::Viewer),
        ("paul@urbanquill.example", "Paul Pulp Agent", 1, tpb::BrandRole::Agent),
    ];
    let mut logins = vec![(owner_email.to_owned(), "owner of the organization".to_owned())];
    for (email, name, brand, role) in people {
        let request = tpb::CreateUserRequest {
            email: email.into(),
            display_name: name.into(),
            org_role: tpb::OrgRole::Member.into(),
            password: PASSWORD.into(),
            request_id: format!("demo-seed-user-{email}"),
        };
        let user = t
            .create_user(bearer(&owner, request)?)
            .await
            .context("create a demo user")?
            .into_inner()
            .user
            .context("no user")?;
        let (brand, _) = &brands[brand];
        let grant = tpb::GrantBrandAccessRequest { brand_id: brand.id.clone(), user_id: user.id, role: role.into() };
        t.grant_brand_access(bearer(&owner, grant)?).await.context("grant a demo role")?;
        logins.push((
            email.to_owned(),
            format!("{} on {}", role.as_str_name().trim_start_matches("BRAND_ROLE_").to_lowercase(), brand.name),
        ));
    }

    // An analyst: replays the event history (sentra-ctl events export), personal data redacted.
    let analyst = tpb::CreateUserRequest {
        email: "nina@urbanquill.example".into(),
        display_name: "Nina Analyst".into(),
        org_role: tpb::OrgRole::Analyst.into(),
        password: PASSWORD.into(),
        request_id: "demo-seed-user-nina@urbanquill.example".into(),
    };
    tolerate(t.create_user(bearer(&owner, analyst)?).await).context("create the demo analyst")?;
    logins.push(("nina@urbanquill.example".into(), "analyst (event export, no personal data)".into()));

    // A few leads on the first brand, so the dashboard is not empty.
    let sales = Channel::from_shared(sales_url.to_owned())?.connect().await.context("connect to sales")?;
    let mut s = SalesServiceClient::new(sales);
    let agent = login(&mut auth, "alice@urbanquill.example", "").await?;
    let mut leads = Vec::new();
    for (i, (contact, company, value)) in [
        ("Ada Lovelace", "Analytical Engines Ltd", 1_250_000),
        ("Grace Hopper", "Compilers Inc", 640_000),
        ("Alan Turing", "Bletchley Labs", 980_000),
    ]
    .into_iter()
    .enumerate()
    {
        let lead = spb::Lead {
            brand_id: brands[0].0.id.clone(),
            contact_name: contact.into(),
            email: format!("{}@example.com", contact.to_lowercase().replace(' ', ".")),
            company: company.into(),
            source: "website".into(),
            estimated_value: Some(Money { currency_code: "EUR".into(), amount_minor: value }),
            ..Default::default()
        };
        let created = s
            .create_lead(bearer(
                &agent,
                spb::CreateLeadRequest { lead: Some(lead), request_id: format!("demo-seed-lead-{i}") },
            )?)
            .await
            .context("create a demo lead")?
            .into_inner()
            .lead
            .context("no lead")?;
        leads.push(created);
    }

    // Ada's agency became a client: an order, its invoice issued and partly paid, and a portal
    // login, so the portal has something to show.
    let client_id = demo_client(&mut s, &agent, &leads[0]).await?;
    demo_invoice(&mut s, finance_url, &mut auth, &agent, &client_id).await?;
    let portal = tpb::CreatePortalUserRequest {
        brand_id: brands[0].0.id.clone(),
        client_id,
        email: "client@analytical-engines.example".into(),
        display_name: "Ada (client portal)".into(),
        password: PASSWORD.into(),
        request_id: "demo-seed-portal-user".into(),
    };
    tolerate(t.create_portal_user(bearer(&owner, portal)?).await).context("create the demo portal login")?;
    logins.push(("client@analytical-engines.example".into(), format!("portal client, sign in on {}", brands[0].1)));

    if let Some((comm_url, origin)) = comm {
        let manager = login(&mut auth, "mark@urbanquill.example", "").await?;
        let address = demo_mailbox(comm_url, origin, &manager, &brands[0].0.id).await?;
        logins[1]
            .1
            .push_str(&format!("; mailbox {address} connected (fake Gmail), alias hello@app.urbanquill.localhost"));
    }

    println!("Demo logins (password {PASSWORD}):");
    for (email, what) in logins {
        println!("  {email:<38} {what}");
    }
    println!("Brands: {} and {}", brands[0].1, brands[1].1);
    Ok(())
}
