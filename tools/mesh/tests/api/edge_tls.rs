//! The deployed (prod overlay) Envoy configuration, run for real: browsers reach Envoy over TLS
//! (HTTP/2 by ALPN), Envoy reaches the gateway over mTLS (its client certificate from the mesh CA,
//! the gateway's certificate checked for the name `gateway`). An Envoy whose client certificate
//! comes from another CA is refused by the gateway.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sentra_gateway::AddressList;
use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_runtime::tls::{ClientTls, Connector, ServerTls};
use sentra_testkit::envoy::Envoy;
use sentra_testkit::grpc::wait_for_health;
use sentra_testkit::tls::{CertDir, TestCa, Usage};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// overlays/prod/envoy.yaml with the certificate directories and addresses of this test.
fn prod_envoy_config(browser: &CertDir, mtls: &CertDir, gateway: SocketAddr) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/k8s/overlays/prod/envoy.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    text.replace("/etc/envoy/tls/", &format!("{}/", browser.path().display()))
        .replace("/etc/envoy/mtls/", &format!("{}/", mtls.path().display()))
        .replace("port_value: 9901", "port_value: 0")
        .replace("port_value: 8080", "port_value: 0")
        .replace("port_value: 8443", "port_value: 0")
        .replace(
            "{ address: gateway, port_value: 3333 }",
            &format!("{{ address: 127.0.0.1, port_value: {} }}", gateway.port()),
        )
        .replace("{ address: assets, port_value: 3080 }", "{ address: 127.0.0.1, port_value: 1 }")
        .replace("{ address: otel-collector.observability, port_value: 4317 }", "{ address: 127.0.0.1, port_value: 1 }")
}

/// Envoy's client certificate (a leaf of `issuer`) and the mesh CA, in cert-manager's layout.
fn envoy_identity(issuer: &TestCa, mesh: &TestCa) -> CertDir {
    let dir = CertDir::new();
    let (cert, key) = issuer.leaf("envoy", Usage::Client);
    dir.write("tls.crt", &cert);
    dir.write("tls.key", &key);
    dir.write("ca.crt", &mesh.pem());
    dir
}

#[tokio::test]
async fn browsers_reach_envoy_over_tls_and_envoy_reaches_the_gateway_over_mtls() {
    let (public, mesh, other) = (TestCa::new("Public CA"), TestCa::new("Mesh CA"), TestCa::new("Other CA"));

    let db = sentra_testkit::TestDatabase::create().await;
    let mut tenancy = sentra_tenancy::Config::default();
    tenancy.server.host = Ipv4Addr::LOCALHOST.into();
    tenancy.server.port = 0;
    tenancy.database.url = db.secret_url();
    tenancy.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("edge-tls"));
    tenancy.shutdown.drain = Duration::ZERO;
    let app = sentra_tenancy::Application::build(tenancy).await.unwrap();
    let tenancy_addr = app.local_addr();
    let (tenancy_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    // The gateway serves mTLS with a certificate naming `gateway`, trusting the mesh CA.
    let gateway_certs = CertDir::new();
    let gateway_files = gateway_certs.party("gateway", &mesh, Usage::Server, &mesh);
    let mut config = sentra_gateway::Config::default();
    config.server.host = Ipv4Addr::LOCALHOST.into();
    config.server.port = 0;
    config.server.tls = ServerTls {
        cert: Some(gateway_files.cert),
        key: Some(gateway_files.key),
        client_ca: Some(gateway_files.ca),
        ..ServerTls::default()
    };
    config.shutdown.drain = Duration::ZERO;
    config.redis.url = sentra_testkit::redis_url().into();
    config.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("edge-tls-gw"));
    config.upstreams.tenancy = AddressList(vec![format!("http://{tenancy_addr}")]);
    let app = sentra_gateway::Application::build(config).await.unwrap();
    let gateway = app.local_addr();
    let (gateway_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    wait_for_health(tenancy_addr, "", ServingStatus::Serving, Duration::from_secs(20)).await;

    // Envoy's public certificate for browsers.
    let browser = CertDir::new();
    let (cert, key) = public.leaf("app.agency.example", Usage::Server);
    browser.write("tls.crt", &cert);
    browser.write("tls.key", &key);
    let browser_ca = browser.write("public-ca.crt", &public.pem());
    let as_browser = Connector::new(&ClientTls { ca: Some(browser_ca), ..ClientTls::default() }).unwrap();

    let mtls = envoy_identity(&mesh, &mesh);
    let envoy = Envoy::start_config(&prod_envoy_config(&browser, &mtls, gateway), Some("grpc_web_tls")).await;
    let mut auth = AuthServiceClient::new(as_browser.channel(&format!("https://{}", envoy.addr)).unwrap());
    let keys = auth.get_signing_keys(pb::GetSigningKeysRequest {}).await.expect("TLS to Envoy, mTLS to the gateway");
    assert!(!keys.into_inner().keys.is_empty(), "Tenancy's signing keys came back");
    envoy.stop().await;

    // An Envoy with a certificate the mesh CA did not issue gets nothing from the gateway.
    let impostor = envoy_identity(&other, &mesh);
    let envoy = Envoy::start_config(&prod_envoy_config(&browser, &impostor, gateway), Some("grpc_web_tls")).await;
    let mut auth = AuthServiceClient::new(as_browser.channel(&format!("https://{}", envoy.addr)).unwrap());
    let refused = auth.get_signing_keys(pb::GetSigningKeysRequest {}).await.expect_err("refused by the gateway");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    envoy.stop().await;

    let _ = gateway_stop.send(());
    let _ = tenancy_stop.send(());
}
