//! Every method of every service, sent what no well-behaved client sends, directly and through
//! the gateway: random bytes, a truncated message, invalid UTF-8, a message one byte over the
//! limit, broken framing, and out-of-range times, dates and amounts in every field that holds
//! one. Only clean codes may come back (never INTERNAL or UNKNOWN), the framing and decoding
//! failures exactly as the front door promises, and every service is still SERVING afterwards.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FileDescriptorSet};
use sentra_mesh::Mesh;
use sentra_proto::sentra::r#type::v1::{Date, Money};
use sentra_runtime::config::DEFAULT_MAX_MESSAGE_BYTES;
use sentra_testkit::grpc::raw_call_open;
use tonic_health::pb::health_check_response::ServingStatus;

const INVALID_ARGUMENT: i32 = 3;
const RESOURCE_EXHAUSTED: i32 = 8;

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn length_delimited(field: u32, bytes: &[u8], out: &mut BytesMut) {
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.put_slice(bytes);
}

/// The message's fields set to the worst values their types allow, one level deep.
fn out_of_range(message: &DescriptorProto, messages: &HashMap<String, DescriptorProto>, depth: u8) -> Vec<u8> {
    let mut out = BytesMut::new();
    for field in &message.field {
        let number = u32::try_from(field.number()).unwrap();
        match (field.r#type(), field.type_name()) {
            (Type::Message, ".google.protobuf.Timestamp") => {
                let far = prost_types::Timestamp { seconds: i64::MIN / 2, nanos: 999_999_999 };
                length_delimited(number, &far.encode_to_vec(), &mut out);
            }
            (Type::Message, ".sentra.type.v1.Date") => {
                let far = Date { year: 262_142, month: 12, day: 31 };
                length_delimited(number, &far.encode_to_vec(), &mut out);
            }
            (Type::Message, ".sentra.type.v1.Money") => {
                let huge = Money { currency_code: "EUR".into(), amount_minor: i64::MAX };
                length_delimited(number, &huge.encode_to_vec(), &mut out);
            }
            (Type::Message, name) if depth > 0 => {
                if let Some(inner) = messages.get(name) {
                    length_delimited(number, &out_of_range(inner, messages, depth - 1), &mut out);
                }
            }
            (Type::Int32 | Type::Int64 | Type::Enum, _) => {
                encode_key(number, WireType::Varint, &mut out);
                encode_varint(u64::MAX, &mut out); // -1 as an int, the largest enum number
            }
            _ => {}
        }
    }
    out.to_vec()
}

/// The first string field of the message, if it has one.
fn string_field(message: &DescriptorProto) -> Option<u32> {
    message.field.iter().find(|f| f.r#type() == Type::String).map(|f| u32::try_from(f.number()).unwrap())
}

struct Case {
    name: &'static str,
    body: Vec<u8>,
    /// The exact code promised, or None for "any clean code".
    expect: Option<i32>,
}

fn cases(input: &DescriptorProto, messages: &HashMap<String, DescriptorProto>) -> Vec<Case> {
    let mut cases = vec![
        // 0xff.. is never a valid protobuf key sequence for long.
        Case {
            name: "random bytes",
            body: frame(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            expect: None,
        },
        Case {
            name: "truncated message",
            body: frame(&[0x0a, 0x0a, b'a', b'b', b'c']),
            expect: Some(INVALID_ARGUMENT),
        },
        Case { name: "no message", body: Vec::new(), expect: Some(INVALID_ARGUMENT) },
        Case { name: "header-only frame", body: vec![0, 0, 0, 0, 9], expect: Some(INVALID_ARGUMENT) },
        Case {
            name: "compression flag 7",
            body: {
                let mut b = frame(&[]);
                b[0] = 7;
                b
            },
            expect: Some(INVALID_ARGUMENT),
        },
        Case { name: "two messages", body: [frame(&[]), frame(&[])].concat(), expect: Some(INVALID_ARGUMENT) },
        Case {
            name: "one byte over the limit",
            body: frame(&vec![0u8; DEFAULT_MAX_MESSAGE_BYTES + 1]),
            expect: Some(RESOURCE_EXHAUSTED),
        },
        Case { name: "out-of-range values", body: frame(&out_of_range(input, messages, 1)), expect: None },
    ];
    if let Some(field) = string_field(input) {
        let mut bad = BytesMut::new();
        length_delimited(field, &[0xc3, 0x28, 0xff], &mut bad);
        cases.push(Case { name: "invalid UTF-8", body: frame(&bad), expect: Some(INVALID_ARGUMENT) });
    }
    cases
}

#[tokio::test]
async fn every_method_answers_hostile_input_cleanly_directly_and_through_the_gateway() {
    let mesh = Mesh::start(Path::new("/nonexistent")).await.unwrap();
    let tenancy = sentra_testkit::grpc::channel(mesh.tenancy);
    let tenancy_client =
        sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient::new(tenancy.clone());
    let auth = sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient::new(tenancy);
    sentra_testkit::tenancy::sign_up(&tenancy_client, "Hostile Input").await;
    let token = sentra_testkit::tenancy::login(&auth, &sentra_testkit::tenancy::owner_email("Hostile Input"), "").await;
    let bearer = format!("Bearer {token}");

    let set = FileDescriptorSet::decode(sentra_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut messages = HashMap::new();
    for file in &set.file {
        for message in &file.message_type {
            messages.insert(format!(".{}.{}", file.package(), message.name()), message.clone());
        }
    }
    let direct: HashMap<&str, SocketAddr> = [
        ("sentra.tenancy.v1", mesh.tenancy),
        ("sentra.sales.v1", mesh.sales),
        ("sentra.finance.v1", mesh.finance),
        ("sentra.comm.v1", mesh.comm),
    ]
    .into();

    let mut failures = Vec::new();
    let mut calls = 0;
    for file in set.file.iter().filter(|f| f.package().starts_with("sentra.")) {
        for service in &file.service {
            for method in &service.method {
                let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                let input = &messages[method.input_type()];
                let targets = [("direct", direct[file.package()]), ("gateway", mesh.gateway)];
                for case in cases(input, &messages) {
                    for (via, addr) in targets {
                        calls += 1;
                        // A watch that accepted its request streams on: two seconds of it will do.
                        let read = method.server_streaming().then_some(Duration::from_secs(2));
                        let body = Bytes::from(case.body.clone());
                        let answer = raw_call_open(addr, &path, body, &[("authorization", &bearer)], read)
                            .await
                            .unwrap_or_else(|e| panic!("{path} {} via {via}: {e}", case.name));
                        let clean = match case.expect {
                            Some(code) => answer.grpc_status == Some(code),
                            None => answer.open || answer.grpc_status.is_some_and(|c| c != 2 && c != 13),
                        };
                        let leaky = answer.grpc_message.contains("decode") || answer.grpc_message.contains("proto");
                        if !clean || answer.http_status != 200 || leaky {
                            failures.push(format!("{path} [{}] via {via}: {answer:?}", case.name));
                        }
                    }
                }
            }
        }
    }
    assert!(calls > 400, "only {calls} calls: the descriptor walk missed methods");
    assert!(failures.is_empty(), "{} unclean answers of {calls}:\n{}", failures.len(), failures.join("\n"));

    for addr in [mesh.tenancy, mesh.sales, mesh.finance, mesh.comm, mesh.gateway] {
        sentra_testkit::grpc::wait_for_health(addr, "", ServingStatus::Serving, Duration::from_secs(5)).await;
    }
    mesh.stop().await;
}
