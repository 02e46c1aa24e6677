//! Tenancy, Sales and Comm in-process on one fresh database and broker prefix, Comm talking to
//! the fake Gmail of `sentra-testkit`, and an agency with people in every role.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sentra_comm::Config;
use sentra_crypto::KeyRingConfig;
use sentra_proto::sentra::comm::v1 as pb;
use sentra_proto::sentra::comm::v1::comm_service_client::CommServiceClient;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_testkit::TestDatabase;
use sentra_testkit::gmail::FakeGmail;
use sentra_testkit::grpc::{bearer, eventually};
use sentra_testkit::tenancy;
use tonic::transport::Channel;

type Server = tokio::task::JoinHandle<Result<(), sentra_runtime::server::ServeError>>;

/// The services, running, and the fake provider.
pub struct World {
    pub comm_addr: SocketAddr,
    pub comm: CommServiceClient<Channel>,
    pub sales: SalesServiceClient<Channel>,
    pub tenancy: TenancyServiceClient<Channel>,
    pub auth: AuthServiceClient<Channel>,
    pub gmail: FakeGmail,
    pub db: TestDatabase,
    /// Comm's configuration, to start it again (restart, key rotation).
    pub comm_config: Config,
    comm_server: Option<(tokio::sync::oneshot::Sender<()>, Server)>,
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

/// A Comm configuration for tests: fast polls, a fresh key, the fake's URLs.
pub fn comm_config(db: &TestDatabase, tenancy: SocketAddr, prefix: &str, gmail: &FakeGmail) -> Config {
    let mut config = Config::default();
    config.server.host = Ipv4Addr::LOCALHOST.into();
    config.server.port = 0;
    config.health.interval = Duration::from_millis(200);
    config.shutdown.drain = Duration::ZERO;
    config.database.url = db.secret_url();
    config.database.max_connections = 12;
    config.amqp.prefix = prefix.to_owned();
    config.amqp.queue_expiry_secs = sentra_testkit::QUEUE_EXPIRY_SECS;
    config.tenancy_url = format!("http://{tenancy}");
    config.retry_delay_secs = 0.1;
    config.keys = KeyRingConfig::single("k1", &rand_key());
    config.state_secret = "test-state-secret".to_string().into();
    config.google = config.google.at(&gmail.base_url(), gmail.client_id(), gmail.client_secret());
    config.google.redirect_uri = "http://app.test.example/app/mailboxes/callback".into();
    config.sync.poll_interval_secs = 0.2;
    config.sync.lease_secs = 2.0;
    config.sync.max_inline_wait_secs = 5.0;
    // Receivers listen on loopback; retries come quickly.
    config.webhooks.allow_addresses = vec!["127.0.0.1".into()];
    config.webhooks.retry_schedule_secs = vec![0.0, 0.2, 0.2, 0.2, 0.2];
    config.webhooks.jitter = 0.0;
    // Automated email goes to a local SMTP server (tests that send start one and set its port).
    config.automation.smtp.host = "127.0.0.1".into();
    config.automation.smtp.tls = sentra_comm::automation::SmtpTls::None;
    config.automation.smtp.timeout_secs = 5.0;
    config.automation.retry_schedule_secs = vec![0.2, 0.2];
    config.automation.schedule_interval_secs = 0.2;
    config.automation.unsubscribe_base_url = "http://links.test.example".into();
    config
}

fn rand_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    for (i, b) in uuid::Uuid::new_v4().as_bytes().iter().chain(uuid::Uuid::new_v4().as_bytes()).enumerate() {
        key[i] = *b;
    }
    key
}

pub async fn spawn() -> World {
    spawn_with(|_| {}).await
}

