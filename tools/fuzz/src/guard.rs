//! A whole gRPC request through the runtime's input guard and tonic's server codec, in memory.
//!
//! The endpoint behind the guard is built the way tonic's generated servers build theirs
//! (`tonic::server::Grpc::unary` with the prost codec) for Sales' `CreateLead`, and its handler
//! is the real boundary conversion, so a message gets exactly the decoding and the answer a
//! Sentra server gives before any state is touched.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use sentra_proto::sentra::sales::v1 as spb;
use sentra_runtime::input::InputGuardLayer;
use sentra_sales::commands::CreateLead;
use tonic::body::Body;
use tower::{Layer, Service, ServiceExt};

/// The gRPC codes a malformed call may get: OK, INVALID_ARGUMENT, RESOURCE_EXHAUSTED.
const CLEAN: [&str; 3] = ["0", "3", "8"];

#[derive(Clone)]
struct CreateLeadEndpoint;

struct Handler;

impl tonic::server::UnaryService<spb::CreateLeadRequest> for Handler {
    type Response = spb::CreateLeadResponse;
    type Future = Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<spb::CreateLeadRequest>) -> Self::Future {
        ready(
            CreateLead::try_from(request.into_inner())
                .map(|_| tonic::Response::new(spb::CreateLeadResponse::default()))
                .map_err(tonic::Status::from),
        )
    }
}

impl Service<Request<Body>> for CreateLeadEndpoint {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(Handler, request).await)
        })
    }
}

pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime"))
}

/// The first byte chooses the request's shape (bit 0: not POST, bit 1: not a gRPC content type,
/// bit 2: a 64-byte message limit instead of 4 MiB, bit 3: frame the rest as one message rather
/// than send it raw); the rest is the body.
pub fn guarded_call(data: &[u8]) {
    let Some((&shape, rest)) = data.split_first() else { return };
    let max = if shape & 4 != 0 { 64 } else { 4 << 20 };
    let body = if shape & 8 != 0 {
        let mut framed = BytesMut::with_capacity(rest.len() + 5);
        framed.put_u8(0);
        framed.put_u32(u32::try_from(rest.len()).unwrap_or(u32::MAX));
        framed.put_slice(rest);
        framed.freeze()
    } else {
        Bytes::copy_from_slice(rest)
    };
    let request = Request::builder()
        .method(if shape & 1 != 0 { Method::GET } else { Method::POST })
        .uri("/sentra.sales.v1.SalesService/CreateLead")
        .header(header::CONTENT_TYPE, if shape & 2 != 0 { "text/plain" } else { "application/grpc" })
        .body(Body::new(Full::new(body)))
        .expect("a valid request");

    let service = InputGuardLayer::new(max).layer(CreateLeadEndpoint);
    let (status, code) = runtime().block_on(async move {
        let response = service.oneshot(request).await.expect("infallible");
        let status = response.status();
        let in_headers = response.headers().get("grpc-status").map(|v| v.to_str().unwrap_or("?").to_owned());
        let collected = response.into_body().collect().await.expect("an in-memory body");
        let in_trailers =
            collected.trailers().and_then(|t| t.get("grpc-status")).map(|v| v.to_str().unwrap_or("?").to_owned());
        (status, in_headers.or(in_trailers))
    });

    match (shape & 1 != 0, shape & 2 != 0) {
        (true, _) => assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED),
        (false, true) => assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (false, false) => {
            assert_eq!(status, StatusCode::OK, "gRPC answers travel in HTTP 200");
            let code = code.expect("every gRPC answer carries grpc-status");
            assert!(CLEAN.contains(&code.as_str()), "unclean grpc-status {code} for {data:?}");
        }
    }
}
