// figment::Jail fixes the closure's error type, which clippy finds large.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use secrecy::ExposeSecret;
use sentra_runtime::config::{DatabaseConfig, ServerConfig, ShutdownConfig, load};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct DemoConfig {
    server: ServerConfig,
    database: DatabaseConfig,
    shutdown: ShutdownConfig,
}

/// A service whose defaults differ from the nested types' own defaults, as every service's do.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default)]
struct ServiceConfig {
    server: ServerConfig,
    database: DatabaseConfig,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self { server: ServerConfig::on_port(3003), database: DatabaseConfig::for_schema("sales") }
    }
}

#[test]
fn overriding_one_nested_key_keeps_the_services_other_defaults() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("SENTRA_SVC__DATABASE__URL", "postgres://db:5432/sentra");
        jail.set_env("SENTRA_SVC__SERVER__HOST", "127.0.0.1");
        let config: ServiceConfig = load("svc").map_err(|e| e.to_string())?;
        assert_eq!(config.database.url.expose_secret(), "postgres://db:5432/sentra");
        assert_eq!(config.database.schema, "sales", "the service's schema, not the nested type's default");
        assert_eq!(config.server.port, 3003, "the service's port, not the nested type's default");
        assert_eq!(config.server.host.to_string(), "127.0.0.1");
        Ok(())
    });
}

#[test]
fn defaults_hold_when_no_variable_is_set() {
    figment::Jail::expect_with(|_jail| {
        let config: DemoConfig = load("demo_defaults").map_err(|e| e.to_string())?;
        assert_eq!(config.server.port, 0);
        assert_eq!(config.database.max_connections, 16);
        assert_eq!(config.shutdown.grace, Duration::from_secs(20));
        Ok(())
    });
}

#[test]
fn environment_overrides_only_the_keys_it_names() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("SENTRA_DEMO__SERVER__PORT", "4100");
        jail.set_env("SENTRA_DEMO__DATABASE__URL", "postgres://app:s3cret@db:5432/sentra");
        jail.set_env("SENTRA_DEMO__SHUTDOWN__GRACE", "2.5");
        jail.set_env("SENTRA_OTHER__SERVER__PORT", "1");
        let config: DemoConfig = load("demo").map_err(|e| e.to_string())?;
        assert_eq!(config.server.port, 4100);
        assert_eq!(config.database.url.expose_secret(), "postgres://app:s3cret@db:5432/sentra");
        assert_eq!(config.database.schema, "public", "untouched keys keep their defaults");
        assert_eq!(config.shutdown.grace, Duration::from_millis(2500));
        assert_eq!(config.shutdown.drain, Duration::from_secs(1));
        assert!(!format!("{config:?}").contains("s3cret"), "secrets never show in Debug output");
        Ok(())
    });
}

#[test]
fn a_bad_value_is_an_error_naming_the_key() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("SENTRA_DEMO__SERVER__PORT", "not-a-port");
        let error = load::<DemoConfig>("demo").expect_err("a port must be a number").to_string();
        assert!(error.contains("port"), "{error}");
        Ok(())
    });
}

#[test]
fn tls_files_come_from_the_variables_the_kubernetes_overlay_sets() {
    #[derive(Debug, Default, Deserialize, Serialize)]
    #[serde(default)]
    struct WithTls {
        server: ServerConfig,
        client_tls: sentra_runtime::tls::ClientTls,
    }
    figment::Jail::expect_with(|jail| {
        jail.set_env("SENTRA_SALES__SERVER__TLS__CERT", "/etc/sentra/tls/tls.crt");
        jail.set_env("SENTRA_SALES__SERVER__TLS__KEY", "/etc/sentra/tls/tls.key");
        jail.set_env("SENTRA_SALES__SERVER__TLS__CLIENT_CA", "/etc/sentra/tls/ca.crt");
        jail.set_env("SENTRA_SALES__CLIENT_TLS__CA", "/etc/sentra/tls/ca.crt");
        jail.set_env("SENTRA_SALES__CLIENT_TLS__CERT", "/etc/sentra/tls/tls.crt");
        jail.set_env("SENTRA_SALES__CLIENT_TLS__KEY", "/etc/sentra/tls/tls.key");
        let config: WithTls = load("sales").map_err(|e| e.to_string())?;
        let tls = &config.server.tls;
        assert_eq!(tls.cert.as_deref(), Some(std::path::Path::new("/etc/sentra/tls/tls.crt")));
        assert_eq!(tls.key.as_deref(), Some(std::path::Path::new("/etc/sentra/tls/tls.key")));
        assert_eq!(tls.client_ca.as_deref(), Some(std::path::Path::new("/etc/sentra/tls/ca.crt")));
        assert_eq!(tls.reload_interval, 10.0, "the default survives");
        assert_eq!(config.client_tls.ca.as_deref(), Some(std::path::Path::new("/etc/sentra/tls/ca.crt")));
        assert_eq!(config.client_tls.cert.as_deref(), Some(std::path::Path::new("/etc/sentra/tls/tls.crt")));
        assert_eq!(config.client_tls.key.as_deref(), Some(std::path::Path::new("/etc/sentra/tls/tls.key")));
        Ok(())
    });
}
