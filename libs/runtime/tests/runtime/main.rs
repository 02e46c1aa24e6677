//! Integration tests of the service runtime against the machine's real servers.

mod config;
mod db;
mod health;
mod shutdown;
mod tls;
