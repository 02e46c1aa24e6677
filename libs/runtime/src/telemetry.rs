//! Tracing subscriber: human-readable lines by default, JSON lines when configured.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

use crate::config::LogConfig;

/// Installs the global subscriber; `RUST_LOG` wins over the configured filter. Calling it twice
/// (as tests do) keeps the first subscriber.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if config.json {
        registry.with(fmt::layer().json().flatten_event(true).with_current_span(true)).try_init()
    } else {
        registry.with(fmt::layer().compact().with_ansi(std::io::stdout().is_terminal())).try_init()
    };
    // An already installed subscriber is fine: tests initialise once per process.
    drop(result);
}
