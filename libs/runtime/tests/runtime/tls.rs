//! mTLS on the gRPC port with a throwaway CA made here (rcgen): a caller with a certificate from
//! the service's CA is served; one without a certificate, with one from another CA, or in
//! plaintext is refused; a certificate rotated on disk is picked up without a restart.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use sentra_runtime::config::{HealthConfig, ServerConfig, ShutdownConfig};
use sentra_runtime::server::ServiceHost;
use sentra_runtime::tls::{ClientTls, Connector, ServerTls};
use sentra_testkit::tls::{CertDir, CertFiles, TestCa, Usage};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Asks the health service over a new connection.
async fn check(connector: &Connector, url: &str) -> Result<ServingStatus, tonic::Status> {
    let channel = connector.channel(url).expect("url");
    let mut client = HealthClient::new(channel);
    let request = tonic::Request::new(HealthCheckRequest { service: String::new() });
    let answer = tokio::time::timeout(Duration::from_secs(5), client.check(request))
        .await
        .map_err(|_| tonic::Status::deadline_exceeded("no answer in 5 s"))??;
    Ok(ServingStatus::try_from(answer.into_inner().status).unwrap_or(ServingStatus::Unknown))
}

fn client(files: Option<&CertFiles>, ca: &Path) -> Connector {
    Connector::new(&ClientTls {
        ca: Some(ca.to_owned()),
        cert: files.map(|f| f.cert.clone()),
        key: files.map(|f| f.key.clone()),
        reload_interval: Some(0.1),
    })
    .expect("client TLS")
}

#[tokio::test]
async fn mtls_serves_callers_of_its_ca_only_and_picks_up_a_rotated_certificate() {
    let dir = CertDir::new();
    let (ours, theirs) = (TestCa::new("Sentra test CA"), TestCa::new("Another CA"));
    let server = dir.party("server", &ours, Usage::Server, &ours);
    let gateway = dir.party("gateway", &ours, Usage::Client, &ours);
    let stranger = dir.party("stranger", &theirs, Usage::Client, &ours);
    let theirs_ca = dir.write("another-ca.crt", &theirs.pem());

    let config = ServerConfig {
        host: Ipv4Addr::LOCALHOST.into(),
        tls: ServerTls {
            cert: Some(server.cert.clone()),
            key: Some(server.key.clone()),
            client_ca: Some(server.ca.clone()),
            reload_interval: 0.1,
            handshake_timeout: 2.0,
        },
        ..ServerConfig::default()
    };
    let host = ServiceHost::bind("tls-test", &config, &[]).await.expect("bind with TLS");
    let addr: SocketAddr = host.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let health = HealthConfig { interval: Duration::from_millis(100), timeout: Duration::from_millis(500) };
    let shutdown = ShutdownConfig { drain: Duration::ZERO, grace: Duration::from_secs(1) };
    let serving = tokio::spawn(host.serve(tonic::service::Routes::default(), vec![], health, shutdown, async {
        let _ = stopped.await;
    }));
    let url = format!("https://{addr}");

    // Our CA's client certificate: served.
    let trusted = client(Some(&gateway), &gateway.ca);
    assert_eq!(check(&trusted, &url).await.expect("a client of our CA is served"), ServingStatus::Serving);
    // No certificate, another CA's certificate, plaintext: refused.
    check(&client(None, &gateway.ca), &url).await.expect_err("no client certificate");
    check(&client(Some(&stranger), &gateway.ca), &url).await.expect_err("a certificate of another CA");
    check(&Connector::plaintext(), &format!("http://{addr}")).await.expect_err("plaintext");
    // And the client checks the server: one trusting another CA refuses to talk.
    check(&client(Some(&gateway), &theirs_ca), &url).await.expect_err("server of an unknown CA");

    // Rotation: the server's certificate is replaced on disk by one of another CA (as after a CA
    // change); new connections get it without a restart.
    let trusts_theirs = client(Some(&gateway), &theirs_ca);
    let rotated = theirs.leaf("sales", Usage::Server);
    std::fs::write(&server.cert, &rotated.0).expect("rotate cert");
    std::fs::write(&server.key, &rotated.1).expect("rotate key");
    let started = Instant::now();
    loop {
        if check(&trusts_theirs, &url).await.is_ok() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the rotated certificate was not picked up in 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check(&trusted, &url).await.expect_err("the old server certificate is gone");

    let _ = stop.send(());
    serving.await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn bad_certificate_files_fail_the_start_with_the_file_named() {
    let dir = CertDir::new();
    let empty = dir.write("empty.pem", "not a certificate");
    let tls = ServerTls { cert: Some(empty.clone()), key: Some(empty.clone()), ..ServerTls::default() };
    let mut config = ServerConfig { tls, ..ServerConfig::default() };
    let Err(error) = ServiceHost::bind("tls-test", &config, &[]).await else { panic!("bound with a bad certificate") };
    let chain = format!("{error}: {}", std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default());
    assert!(chain.contains("empty.pem") && chain.contains("certificate"), "{chain}");

    config.tls = ServerTls { cert: Some(empty), key: None, ..ServerTls::default() };
    assert!(ServiceHost::bind("tls-test", &config, &[]).await.is_err(), "a certificate without a key");
}
