//! A Tenancy and a Sales service in-process on one fresh database, and an agency with people.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sentra_proto::sentra::sales::v1 as pb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_proto::sentra::r#type::v1::Money;
use sentra_testkit::TestDatabase;
use sentra_testkit::tenancy;
use tonic::transport::Channel;

type Server = tokio::task::JoinHandle<Result<(), sentra_runtime::server::ServeError>>;

pub use sentra_testkit::tenancy::PASSWORD;

/// Both services, running.
pub struct World {
    pub sales_addr: SocketAddr,
    pub sales: SalesServiceClient<Channel>,
    pub tenancy: TenancyServiceClient<Channel>,
    pub auth: AuthServiceClient<Channel>,
    _db: TestDatabase,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    servers: Vec<Server>,
}

fn stoppable<F>(
    run: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
) -> (tokio::sync::oneshot::Sender<()>, Server)
where
    F: Future<Output = Result<(), sentra_runtime::server::ServeError>> + Send + 'static,
{
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(Box::pin(async {
        let _ = stopped.await;
    })));
    (stop, server)
}

pub async fn spawn() -> World {
    let db = TestDatabase::create().await;

    let mut tenancy = sentra_tenancy::Config::default();
    tenancy.server.host = Ipv4Addr::LOCALHOST.into();
    tenancy.server.port = 0;
    tenancy.database.url = db.secret_url();
    tenancy.database.max_connections = 4;
    tenancy.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("sales-tenancy"));
    tenancy.shutdown.drain = Duration::ZERO;
    let tenancy_app = sentra_tenancy::Application::build(tenancy).await.expect("tenancy builds");
    let tenancy_addr = tenancy_app.local_addr();
    let (tenancy_stop, tenancy_server) = stoppable(|s| tenancy_app.run_until(s));

    let mut sales = sentra_sales::Config::default();
    sales.server.host = Ipv4Addr::LOCALHOST.into();
    sales.server.port = 0;
    sales.database.url = db.secret_url();
    sales.database.max_connections = 8;
    sales.amqp.prefix = sentra_testkit::unique_prefix("sales");
    sales.health.interval = Duration::from_millis(200);
    sales.shutdown.drain = Duration::ZERO;
    // Quiet watch streams send keep-alives often, so a test sees them (see watch.rs).
    sales.watch_keepalive_secs = 0.3;
    sales.tenancy_url = format!("http://{tenancy_addr}");
    let sales_app = sentra_sales::Application::build(sales).await.expect("sales builds");
    let sales_addr = sales_app.local_addr();
    let (sales_stop, sales_server) = stoppable(|s| sales_app.run_until(s));

    let tenancy_channel = sentra_testkit::grpc::channel(tenancy_addr);
    World {
        sales_addr,
        sales: SalesServiceClient::new(sentra_testkit::grpc::channel(sales_addr)),
        tenancy: TenancyServiceClient::new(tenancy_channel.clone()),
        auth: AuthServiceClient::new(tenancy_channel),
        _db: db,
        stops: vec![sales_stop, tenancy_stop],
        servers: vec![sales_server, tenancy_server],
    }
}

impl World {
    pub async fn shutdown(mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for server in self.servers.drain(..) {
            server.await.expect("join").expect("clean stop");
        }
    }

    /// The test database's URL.
    pub fn db_url(&self) -> &str {
        self._db.url()
    }

    pub async fn login(&self, email: &str, host: &str) -> String {
        tenancy::login(&self.auth, email, host).await
    }