/// With `tweak` applied to Comm's configuration.
pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> World {
    let db = TestDatabase::create().await;
    let prefix = sentra_testkit::unique_prefix("comm");
    let gmail = FakeGmail::start().await;

    let mut tenancy = sentra_tenancy::Config::default();
    tenancy.server.host = Ipv4Addr::LOCALHOST.into();
    tenancy.server.port = 0;
    tenancy.database.url = db.secret_url();
    tenancy.database.max_connections = 4;
    tenancy.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("comm-tenancy"));
    tenancy.shutdown.drain = Duration::ZERO;
    // Tenancy's brand and user events reach Comm (automated emails render brand names).
    tenancy.amqp.prefix = prefix.clone();
    tenancy.amqp.queue_expiry_secs = sentra_testkit::QUEUE_EXPIRY_SECS;
    let tenancy_app = sentra_tenancy::Application::build(tenancy).await.expect("tenancy builds");
    let tenancy_addr = tenancy_app.local_addr();
    let (tenancy_stop, tenancy_server) = stoppable(|s| tenancy_app.run_until(s));

    let mut sales = sentra_sales::Config::default();
    sales.server.host = Ipv4Addr::LOCALHOST.into();
    sales.server.port = 0;
    sales.database.url = db.secret_url();
    sales.database.max_connections = 6;
    sales.amqp.prefix = prefix.clone();
    sales.shutdown.drain = Duration::ZERO;
    sales.tenancy_url = format!("http://{tenancy_addr}");
    let sales_app = sentra_sales::Application::build(sales).await.expect("sales builds");
    let sales_addr = sales_app.local_addr();
    let (sales_stop, sales_server) = stoppable(|s| sales_app.run_until(s));

    let mut comm_config = comm_config(&db, tenancy_addr, &prefix, &gmail);
    tweak(&mut comm_config);
    let tenancy_channel = sentra_testkit::grpc::channel(tenancy_addr);
    let mut world = World {
        comm_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        comm: CommServiceClient::new(sentra_testkit::grpc::channel(SocketAddr::from((Ipv4Addr::LOCALHOST, 1)))),
        sales: SalesServiceClient::new(sentra_testkit::grpc::channel(sales_addr)),
        tenancy: TenancyServiceClient::new(tenancy_channel.clone()),
        auth: AuthServiceClient::new(tenancy_channel),
        gmail,
        db,
        comm_config,
        comm_server: None,
        stops: vec![sales_stop, tenancy_stop],
        servers: vec![sales_server, tenancy_server],
    };
    world.start_comm().await;
    world
}

/// An agency: brands Alpha and Beta; a manager, an agent and a viewer on Alpha, an agent on Beta.
pub struct Agency {
    pub alpha: String,
    pub beta: String,
    pub owner: String,
    pub manager: String,
    pub agent: String,
    pub viewer: String,
    pub beta_agent: String,
    /// The agent's user id.
    pub agent_id: String,
    pub slug: String,
}

impl Agency {
    pub fn email(&self, who: &str) -> String {
        format!("{who}@{}.example", self.slug)
    }
}

impl World {
    /// Starts (again) Comm with `comm_config`.
    pub async fn start_comm(&mut self) {
        let app = sentra_comm::Application::build(self.comm_config.clone()).await.expect("comm builds");
        self.comm_addr = app.local_addr();
        self.comm = CommServiceClient::new(sentra_testkit::grpc::channel(self.comm_addr));
        self.comm_server = Some(stoppable(|s| app.run_until(s)));
        // Serving means its queues are declared: events published from here on reach it.
        sentra_testkit::grpc::wait_for_health(
            self.comm_addr,
            "sentra.comm.v1.CommService",
            tonic_health::pb::health_check_response::ServingStatus::Serving,
            Duration::from_secs(20),
        )
        .await;
    }

    /// Stops Comm cleanly.
    pub async fn stop_comm(&mut self) {
        if let Some((stop, server)) = self.comm_server.take() {
            let _ = stop.send(());
            server.await.expect("join").expect("clean stop");
        }
    }

