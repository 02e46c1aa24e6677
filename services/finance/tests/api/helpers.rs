//! Tenancy, Sales and Finance in-process on one fresh database and one broker prefix, and an
//! agency with people in every role.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sentra_proto::sentra::finance::v1 as pb;
use sentra_proto::sentra::finance::v1::finance_service_client::FinanceServiceClient;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_proto::sentra::r#type::v1::Money;
use sentra_testkit::tenancy;
use sentra_testkit::{TcpProxy, TestDatabase};
use tonic::transport::Channel;

type Server = tokio::task::JoinHandle<Result<(), sentra_runtime::server::ServeError>>;

pub use sentra_testkit::tenancy::PASSWORD;

/// The three services, running.
pub struct World {
    pub finance_addr: SocketAddr,
    pub tenancy_addr: SocketAddr,
    /// Admin listeners (`/metrics`).
    pub finance_admin: SocketAddr,
    pub sales_admin: SocketAddr,
    pub finance: FinanceServiceClient<Channel>,
    pub sales: SalesServiceClient<Channel>,
    pub tenancy: TenancyServiceClient<Channel>,
    pub auth: AuthServiceClient<Channel>,
    pub db: TestDatabase,
    pub amqp_prefix: String,
    /// Between Finance and the broker, when asked for.
    pub finance_broker_proxy: Option<TcpProxy>,
    /// Finance's configuration, for its operator commands.
    pub finance_config: sentra_finance::Config,
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
    spawn_with(false).await
}

/// With `proxied`, Finance reaches RabbitMQ through a cuttable proxy.
pub async fn spawn_with(proxied: bool) -> World {
    let db = TestDatabase::create().await;
    let amqp_prefix = sentra_testkit::unique_prefix("fin");

    let mut tenancy = sentra_tenancy::Config::default();
    tenancy.server.host = Ipv4Addr::LOCALHOST.into();
    tenancy.server.port = 0;
    tenancy.database.url = db.secret_url();
    tenancy.database.max_connections = 4;
    tenancy.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("fin-tenancy"));
    tenancy.shutdown.drain = Duration::ZERO;
    let tenancy_app = sentra_tenancy::Application::build(tenancy).await.expect("tenancy builds");
    let tenancy_addr = tenancy_app.local_addr();
    let (tenancy_stop, tenancy_server) = stoppable(|s| tenancy_app.run_until(s));

    let mut sales = sentra_sales::Config::default();
    sales.server.host = Ipv4Addr::LOCALHOST.into();
    sales.server.port = 0;
    sales.server.admin_port = Some(0);
    sales.database.url = db.secret_url();
    sales.database.max_connections = 6;
    sales.amqp.prefix = amqp_prefix.clone();
    sales.shutdown.drain = Duration::ZERO;
    sales.tenancy_url = format!("http://{tenancy_addr}");
    let sales_app = sentra_sales::Application::build(sales).await.expect("sales builds");
    let sales_addr = sales_app.local_addr();
    let sales_admin = sales_app.admin_addr().expect("admin port");
    let (sales_stop, sales_server) = stoppable(|s| sales_app.run_until(s));

    let broker = sentra_testkit::amqp_url();
    let proxy = if proxied {
        let authority =
            broker.split('@').nth(1).and_then(|r| r.split('/').next()).expect("broker authority").to_owned();
        Some((TcpProxy::start(&authority).await, authority))
    } else {
        None
    };
    let mut finance = sentra_finance::Config::default();
    finance.server.host = Ipv4Addr::LOCALHOST.into();
    finance.server.port = 0;
    finance.server.admin_port = Some(0);
    finance.database.url = db.secret_url();
    finance.database.max_connections = 12;
    finance.amqp.prefix = amqp_prefix.clone();
    finance.amqp.queue_expiry_secs = sentra_testkit::QUEUE_EXPIRY_SECS;
    if let Some((proxy, authority)) = &proxy {
        finance.amqp.url = broker.replace(authority, &proxy.addr().to_string()).into();
    }
    finance.shutdown.drain = Duration::ZERO;
    finance.tenancy_url = format!("http://{tenancy_addr}");
    // Fifty concurrent commands each ask Tenancy about the brand; on a loaded 2-core machine the
    // production deadline (2 s) turns a slow answer into UNAVAILABLE, which is not under test.
    finance.tenancy_timeout_secs = 10.0;
    finance.overdue_interval_secs = 0.2;
    finance.retry_delay_secs = 0.1;
    let finance_config = finance.clone();
    let finance_app = sentra_finance::Application::build(finance).await.expect("finance builds");
    let finance_addr = finance_app.local_addr();
    let finance_admin = finance_app.admin_addr().expect("admin port");
    let (finance_stop, finance_server) = stoppable(|s| finance_app.run_until(s));

    let tenancy_channel = sentra_testkit::grpc::channel(tenancy_addr);
    World {
        finance_addr,
        tenancy_addr,
        finance_admin,
        sales_admin,
        finance: FinanceServiceClient::new(sentra_testkit::grpc::channel(finance_addr)),
        sales: SalesServiceClient::new(sentra_testkit::grpc::channel(sales_addr)),
        tenancy: TenancyServiceClient::new(tenancy_channel.clone()),
        auth: AuthServiceClient::new(tenancy_channel),
        db,
        amqp_prefix,
        finance_broker_proxy: proxy.map(|(p, _)| p),
        finance_config,
        stops: vec![finance_stop, sales_stop, tenancy_stop],
        servers: vec![finance_server, sales_server, tenancy_server],
    }
}

