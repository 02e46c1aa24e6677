//! The `sentra-finance` binary: serve until SIGTERM/SIGINT, or with `migrate` apply the schema
//! migrations and exit.

use sentra_finance::{Application, Config};
use sentra_runtime::cli::Command;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = sentra_runtime::cli::command()?;
    let config = Config::load()?;
    let _telemetry = sentra_runtime::telemetry::init("finance", &config.log);
    match command {
        Command::Migrate => sentra_finance::migrate(&config).await?,
        Command::RebuildProjection(name) => {
            match sentra_finance::rebuild_projection(&config, &name, std::time::Duration::from_secs(30)).await? {
                Some(replayed) => println!("{name}: rebuilt from {replayed} events and swapped in"),
                None => anyhow::bail!(
                    "{name} is active in a running replica (its lock stayed taken for 30 s); stop the replicas or retry"
                ),
            }
        }
        Command::ReplayDeadLetters(max) => {
            let moved = sentra_finance::replay_dead_letters(&config, max).await?;
            println!("{moved} dead-lettered messages moved back to the order queue");
        }
        Command::Serve => {
            let app = Application::build(config).await?;
            app.run_until(sentra_runtime::shutdown::signal()).await?;
        }
    }
    Ok(())
}
