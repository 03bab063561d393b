//! `Authorization/Check` requests as a gateway sends them, for tests that talk to
//! hitl-extauth's gRPC port directly (no gateway in between), and a channel to send them on.

use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest,
    attribute_context::{HttpRequest, Request},
};

use crate::extauth::ExtAuth;

/// A complete `POST` of `body` to `path`, as Envoy forwards it with `with_request_body`
/// (`raw_body`, `size`, a matching `content-length`), with `headers` added.
pub fn post(path: &str, body: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("content-length", body.len().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(
        headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
    .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "POST".into(),
                    path: path.into(),
                    headers,
                    size: body.len() as i64,
                    raw_body: body.as_bytes().to_vec(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// `check` as the gateway sends it after verifying a requester token whose `sub` is `sub`
/// (the verified payload in `metadata_context`).
pub fn verified(mut check: CheckRequest, sub: &str) -> CheckRequest {
    if let Some(attributes) = check.attributes.as_mut() {
        attributes.metadata_context = Some(crate::extauth::verified_metadata(sub));
    }
    check
}

/// One HTTP/2 connection to `extauth`'s gRPC port.
pub async fn channel(extauth: &ExtAuth) -> anyhow::Result<tonic::transport::Channel> {
    let endpoint = extauth.options.grpc_endpoint();
    Ok(tonic::transport::Endpoint::from_shared(format!(
        "http://{}:{}",
        endpoint.host, endpoint.port
    ))?
    .connect()
    .await?)
}
