//! `sentra-mesh`: the whole Sentra mesh in one process (see the library), for the browser tests
//! and quick looks. Prints one JSON line with the addresses, e.g.
//! `{"url":"http://127.0.0.1:40123","database":"sentra_test_…",…}`, and runs until its standard
//! input closes (the test runner exiting) or it gets SIGINT/SIGTERM.
//!
//! The apps are served from `web/dashboard/dist` and `web/portal/dist` (build them first with
//! `npm --prefix web run build`); `SENTRA_MESH_WEB_DIR` points elsewhere.
//!
//! `sentra-mesh service <sales|finance>` runs that one service instead, configured by
//! its environment as its own binary is: the harness's replica tests start and SIGKILL those.
//!
//! `sentra-mesh fake-gmail PORT` serves only the fake Google (OAuth and Gmail, with its
//! `/_fake/` control API) on 127.0.0.1:PORT until SIGTERM/SIGINT: `make run`'s demo mailbox.

use std::path::PathBuf;

use tokio::io::AsyncReadExt;

/// One service, configured by its `SENTRA_<SVC>__*` variables, until SIGTERM/SIGINT.
async fn service(name: &str) -> anyhow::Result<()> {
    let stop = sentra_runtime::shutdown::signal();
    match name {
        "sales" => {
            let config = sentra_sales::Config::load()?;
            let _telemetry = sentra_runtime::telemetry::init("sales", &config.log);
            sentra_sales::Application::build(config).await?.run_until(stop).await?;
        }
        "finance" => {
            let config = sentra_finance::Config::load()?;
            let _telemetry = sentra_runtime::telemetry::init("finance", &config.log);
            sentra_finance::Application::build(config).await?.run_until(stop).await?;
        }
        other => anyhow::bail!("unknown service {other:?}; usage: sentra-mesh [service sales|finance]"),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, name] = args.as_slice()
        && command == "service"
    {
        return service(name).await;
    }
    if let [command, port] = args.as_slice()
        && command == "fake-gmail"
    {
        let port: u16 = port.parse().map_err(|_| anyhow::anyhow!("usage: sentra-mesh fake-gmail PORT"))?;
        let gmail = sentra_testkit::gmail::FakeGmail::start_on(port).await?;
        println!("{}", serde_json::json!({ "gmail": gmail.base_url() }));
        sentra_runtime::shutdown::signal().await;
        return Ok(());
    }
    let _telemetry = sentra_runtime::telemetry::init(
        "mesh",
        &sentra_runtime::config::LogConfig {
            json: false,
            filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        },
    );
    let web_dir = std::env::var("SENTRA_MESH_WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web"));
    let mesh = sentra_mesh::Mesh::start(&web_dir).await?;
    let ready = serde_json::json!({
        "url": mesh.url(),
        "envoy_admin": mesh.envoy.admin.to_string(),
        "gateway": mesh.gateway.to_string(),
        "tenancy": mesh.tenancy.to_string(),
        "sales": mesh.sales.to_string(),
        "finance": mesh.finance.to_string(),
        "comm": mesh.comm.to_string(),
        "gmail": mesh.gmail.base_url(),
        "database": mesh.database.name(),
    });
    println!("{ready}");
    tokio::select! {
        () = stdin_closed() => {}
        () = sentra_runtime::shutdown::signal() => {}
    }
    mesh.stop().await;
    Ok(())
}

/// Resolves when standard input reaches its end: the process that started us is gone.
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
}
