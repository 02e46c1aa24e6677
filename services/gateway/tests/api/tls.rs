//! mTLS between the gateway and a service: the gateway forwards calls to, and makes its own
//! lookups (signing keys, sessions) at, a Tenancy that requires client certificates of the
//! mesh CA; a gateway without one gets UNAVAILABLE, never plaintext.

use std::net::Ipv4Addr;
use std::time::Duration;

use sentra_gateway::config::AddressList;
use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_runtime::tls::{ClientTls, ServerTls};
use sentra_testkit::grpc::{bearer, channel, wait_for_health};
use sentra_testkit::tls::{CertDir, TestCa, Usage};
use sentra_testkit::{TestDatabase, tenancy};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::{gateway_config, spawn_gateway};

#[tokio::test]
async fn the_gateway_calls_a_tenancy_that_requires_mtls_with_its_client_certificate() {
    let certs = CertDir::new();
    let mesh = TestCa::new("Sentra mesh CA");
    let server = certs.party("tenancy", &mesh, Usage::Server, &mesh);
    let client = certs.party("gateway", &mesh, Usage::Client, &mesh);

    let db = TestDatabase::create().await;
    let mut config = sentra_tenancy::Config::default();
    config.server.host = Ipv4Addr::LOCALHOST.into();
    config.server.port = 0;
    config.server.tls = ServerTls {
        cert: Some(server.cert),
        key: Some(server.key),
        client_ca: Some(server.ca),
        ..ServerTls::default()
    };
    config.shutdown.drain = Duration::ZERO;
    config.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("tenancy-tls"));
    config.database.url = db.secret_url();
    config.database.max_connections = 4;
    let app = sentra_tenancy::Application::build(config).await.expect("tenancy builds with TLS");
    let tenancy_addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let upstream = AddressList(vec![format!("https://{tenancy_addr}")]);
    let mut with_cert = gateway_config(&[]);
    with_cert.upstreams.tenancy = upstream.clone();
    with_cert.client_tls = ClientTls {
        ca: Some(client.ca.clone()),
        cert: Some(client.cert.clone()),
        key: Some(client.key.clone()),
        reload_interval: None,
    };
    let gateway = spawn_gateway(with_cert).await;
    wait_for_health(gateway.addr, "", ServingStatus::Serving, Duration::from_secs(20)).await;

    // Forwarded calls (sign-up, login) and the gateway's own lookups (the keys that verify the
    // token of GetOrganization) all go over mTLS.
    let through_gateway = TenancyServiceClient::new(channel(gateway.addr));
    let signed_up = tenancy::sign_up(&through_gateway, "Mutual Agency").await;
    let auth = sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient::new(channel(gateway.addr));
    let token = tenancy::login(&auth, &tenancy::owner_email("Mutual Agency"), "").await;
    let organization_id = signed_up.organization.expect("organization").id;
    let request = pb::GetOrganizationRequest { organization_id: organization_id.clone() };
    let got = through_gateway.clone().get_organization(bearer(&token, request)).await.expect("GetOrganization");
    assert_eq!(got.into_inner().organization.expect("organization").id, organization_id);

    // Without a client certificate Tenancy refuses the handshake: UNAVAILABLE, nothing forwarded.
    let mut without_cert = gateway_config(&[]);
    without_cert.upstreams.tenancy = upstream;
    without_cert.client_tls = ClientTls { ca: Some(client.ca), ..ClientTls::default() };
    let refused = spawn_gateway(without_cert).await;
    let answer = TenancyServiceClient::new(channel(refused.addr))
        .get_organization(bearer(&token, pb::GetOrganizationRequest { organization_id }))
        .await;
    let status = answer.expect_err("no client certificate, no answer");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let _ = stop.send(());
    let _ = serving.await;
}
