//! `Authorization/Check` sent straight to a gate, as a gateway sends it (with the requester's
//! token as Envoy forwards it, for [`verified_post`]): the one builder, used by the attacks
//! that need the approval token itself (a replay) or forge what a gateway would state (a
//! requester named in `metadata_context`), and by the tests that talk to the gate's gRPC port.

use envoy_types::pb::{
    envoy::{
        config::core::v3::Metadata,
        service::auth::v3::{
            AttributeContext, CheckRequest, CheckResponse,
            attribute_context::{HttpRequest, Request},
            authorization_client::AuthorizationClient,
            check_response::HttpResponse,
        },
    },
    google::protobuf::{Struct, Value, value::Kind},
};
use hitl_wire::identity::{METADATA_NAMESPACE, PAYLOAD_KEY, REQUESTER_CLAIM, TOKEN_HEADER};

use hitl_lab::{envoy::Endpoint, requester::bearer};

/// A JWT payload naming `sub` where gateways state one after their own check (Envoy
/// `jwt_authn` `payload_in_metadata`; agentgateway's default): what anyone who reaches the
/// Check port can write. The gate believes none of it.
pub fn stated_payload(sub: &str) -> Metadata {
    let string = |s: &str| Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    };
    let payload = Struct {
        fields: [(REQUESTER_CLAIM.to_owned(), string(sub))].into(),
    };
    let namespace = Struct {
        fields: [(
            PAYLOAD_KEY.to_owned(),
            Value {
                kind: Some(Kind::StructValue(payload)),
            },
        )]
        .into(),
    };
    Metadata {
        filter_metadata: [(METADATA_NAMESPACE.to_owned(), namespace)].into(),
        ..Default::default()
    }
}

/// `check` carrying the requester's `token` as Envoy forwards it (`Authorization: Bearer`).
pub fn with_token(mut check: CheckRequest, token: &str) -> CheckRequest {
    if let Some(http) = check
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
    {
        http.headers.insert(TOKEN_HEADER.to_owned(), bearer(token));
    }
    check
}

/// A complete `POST` of `body` to `path` as Envoy forwards it with `with_request_body`
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

/// [`post`] as agentgateway forwards it: the body as (lossy UTF-8) text in `body`, never
/// `raw_body` (`reference/agentgateway`: what the gate receives differs from Envoy).
pub fn post_as_text(path: &str, body: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let mut check = post(path, body, headers);
    if let Some(http) = check
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
    {
        http.body = String::from_utf8_lossy(&std::mem::take(&mut http.raw_body)).into_owned();
    }
    check
}

/// [`post`] on the privileged route (its `context_extensions`) carrying the requester's
/// `token`.
pub fn verified_post(
    path: &str,
    body: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> CheckRequest {
    let mut check = with_token(post(path, body, headers), token);
    if let Some(attributes) = check.attributes.as_mut() {
        attributes.context_extensions = [("route".to_owned(), "privileged-mcp".to_owned())].into();
    }
    check
}

/// Send `request` to the gate at `endpoint` (h2c); the answer arrives once it decides.
pub async fn check(endpoint: &Endpoint, request: CheckRequest) -> anyhow::Result<CheckResponse> {
    let mut client =
        AuthorizationClient::connect(format!("http://{}:{}", endpoint.host, endpoint.port)).await?;
    Ok(client.check(request).await?.into_inner())
}

/// The value of header `name` the gate adds upstream on an OK answer.
pub fn added_header(response: &CheckResponse, name: &str) -> Option<String> {
    let Some(HttpResponse::OkResponse(ok)) = &response.http_response else {
        return None;
    };
    ok.headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key.eq_ignore_ascii_case(name))
        .map(|h| h.value.clone())
}