    /// An agency with two brands and people in several roles.
    pub async fn agency(&self, name: &str) -> Agency {
        let slug = name.to_lowercase().replace(' ', "-");
        let owner_email = tenancy::owner_email(name);
        tenancy::sign_up(&self.tenancy, name).await.organization.expect("org");
        let owner = self.login(&owner_email, "").await;
        let brand = |n: &str| tpb::Brand {
            name: n.into(),
            domain: format!("{}.{slug}.example", n.to_lowercase()),
            invoice_prefix: "AB".into(),
            default_currency: "EUR".into(),
            ..Default::default()
        };
        let t = self.tenancy.clone();
        let mut brand_ids = Vec::new();
        for n in ["Alpha", "Beta"] {
            brand_ids.push(tenancy::create_brand(&self.tenancy, &owner, brand(n)).await.id);
        }
        let (alpha, beta) = (brand_ids[0].clone(), brand_ids[1].clone());
        let person = |role: tpb::BrandRole, who: &'static str, brand: String| {
            let email = format!("{who}@{slug}.example");
            let owner = owner.clone();
            let t = t.clone();
            async move {
                let user = tenancy::staff_member(&t, &owner, &email, &brand, role).await;
                (user.id, email)
            }
        };
        let manager = person(tpb::BrandRole::Manager, "manager", alpha.clone()).await;
        let agent = person(tpb::BrandRole::Agent, "agent", alpha.clone()).await;
        let agent2 = person(tpb::BrandRole::Agent, "agent2", alpha.clone()).await;
        let viewer = person(tpb::BrandRole::Viewer, "viewer", alpha.clone()).await;
        let beta_agent = person(tpb::BrandRole::Agent, "beta-agent", beta.clone()).await;
        Agency {
            alpha,
            beta,
            owner,
            manager: (manager.0, self.login(&manager.1, "").await),
            agent: (agent.0, self.login(&agent.1, "").await),
            agent2: (agent2.0, self.login(&agent2.1, "").await),
            viewer: (viewer.0, self.login(&viewer.1, "").await),
            beta_agent: (beta_agent.0, self.login(&beta_agent.1, "").await),
            slug,
        }
    }

    /// A portal login for `client_id` on `brand`.
    pub async fn portal(&self, agency: &Agency, brand_id: &str, client_id: &str, email: &str) -> String {
        self.tenancy
            .clone()
            .create_portal_user(bearer(
                &agency.owner,
                tpb::CreatePortalUserRequest {
                    brand_id: brand_id.into(),
                    client_id: client_id.into(),
                    email: email.into(),
                    display_name: "Client".into(),
                    password: PASSWORD.into(),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("portal user");
        let host = if brand_id == agency.alpha {
            format!("alpha.{}.example", agency.slug)
        } else {
            format!("beta.{}.example", agency.slug)
        };
        self.login(email, &host).await
    }
}

/// An organization with brands Alpha and Beta and its people: (user id, access token).
pub struct Agency {
    pub alpha: String,
    pub beta: String,
    pub owner: String,
    pub manager: (String, String),
    pub agent: (String, String),
    pub agent2: (String, String),
    pub viewer: (String, String),
    pub beta_agent: (String, String),
    pub slug: String,
}

pub fn eur(amount_minor: i64) -> Option<Money> {
    Some(Money { currency_code: "EUR".into(), amount_minor })
}

pub fn new_lead(brand: &str, name: &str) -> pb::Lead {
    pb::Lead {
        brand_id: brand.into(),
        contact_name: name.into(),
        email: format!("{}@prospect.example", name.to_lowercase().replace(' ', ".")),
        phone: "+49 30 1234".into(),
        company: format!("{name} GmbH"),
        source: "Website".into(),
        estimated_value: eur(1_250_000),
        notes: "Met at the fair".into(),
        ..Default::default()
    }
}

/// Creates a lead as `token`.
pub async fn create_lead(world: &World, token: &str, brand: &str, name: &str) -> pb::Lead {
    world
        .sales
        .clone()
        .create_lead(bearer(
            token,
            pb::CreateLeadRequest { lead: Some(new_lead(brand, name)), request_id: String::new() },
        ))
        .await
        .expect("create lead")
        .into_inner()
        .lead
        .expect("lead")
}

/// Moves a lead up the ladder to `to` as `token`; returns the lead.
pub async fn advance(world: &World, token: &str, lead: &pb::Lead, to: pb::LeadStage) -> pb::Lead {
    let mut current = lead.clone();
    for stage in
        [pb::LeadStage::Contacted, pb::LeadStage::Qualified, pb::LeadStage::Proposal, pb::LeadStage::Negotiation]
    {
        if current.stage >= to as i32 {
            break;
        }
        if current.stage >= stage as i32 {
            continue;
        }
        current = world
            .sales
            .clone()
            .change_lead_stage(bearer(
                token,
                pb::ChangeLeadStageRequest {
                    lead_id: current.id.clone(),
                    stage: stage.into(),
                    etag: current.etag.clone(),
                },
            ))
            .await
            .expect("stage")
            .into_inner()
            .lead
            .expect("lead");
    }
    current
}

pub use sentra_testkit::grpc::{bearer, eventually, expect_code};
