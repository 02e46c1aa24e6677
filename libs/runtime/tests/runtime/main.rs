//! Integration tests of the service runtime against the machine's real servers.

mod config;
mod health;
mod shutdown;