/// An agency: brands Alpha and Beta, people with roles on Alpha, one agent on Beta.
pub struct Agency {
    pub alpha: String,
    pub owner: String,
    pub finance: String,
    pub agent: String,
    pub viewer: String,
    pub beta_finance: String,
    pub slug: String,
}

impl World {
    pub async fn shutdown(mut self) {
        self.stop_servers().await;
    }

    /// Stops the in-process Finance (the first server started), for tests that run their own
    /// Finance replicas on the same database and broker names.
    pub async fn stop_finance(&mut self) {
        let stop = self.stops.remove(0);
        let server = self.servers.remove(0);
        let _ = stop.send(());
        server.await.expect("join").expect("clean stop");
    }

    /// Stops the services, keeping the database.
    pub async fn stop_servers(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for server in self.servers.drain(..) {
            server.await.expect("join").expect("clean stop");
        }
    }

    pub async fn login(&self, email: &str, host: &str) -> String {
        tenancy::login(&self.auth, email, host).await
    }

    pub async fn agency(&self, name: &str) -> Agency {
        let slug = name.to_lowercase().replace(' ', "-");
        let owner_email = tenancy::owner_email(name);
        tenancy::sign_up(&self.tenancy, name).await;
        let owner = self.login(&owner_email, "").await;
        let t = self.tenancy.clone();
        let mut brands = Vec::new();
        for (n, prefix) in [("Alpha", "AL"), ("Beta", "BE")] {
            let brand = tpb::Brand {
                name: n.into(),
                domain: format!("{}.{slug}.example", n.to_lowercase()),
                invoice_prefix: prefix.into(),
                default_currency: "EUR".into(),
                ..Default::default()
            };
            brands.push(tenancy::create_brand(&self.tenancy, &owner, brand).await.id);
        }
        let mut tokens = Vec::new();
        for (who, role, brand) in [
            ("finance", tpb::BrandRole::Finance, &brands[0]),
            ("agent", tpb::BrandRole::Agent, &brands[0]),
            ("viewer", tpb::BrandRole::Viewer, &brands[0]),
            ("beta-finance", tpb::BrandRole::Finance, &brands[1]),
        ] {
            let email = format!("{who}@{slug}.example");
            tenancy::staff_member(&t, &owner, &email, brand, role).await;
            tokens.push(self.login(&email, "").await);
        }
        Agency {
            alpha: brands[0].clone(),
            owner,
            finance: tokens[0].clone(),
            agent: tokens[1].clone(),
            viewer: tokens[2].clone(),
            beta_finance: tokens[3].clone(),
            slug,
        }
    }

