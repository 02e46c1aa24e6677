//! Generated code for every Sentra protobuf contract.
//!
//! The contracts live in `proto/sentra/<context>/v1/*.proto` (a buf module). `build.rs` compiles
//! them with protox and tonic-prost-build, so no system `protoc` is needed. Client stubs sit behind
//! the `client` feature and server traits behind `server`.
//!
//! Modules mirror the protobuf packages: `sentra_proto::sentra::type::v1::Money`. Domain code never
//! uses these types directly; each service converts them with `TryFrom` at its boundary.
//! [`FILE_DESCRIPTOR_SET`] is the encoded descriptor set of every contract (with imports), used by
//! tonic-reflection and by the gateway to read the `sentra.auth.v1.rule` method options.

#![allow(missing_docs, clippy::doc_lazy_continuation, clippy::large_enum_variant)]

include!(concat!(env!("OUT_DIR"), "/sentra.rs"));

/// Encoded `google.protobuf.FileDescriptorSet` of all Sentra contracts and their imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sentra_descriptor.bin"));
