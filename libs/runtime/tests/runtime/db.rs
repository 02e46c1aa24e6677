//! Start-up migrations, and the `migrate = false` mode of replicas in production.

use sentra_runtime::config::DatabaseConfig;
use sentra_runtime::db::{DbError, connect_and_migrate};
use sentra_testkit::TestDatabase;

fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("tests/runtime/migrations")
}

#[tokio::test]
async fn a_replica_that_does_not_migrate_refuses_an_old_schema_and_starts_on_a_current_one() {
    let db = TestDatabase::create().await;
    let config = DatabaseConfig { url: db.secret_url(), migrate: false, ..DatabaseConfig::for_schema("notes") };

    // Nothing migrated yet: the error names the missing versions and what to do.
    let error = connect_and_migrate(&config, [migrator()]).await.unwrap_err();
    assert!(matches!(&error, DbError::NotMigrated { missing, .. } if missing == &vec![1, 2]), "{error:?}");
    assert!(error.to_string().contains("run `migrate` first"), "{error}");

    // The release's migration step, then the replica starts without touching the schema.
    let migrating = DatabaseConfig { migrate: true, ..config.clone() };
    connect_and_migrate(&migrating, [migrator()]).await.unwrap().close().await;
    let pool = connect_and_migrate(&config, [migrator()]).await.unwrap();
    sqlx::query("INSERT INTO notes (id, body, tags) VALUES (1, 'hi', '{a}')").execute(&pool).await.unwrap();

    // A newer build (one more migration) against the same schema is refused again.
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 2").execute(&pool).await.unwrap();
    let error = connect_and_migrate(&config, [migrator()]).await.unwrap_err();
    assert!(matches!(&error, DbError::NotMigrated { missing, .. } if missing == &vec![2]), "{error:?}");
}

/// PostgreSQL over TLS by configuration: the URL asks for a verified TLS session. The machine's
/// PostgreSQL serves TLS with Debian's self-signed "snakeoil" certificate for `localhost`, which
/// the client trusts as its root here; a client trusting another CA is refused.
#[tokio::test]
async fn the_database_url_turns_on_verified_tls() {
    let db = TestDatabase::create().await;
    let snakeoil = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    assert!(std::path::Path::new(snakeoil).exists(), "this test needs PostgreSQL's TLS certificate at {snakeoil}");
    let tls_url = |root: &str| {
        let url = db.url().replacen("127.0.0.1", "localhost", 1);
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}sslmode=verify-full&sslrootcert={root}")
    };
    let config = DatabaseConfig { url: tls_url(snakeoil).into(), ..DatabaseConfig::for_schema("notes") };
    let pool = connect_and_migrate(&config, [migrator()]).await.expect("a verified TLS connection");
    let (ssl, version): (bool, String) =
        sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(ssl, "the session is encrypted");
    assert!(version.starts_with("TLSv1."), "{version}");
    pool.close().await;

    let certs = sentra_testkit::tls::CertDir::new();
    let other = certs.write("other-ca.pem", &sentra_testkit::tls::TestCa::new("Not the database's CA").pem());
    let untrusted = DatabaseConfig {
        url: tls_url(&other.display().to_string()).into(),
        connect_timeout: std::time::Duration::from_secs(1),
        ..DatabaseConfig::for_schema("notes")
    };
    assert!(connect_and_migrate(&untrusted, [migrator()]).await.is_err(), "a server of an untrusted CA is refused");
}