    /// Kills Comm where it stands (the task is aborted: no drain, leases left held).
    pub async fn kill_comm(&mut self) {
        if let Some((_stop, server)) = self.comm_server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    pub async fn shutdown(mut self) {
        self.stop_comm().await;
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for server in self.servers.drain(..) {
            server.await.expect("join").expect("clean stop");
        }
    }

    pub async fn login(&self, email: &str) -> String {
        tenancy::login(&self.auth, email, "").await
    }

    pub async fn agency(&self, name: &str) -> Agency {
        let slug = name.to_lowercase().replace(' ', "-");
        tenancy::sign_up(&self.tenancy, name).await;
        let owner = self.login(&tenancy::owner_email(name)).await;
        let mut brands = Vec::new();
        for n in ["Alpha", "Beta"] {
            let brand = tpb::Brand {
                name: n.into(),
                domain: format!("{}.{slug}.example", n.to_lowercase()),
                invoice_prefix: n[..2].to_uppercase(),
                default_currency: "EUR".into(),
                ..Default::default()
            };
            brands.push(tenancy::create_brand(&self.tenancy, &owner, brand).await.id);
        }
        let mut tokens = Vec::new();
        let mut ids = Vec::new();
        for (who, role, brand) in [
            ("manager", tpb::BrandRole::Manager, &brands[0]),
            ("agent", tpb::BrandRole::Agent, &brands[0]),
            ("viewer", tpb::BrandRole::Viewer, &brands[0]),
            ("beta-agent", tpb::BrandRole::Agent, &brands[1]),
        ] {
            let email = format!("{who}@{slug}.example");
            ids.push(tenancy::staff_member(&self.tenancy, &owner, &email, brand, role).await.id);
            tokens.push(self.login(&email).await);
        }
        Agency {
            alpha: brands[0].clone(),
            beta: brands[1].clone(),
            owner,
            manager: tokens[0].clone(),
            agent: tokens[1].clone(),
            viewer: tokens[2].clone(),
            beta_agent: tokens[3].clone(),
            agent_id: ids[1].clone(),
            slug,
        }
    }

    /// Runs the consent for `token`'s user as `email` at the fake provider and completes it.
    pub async fn connect(&self, token: &str, email: &str) -> pb::Mailbox {
        let (code, state) = self.consent(token, email).await;
        let mut comm = self.comm.clone();
        comm.complete_mailbox_connection(bearer(token, pb::CompleteMailboxConnectionRequest { code, state }))
            .await
            .expect("complete connection")
            .into_inner()
            .mailbox
            .expect("mailbox")
    }

    /// Starts a connection and follows the consent page's redirect: the `code` and `state` the
    /// browser would bring back.
    pub async fn consent(&self, token: &str, email: &str) -> (String, String) {
        self.gmail.add_user(email);
        self.gmail.consent_as(email);
        let mut comm = self.comm.clone();
        let started = comm
            .start_mailbox_connection(bearer(token, pb::StartMailboxConnectionRequest {}))
            .await
            .expect("start connection")
            .into_inner();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let answer = http.get(&started.authorization_url).send().await.expect("consent page");
        assert_eq!(answer.status(), 302, "the consent page redirects back");
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&self.comm_config.google.redirect_uri), "{location}");
        let url = reqwest::Url::parse(&location).unwrap();
        let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap();
        assert_eq!(param("state"), started.state);
        (param("code"), param("state"))
    }

    pub async fn mailbox(&self, token: &str, mailbox_id: &str) -> pb::Mailbox {
        let mut comm = self.comm.clone();
        comm.get_mailbox(bearer(token, pb::GetMailboxRequest { mailbox_id: mailbox_id.into() }))
            .await
            .expect("get mailbox")
            .into_inner()
            .mailbox
            .expect("mailbox")
    }

    /// Waits until the mailbox is ACTIVE with nothing queued and `count` messages.
    pub async fn synced(&self, token: &str, mailbox_id: &str, count: i64) -> pb::Mailbox {
        let last = std::sync::Mutex::new(None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let m = self.mailbox(token, mailbox_id).await;
            if m.stage() == pb::SyncStage::Active && m.pending_count == 0 && m.message_count == count {
                return m;
            }
            *last.lock().unwrap() = Some(m);
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {count} messages in sync; last seen {:?}",
                last.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks for a sync pass now.
    pub async fn sync_now(&self, token: &str, mailbox_id: &str) {
        let mut comm = self.comm.clone();
        comm.sync_mailbox(bearer(token, pb::SyncMailboxRequest { mailbox_id: mailbox_id.into() }))
            .await
            .expect("sync mailbox");
    }

    /// A lead of `brand` whose contact address is `email`; waits until Comm has indexed it.
    pub async fn lead(&self, token: &str, brand: &str, name: &str, email: &str) -> String {
        let mut sales = self.sales.clone();
        let lead =
            spb::Lead { brand_id: brand.into(), contact_name: name.into(), email: email.into(), ..Default::default() };
        let lead = sales
            .create_lead(bearer(token, spb::CreateLeadRequest { lead: Some(lead), request_id: String::new() }))
            .await
            .expect("lead")
            .into_inner()
            .lead
            .expect("lead")
            .id;
        let pool = self.pool().await;
        eventually("the lead in Comm's address index", || {
            let (pool, lead) = (pool.clone(), lead.clone());
            async move {
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM comm.contacts WHERE record_id = $1::uuid")
                    .bind(&lead)
                    .fetch_one(&pool)
                    .await
                    .ok()?;
                (n == 1).then_some(())
            }
        })
        .await;
        lead
    }

    /// A pool on the test database (tests look at what is stored).
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(self.db.url()).await.expect("connect")
    }

    pub async fn threads_of_lead(&self, token: &str, lead: &str) -> Result<pb::ListThreadsResponse, tonic::Status> {
        let mut comm = self.comm.clone();
        comm.list_threads(bearer(token, pb::ListThreadsRequest { lead_id: lead.into(), ..Default::default() }))
            .await
            .map(tonic::Response::into_inner)
    }
}

