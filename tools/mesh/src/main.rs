//! `sentra-mesh`: the whole Sentra mesh in one process (see the library), for the browser tests
//! and quick looks. Prints one JSON line with the addresses, e.g.
//! `{"url":"http://127.0.0.1:40123","database":"sentra_test_…",…}`, and runs until its standard
//! input closes (the test runner exiting) or it gets SIGINT/SIGTERM.
//!
//! The apps are served from `web/dashboard/dist` and `web/portal/dist` (build them first with
//! `npm --prefix web run build`); `SENTRA_MESH_WEB_DIR` points elsewhere.

use std::path::PathBuf;

use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