    /// A client of brand Alpha, converted from a lead by the owner.
    pub async fn client(&self, agency: &Agency, name: &str) -> String {
        sentra_testkit::sales::client(&self.sales, &agency.owner, &agency.alpha, name).await.id
    }

    /// A confirmed Sales order for `client`; returns the order.
    pub async fn confirmed_order(&self, agency: &Agency, client: &str, lines: Vec<spb::OrderLine>) -> spb::Order {
        let mut s = self.sales.clone();
        let order = s
            .create_order(bearer(
                &agency.owner,
                spb::CreateOrderRequest {
                    client_id: client.into(),
                    currency_code: "EUR".into(),
                    lines,
                    request_id: String::new(),
                },
            ))
            .await
            .expect("order")
            .into_inner()
            .order
            .expect("order");
        s.confirm_order(bearer(&agency.owner, spb::ConfirmOrderRequest { order_id: order.id, etag: String::new() }))
            .await
            .expect("confirm")
            .into_inner()
            .order
            .expect("order")
    }

    /// The invoice drafted for `order_id`, once Finance has it.
    pub async fn invoice_for(&self, token: &str, order_id: &str) -> pb::Invoice {
        let mut f = self.finance.clone();
        eventually("the invoice drafted from the order", || {
            let mut f = f.clone();
            let request = bearer(token, pb::ListInvoicesRequest { order_id: order_id.into(), ..Default::default() });
            async move { f.list_invoices(request).await.ok()?.into_inner().invoices.into_iter().next() }
        })
        .await;
        let listed = f
            .list_invoices(bearer(token, pb::ListInvoicesRequest { order_id: order_id.into(), ..Default::default() }))
            .await
            .unwrap();
        listed.into_inner().invoices.remove(0)
    }

    /// A manual draft invoice for `client` of brand Alpha, as `token`.
    pub async fn draft(&self, token: &str, agency: &Agency, client: &str, amount: i64, terms: i32) -> pb::Invoice {
        let line = pb::InvoiceLine {
            description: "Retainer".into(),
            quantity: "1".into(),
            unit_price: eur(amount),
            ..Default::default()
        };
        self.finance
            .clone()
            .create_invoice(bearer(
                token,
                pb::CreateInvoiceRequest {
                    brand_id: agency.alpha.clone(),
                    client_id: client.into(),
                    currency_code: "EUR".into(),
                    lines: vec![line],
                    payment_terms_days: terms,
                    request_id: String::new(),
                },
            ))
            .await
            .expect("draft")
            .into_inner()
            .invoice
            .expect("invoice")
    }
}

pub fn eur(amount_minor: i64) -> Option<Money> {
    Some(Money { currency_code: "EUR".into(), amount_minor })
}

pub fn date(d: chrono::NaiveDate) -> Option<sentra_proto::sentra::r#type::v1::Date> {
    use chrono::Datelike;
    Some(sentra_proto::sentra::r#type::v1::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 })
}

pub use sentra_testkit::grpc::{bearer, eventually, expect_code};

/// A spy queue `<prefix><name>` bound to `routing_key` on the world's event exchange (waiting
/// until a relay has declared it): the connection, a channel for the test's own publishes, and
/// the spy's consumer (no acks).
pub async fn spy(world: &World, name: &str, routing_key: &str) -> (lapin::Connection, lapin::Channel, lapin::Consumer) {
    use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let conn =
        lapin::Connection::connect(&sentra_testkit::amqp_url(), lapin::ConnectionProperties::default()).await.unwrap();
    let exchange = format!("{}sentra.events", world.amqp_prefix);
    let queue = format!("{}{name}", world.amqp_prefix);
    let declare = QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
    let mut bound = None;
    for _ in 0..100 {
        // A failed bind closes its channel: a fresh one per attempt.
        let channel = conn.create_channel().await.unwrap();
        channel.queue_declare(queue.as_str().into(), declare, FieldTable::default()).await.unwrap();
        let bind = QueueBindOptions::default();
        let key = routing_key.into();
        if channel
            .queue_bind(queue.as_str().into(), exchange.as_str().into(), key, bind, FieldTable::default())
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
