//! Placeholder until the event store lands.
