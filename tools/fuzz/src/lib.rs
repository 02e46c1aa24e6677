//! Fuzz targets for everything in Sentra that reads bytes or values it did not write itself.
//!
//! Each target is a plain function from bytes that panics when a property breaks, so the same
//! code runs under libFuzzer (`fuzz/`, driven by `make fuzz`) and under `cargo test`, which
//! replays the checked-in seed corpus and every input that once failed (`tests/replay.rs`).
//!
//! | target | reads | property |
//! |---|---|---|
//! | [`guarded_call`] | a whole gRPC request (headers, framing, message) | the input guard and tonic's decoder answer only OK, INVALID_ARGUMENT or RESOURCE_EXHAUSTED |
//! | [`requests`] | the message of any of the 58 methods | decodes or not; a decoded message converts to a command or fails naming a field |
//! | [`stored_events`] | an event stream as stored (JSON) | decoding and replay never panic; the state's snapshot round-trips |
//! | [`invoice_money`] | a sequence of invoice commands | no panic or wrap; accepted payments and credits stay within the money bound |

mod events;
mod guard;
mod invoice;
mod requests;
pub mod seeds;

pub use events::stored_events;
pub use guard::guarded_call;
pub use invoice::invoice_money;
pub use requests::requests;

/// A fuzz target: panics when a property breaks.
pub type Target = fn(&[u8]);

/// Every target by the name of its corpus directory and fuzz binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("guarded_call", guarded_call),
    ("requests", requests),
    ("stored_events", stored_events),
    ("invoice_money", invoice_money),
];
