//! The `sentra-comm` binary: serve until SIGTERM/SIGINT, or with `migrate` apply the schema
//! migrations and exit, or with `replay-dead-letters` move dead-lettered contact events back.

use sentra_comm::{Application, Config};
use sentra_runtime::cli::Command;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = sentra_runtime::cli::command()?;
    let config = Config::load()?;
    let _telemetry = sentra_runtime::telemetry::init("comm", &config.log);
    match command {
        Command::Migrate => sentra_comm::migrate(&config).await?,
        Command::RebuildProjection(_) => anyhow::bail!("sentra-comm has no projections"),
        Command::ReplayDeadLetters(max) => {
            let moved = sentra_comm::replay_dead_letters(&config, max).await?;
            println!("{moved} dead-lettered messages moved back to the contact queue");
        }
        Command::Serve => {
            let app = Application::build(config).await?;
            app.run_until(sentra_runtime::shutdown::signal()).await?;
        }
    }
    Ok(())
}
