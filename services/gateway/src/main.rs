//! The `sentra-gateway` binary: load config, build the application, serve until SIGTERM/SIGINT.

use sentra_gateway::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    let _telemetry = sentra_runtime::telemetry::init("gateway", &config.log);
    let app = Application::build(config).await?;
    app.run_until(sentra_runtime::shutdown::signal()).await?;
    Ok(())
}
