//! `spawn_app()` and the calls most tests start with.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_tenancy::{Application, Config};
use sentra_testkit::TestDatabase;
use tonic::transport::Channel;

/// A running Tenancy service on a free port, with clients.
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: TestDatabase,
    pub tenancy: TenancyServiceClient<Channel>,
    pub auth: AuthServiceClient<Channel>,
    pub redis_prefix: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), sentra_runtime::server::ServeError>>,
}

impl TestApp {
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.server).await.expect("join").expect("clean stop");
    }

    pub async fn sql_pool(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("SET search_path = tenancy").execute(conn).await?;
                    Ok(())
                })
            })
            .connect(self.db.url())
            .await
            .expect("test pool")
    }

    /// Reads a Redis key directly.
    pub async fn redis_get(&self, key: &str) -> Option<String> {
        use fred::prelude::*;
        let config = fred::types::config::Config::from_url(&sentra_testkit::redis_url()).expect("redis url");
        let client = fred::clients::Client::new(config, None, None, None);
        client.init().await.expect("redis");
        let value: Option<String> = client.get(key).await.expect("get");
        let _ = client.quit().await;
        value
    }

    /// Signs up a new organization and logs its owner in.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let email = format!("owner@{}.example", name.to_lowercase().replace(' ', "-"));
        let signed = self
            .tenancy
            .clone()
            .sign_up(pb::SignUpRequest {
                organization_name: name.into(),
                owner_email: email.clone(),
                owner_display_name: format!("{name} Owner"),
                password: PASSWORD.into(),
                request_id: String::new(),
            })
            .await
            .expect("sign up")
            .into_inner();
        let org = signed.organization.expect("organization");
        let owner = signed.owner.expect("owner");
        let tokens = self.login(&email, PASSWORD, "").await.expect("owner logs in");
        Tenant { org_id: org.id, owner_id: owner.id, token: tokens.access_token, refresh: tokens.refresh_token }
    }

    pub async fn login(&self, email: &str, password: &str, host: &str) -> Result<pb::TokenPair, tonic::Status> {
        let answer = self
            .auth
            .clone()
            .login(pb::LoginRequest { email: email.into(), password: password.into(), host: host.into() })
            .await?;
        Ok(answer.into_inner().tokens.expect("tokens"))
    }

    /// Creates a brand on `domain` as `token`.
    pub async fn brand(&self, token: &str, name: &str, domain: &str) -> pb::Brand {
        self.tenancy
            .clone()
            .create_brand(bearer(
                token,
                pb::CreateBrandRequest { brand: Some(brand(name, domain)), request_id: String::new() },
            ))
            .await
            .expect("create brand")
            .into_inner()
            .brand
            .expect("brand")
    }

    /// Creates a member user with `role` on `brand_id` and returns (user id, access token).
    pub async fn member_with_role(
        &self,
        owner: &Tenant,
        email: &str,
        brand_id: &str,
        role: pb::BrandRole,
    ) -> (String, String) {
        let user = self
            .tenancy
            .clone()
            .create_user(bearer(
                &owner.token,
                pb::CreateUserRequest {
                    email: email.into(),
                    display_name: "Member".into(),
                    org_role: pb::OrgRole::Member.into(),
                    password: PASSWORD.into(),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("create user")
            .into_inner()
            .user
            .expect("user");
        if role != pb::BrandRole::Unspecified {
            self.tenancy
                .clone()
                .grant_brand_access(bearer(
                    &owner.token,
                    pb::GrantBrandAccessRequest {
                        brand_id: brand_id.into(),
                        user_id: user.id.clone(),
                        role: role.into(),
                    },
                ))
                .await
                .expect("grant");
        }
        let tokens = self.login(email, PASSWORD, "").await.expect("member logs in");
        (user.id, tokens.access_token)
    }
}

/// An organization with its logged-in owner.
pub struct Tenant {
    pub org_id: String,
    pub owner_id: String,
    pub token: String,
    pub refresh: String,
}

pub const PASSWORD: &str = "correct horse 42";

/// A valid brand message.
pub fn brand(name: &str, domain: &str) -> pb::Brand {
    pb::Brand {
        name: name.into(),
        domain: domain.into(),
        display_name: format!("{name} Studio"),
        primary_color: "#112233".into(),
        support_email: format!("help@{domain}"),
        invoice_prefix: "UQ".into(),
        default_currency: "EUR".into(),
        time_zone: "Europe/Berlin".into(),
        email_aliases: vec![format!("mark@{domain}")],
        ..Default::default()
    }
}

/// Starts the service in-process on port 0 with its own database and Redis prefix.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with a chance to change the configuration.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDatabase::create().await;
    let redis_prefix = format!("{}:", sentra_testkit::unique_prefix("tenancy"));
    let mut config = Config::default();
    config.server.host = Ipv4Addr::LOCALHOST.into();
    config.server.port = 0;
    config.health.interval = Duration::from_millis(200);
    config.shutdown.drain = Duration::ZERO;
    config.redis.key_prefix = redis_prefix.clone();
    config.amqp.prefix = sentra_testkit::unique_prefix("tenancy");
    config.database.url = db.secret_url();
    config.database.max_connections = 8;
    adjust(&mut config);
    let app = Application::build(config).await.expect("service builds");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let channel = sentra_testkit::grpc::channel(addr);
    TestApp {
        addr,
        db,
        tenancy: TenancyServiceClient::new(channel.clone()),
        auth: AuthServiceClient::new(channel),
        redis_prefix,
        stop: Some(stop),
        server,
    }
}

pub use sentra_testkit::grpc::{bearer, expect_code};