/// A spy queue bound to `routing_key` on the world's event exchange (waiting until a relay has
/// declared it): the connection, its channel and the consumer (no acks).
pub async fn spy(world: &World, name: &str, routing_key: &str) -> (lapin::Connection, lapin::Channel, lapin::Consumer) {
    use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let conn =
        lapin::Connection::connect(&sentra_testkit::amqp_url(), lapin::ConnectionProperties::default()).await.unwrap();
    let prefix = &world.comm_config.amqp.prefix;
    let exchange = format!("{prefix}sentra.events");
    let queue = format!("{prefix}{name}");
    let declare = QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
    let mut bound = None;
    for _ in 0..100 {
        let channel = conn.create_channel().await.unwrap();
        channel.queue_declare(queue.as_str().into(), declare, FieldTable::default()).await.unwrap();
        if channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .is_ok()
        {
            bound = Some(channel);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let channel = bound.expect("a relay declared the exchange");
    let consume = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let consumer =
        channel.basic_consume(queue.as_str().into(), name.into(), consume, FieldTable::default()).await.unwrap();
    (conn, channel, consumer)
}

pub fn envelope(
    org: uuid::Uuid,
    invoice: &str,
    event_type: &str,
    payload: sentra_bus::Payload,
) -> sentra_bus::Envelope {
    sentra_bus::Envelope {
        event_id: uuid::Uuid::now_v7(),
        tenant_id: org,
        routing_key: format!("finance.invoice.{event_type}"),
        aggregate_type: "invoice".into(),
        aggregate_id: invoice.into(),
        sequence: 1,
        event_type: event_type.into(),
        event_version: "1".into(),
        recorded_at: chrono::Utc::now(),
        payload,
        metadata: serde_json::json!({}),
    }
}

pub fn date(days_from_today: i64) -> Option<sentra_proto::sentra::r#type::v1::Date> {
    let d = chrono::Utc::now().date_naive() + chrono::Duration::days(days_from_today);
    Some(sentra_proto::sentra::r#type::v1::Date {
        year: chrono::Datelike::year(&d),
        month: i32::try_from(chrono::Datelike::month(&d)).unwrap(),
        day: i32::try_from(chrono::Datelike::day(&d)).unwrap(),
    })
}

/// Publishes an invoice of `client` drafted and issued (due in `due_in` days), as Finance does;
/// returns its id.
pub async fn issued_invoice(
    world: &World,
    org: uuid::Uuid,
    brand: &str,
    client: &str,
    number: &str,
    due_in: i64,
) -> String {
    let invoice = uuid::Uuid::now_v7().to_string();
    let total = Some(sentra_proto::sentra::r#type::v1::Money { currency_code: "EUR".into(), amount_minor: 119_000 });
    let drafted = sentra_proto::sentra::finance::events::v1::InvoiceDrafted {
        invoice_id: invoice.clone(),
        brand_id: brand.into(),
        client_id: client.into(),
        amounts: Some(sentra_proto::sentra::finance::events::v1::InvoiceAmounts {
            currency_code: "EUR".into(),
            total,
            ..Default::default()
        }),
        terms_days: 14,
        ..Default::default()
    };
    publish(world, &envelope(org, &invoice, "drafted", sentra_bus::Payload::proto(&drafted))).await;
    let issued = sentra_proto::sentra::finance::events::v1::InvoiceIssued {
        invoice_id: invoice.clone(),
        number: number.into(),
        issue_date: date(due_in - 14),
        due_date: date(due_in),
        ..Default::default()
    };
    publish(world, &envelope(org, &invoice, "issued", sentra_bus::Payload::proto(&issued))).await;
    invoice
}

/// Publishes `envelope` on the world's event exchange, as a relay would (with confirms).
pub async fn publish(world: &World, envelope: &sentra_bus::Envelope) {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    let (_conn, channel, _spy) = spy(world, &format!("publisher-{}", uuid::Uuid::new_v4().simple()), "none").await;
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let exchange = format!("{}sentra.events", world.comm_config.amqp.prefix);
    channel
        .basic_publish(
            exchange.as_str().into(),
            envelope.routing_key.as_str().into(),
            BasicPublishOptions::default(),
            &envelope.body().unwrap(),
            envelope.properties(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

/// [`eventually`] with a longer deadline, for syncs of thousands of messages.
pub async fn eventually_long<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
