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
