//! Redis clients (fred) that reconnect by themselves.

use fred::prelude::*;
use secrecy::ExposeSecret;

use crate::config::RedisConfig;

/// Why a Redis client could not be created.
#[derive(Debug, thiserror::Error)]
#[error("redis client setup failed")]
pub struct RedisSetupError(#[from] fred::error::Error);

/// A client for `config.url` whose connection task starts now and retries forever with backoff.
///
/// It does not wait for the first connection: a service starts while Redis is down and reports
/// NOT_SERVING through its probe until Redis answers.
pub fn connect(config: &RedisConfig) -> Result<Client, RedisSetupError> {
    let redis = Config::from_url(config.url.expose_secret())?;
    let client = Builder::from_config(redis)
        .with_performance_config(|perf| {
            perf.default_command_timeout = std::time::Duration::from_secs(2);
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
        .build()?;
    // The connection task lives as long as the client; its result only matters on shutdown.
    let _task = client.connect();
    Ok(client)
}
