//! `sentra-ctl`: small operator commands used by `make run` and by people at a terminal.
//!
//! - `sentra-ctl wait-healthy name=host:port ...` waits until every server reports SERVING.
//! - `sentra-ctl health host:port [service]` prints one server's status.
//! - `sentra-ctl seed TENANCY_URL SALES_URL FINANCE_URL [COMM_URL DASHBOARD_ORIGIN]` creates the
//!   demo agency (idempotent); with Comm, it connects the manager's mailbox as the dashboard would.
//! - `sentra-ctl projections status DATABASE_URL [SCHEMA...]` prints each projection's and
//!   relay's position, lag, version and leader (see docs/operations.md).
//! - `sentra-ctl projections rebuild DATABASE_URL SCHEMA NAME` asks the running service to
//!   rebuild a projection in the background and swap it in.
//! - `sentra-ctl login URL EMAIL` prints an access token (password from `$SENTRA_PASSWORD`), for
//!   `SENTRA_TOKEN` of the export below.
//! - `sentra-ctl events export --url URL --context sales|finance --format ndjson|csv|parquet
//!   --out PATH [filters]` copies a context's event history for analysts, resumably (see
//!   docs/analytics.md).

mod export;
mod projections;
mod seed;

use std::time::Duration;

use anyhow::{Context, bail};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const USAGE: &str = "usage: sentra-ctl wait-healthy NAME=HOST:PORT... | sentra-ctl health HOST:PORT [SERVICE] | sentra-ctl seed TENANCY_URL SALES_URL FINANCE_URL [COMM_URL DASHBOARD_ORIGIN] | sentra-ctl projections status DATABASE_URL [SCHEMA...] | sentra-ctl projections rebuild DATABASE_URL SCHEMA NAME | sentra-ctl login URL EMAIL | sentra-ctl events export --url URL --context sales|finance --format ndjson|csv|parquet --out PATH [...]";

async fn status(addr: &str, service: &str) -> anyhow::Result<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .connect()
        .await?;
    let response = HealthClient::new(channel).check(HealthCheckRequest { service: service.to_owned() }).await?;
    Ok(ServingStatus::try_from(response.into_inner().status).unwrap_or(ServingStatus::Unknown))
}

async fn wait_healthy(targets: &[String]) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    for target in targets {
        let (name, addr) = target.split_once('=').context(USAGE)?;
        loop {
            match status(addr, "").await {
                Ok(ServingStatus::Serving) => {
                    println!("  {name:<8} {addr:<16} SERVING");
                    break;
                }
                last if tokio::time::Instant::now() >= deadline => {
                    bail!("{name} at {addr} is not serving (last answer: {last:?}); see its log")
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((cmd, targets)) if cmd == "wait-healthy" && !targets.is_empty() => wait_healthy(targets).await,
        Some((cmd, rest)) if cmd == "health" && !rest.is_empty() => {
            let service = rest.get(1).map_or("", String::as_str);
            println!("{:?}", status(&rest[0], service).await?);
            Ok(())
        }
        Some((cmd, rest)) if cmd == "seed" && rest.len() == 3 => seed::seed(&rest[0], &rest[1], &rest[2], None).await,
        Some((cmd, rest)) if cmd == "seed" && rest.len() == 5 => {
            seed::seed(&rest[0], &rest[1], &rest[2], Some((&rest[3], &rest[4]))).await
        }
        Some((cmd, rest)) if cmd == "projections" && rest.len() == 4 && rest[0] == "rebuild" => {
            print!("{}", projections::rebuild(&rest[1], &rest[2], &rest[3]).await?);
            Ok(())
        }
        Some((cmd, rest)) if cmd == "projections" && rest.len() >= 2 && rest[0] == "status" => {
            let schemas = if rest.len() > 2 { rest[2..].to_vec() } else { vec!["sales".into(), "finance".into()] };
            print!("{}", projections::status(&rest[1], &schemas).await?);
            Ok(())
        }
        Some((cmd, rest)) if cmd == "login" && rest.len() == 2 => {
            let password = std::env::var("SENTRA_PASSWORD").context("set SENTRA_PASSWORD to the password")?;
            let channel = tonic::transport::Endpoint::from_shared(rest[0].clone())?.connect().await?;
            let mut auth = sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient::new(channel);
            println!("{}", seed::login_with(&mut auth, &rest[1], &password, "").await?);
            Ok(())
        }
        Some((cmd, rest)) if cmd == "events" && rest.first().is_some_and(|c| c == "export") => {
            let export = export::Export::from_args(&rest[1..])?;
            let summary = export::export(&export).await?;
            println!(
                "exported {} events after {:?}; last position {}",
                summary.written, summary.resumed_after, summary.last_position
            );
            Ok(())
        }
        _ => bail!(USAGE),
    }
}
