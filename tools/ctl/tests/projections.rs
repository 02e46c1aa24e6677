//! `sentra-ctl projections status` against a running Sales service's schema.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::net::Ipv4Addr;
use std::time::Duration;

fn status(url: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sentra-ctl"))
        .args(["projections", "status", url, "sales"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn status_lists_each_projection_with_its_position_and_the_session_running_it() {
    let db = sentra_testkit::TestDatabase::create().await;
    let mut config = sentra_sales::Config::default();
    config.server.host = Ipv4Addr::LOCALHOST.into();
    config.server.port = 0;
    config.database.url = db.secret_url();
    config.database.max_connections = 6;
    config.amqp.prefix = sentra_testkit::unique_prefix("ctl");
    config.shutdown.drain = Duration::ZERO;
    let app = sentra_sales::Application::build(config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    // Every projection shows up, run by this process's session, caught up.
    let url = db.url().to_owned();
    let mut table = String::new();
    for _ in 0..100 {
        table = tokio::task::spawn_blocking({
            let url = url.clone();
            move || status(&url)
        })
        .await
        .unwrap();
        if ["sales.leads", "sales.clients", "sales.orders", "sales.lead_timeline"]
            .iter()
            .all(|name| table.lines().any(|l| l.contains(name) && l.contains("pid ")))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{table}");
    for name in ["sales.leads", "sales.clients", "sales.orders", "sales.lead_timeline"] {
        let line = table.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{name} missing:\n{table}"));
        assert!(line.contains("pid "), "{name} has a leader:\n{table}");
        assert!(line.starts_with("sales "), "{line}");
    }

    // An operator asks for a rebuild: the running service rebuilds in the background and swaps
    // the table in; its version comes back and its rows are the same.
    let leads_before: i64 = {
        let pool = sqlx::postgres::PgPoolOptions::new().connect(&url).await.unwrap();
        let n = sqlx::query_scalar("SELECT count(*) FROM sales.leads").fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    };
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sentra-ctl"))
        .args(["projections", "rebuild", &url, "sales", "sales.leads"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("Rebuild of sales.leads requested"));
    let mut rebuilt = false;
    for _ in 0..200 {
        let table = tokio::task::spawn_blocking({
            let url = url.clone();
            move || status(&url)
        })
        .await
        .unwrap();
        let line = table.lines().find(|l| l.contains("sales.leads ")).unwrap().to_owned();
        let columns: Vec<&str> = line.split_whitespace().collect();
        // SCHEMA SUBSCRIBER POSITION BEHIND LAG s VERSION REBUILD LEADER...
        if columns[6] == "1" && columns[7] == "-" {
            rebuilt = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rebuilt, "the rebuild finished and restored the version");
    let pool = sqlx::postgres::PgPoolOptions::new().connect(&url).await.unwrap();
    let leads_after: i64 = sqlx::query_scalar("SELECT count(*) FROM sales.leads").fetch_one(&pool).await.unwrap();
    assert_eq!(leads_after, leads_before);
    pool.close().await;
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_sentra-ctl"))
        .args(["projections", "rebuild", &url, "sales", "sales.nothing"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no projection named sales.nothing"));

    // Stopped, the projections keep their checkpoints and have no leader any more.
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let table = tokio::task::spawn_blocking(move || status(&url)).await.unwrap();
    let line = table.lines().find(|l| l.contains("sales.leads")).unwrap();
    assert!(!line.contains("pid "), "no replica runs it now:\n{table}");
    assert!(line.trim_end().ends_with('-'), "{line}");
}
