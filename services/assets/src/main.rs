//! The `sentra-assets` binary: load config, bind, serve the web apps until SIGTERM/SIGINT.

use sentra_assets::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    let _telemetry = sentra_runtime::telemetry::init("assets", &config.log);
    let app = Application::build(config).await?;
    app.run_until(sentra_runtime::shutdown::signal()).await?;
    Ok(())
}
