//! The `envoy.service.auth.v3.Authorization` gRPC service: hands each `Check` to the gate and
//! turns its answer into Envoy's `CheckResponse`.

use std::{pin::Pin, sync::Arc};

use envoy_types::ext_authz::v3::{
    CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
    pb::{Authorization, CheckRequest, CheckResponse, HeaderAppendAction, HttpStatusCode},
};
use hitl_wire::{
    approval,
    extauth::{APPROVAL_ID_HEADER, DenyBody, denial},
};
use tonic::{Request, Response, Status};

use crate::{
    config::DenyStyle,
    gate::{Answer, Gate},
};

/// The gRPC face of the gate.
#[derive(Debug, Clone)]
pub struct AuthService {
    gate: Arc<Gate>,
    deny_style: DenyStyle,
}

impl AuthService {
    pub fn new(gate: Arc<Gate>) -> Self {
        Self::with_deny_style(gate, DenyStyle::Http)
    }

    pub fn with_deny_style(gate: Arc<Gate>, deny_style: DenyStyle) -> Self {
        Self { gate, deny_style }
    }
}

/// What a denial must answer in [`DenyStyle::Mcp`]: the request's JSON-RPC id, and whether
/// it was a `tools/call` (answered with a tool result marked `isError`, which the model
/// reads and which MCP clients do not retry) or another request (a JSON-RPC error). The
/// classifier reads it from the body in its one strict parse ([`crate::classify`]): a body
/// it could not read as one JSON-RPC object with a valid id gets the plain 403.
pub use crate::classify::RpcRequest;

/// The future `check` returns (what `#[tonic::async_trait]` would generate).
type CheckFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Response<CheckResponse>, Status>> + Send + 'a>>;

#[tonic::async_trait]
impl Authorization for AuthService {
    // Written out rather than `async fn`, so the boxed future does not carry the request
    // while the call is parked: the gate takes it apart before the future starts.
    fn check<'life0, 'async_trait>(
        &'life0 self,
        request: Request<CheckRequest>,
    ) -> CheckFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let arrived = std::time::Instant::now();
        let checked = self.gate.check_rpc(request.into_inner());
        // Only the id is kept while the call waits, and only when denials need it.
        let rpc = match self.deny_style {
            DenyStyle::Mcp => checked.rpc,
            DenyStyle::Http => None,
        };
        // When Envoy cancels the call, tonic drops this future, and with it the park.
        let answer = checked.answer;
        let gate = &self.gate;
        Box::pin(async move {
            let response = check_response(answer.await, rpc.as_ref());
            gate.metrics().answered(arrived.elapsed());
            Ok(Response::new(response))
        })
    }
}

/// Envoy's reading of an [`Answer`]: OK (with the approval id for upstream), or
/// PERMISSION_DENIED with a JSON 403 carrying [`DenyBody`] — or, given the JSON-RPC request
/// ([`DenyStyle::Mcp`]), with a JSON-RPC answer to it that says why.
pub fn check_response(answer: Answer, rpc: Option<&RpcRequest>) -> CheckResponse {
    match answer {
        Answer::Allow { approval_id, token } => {
            let mut ok = OkHttpResponseBuilder::new();
            // Whatever a client claims in these never reaches upstream unless we set it.
            for (name, value) in [(APPROVAL_ID_HEADER, approval_id), (approval::HEADER, token)] {
                match value {
                    Some(value) => ok.add_header(
                        name,
                        value,
                        Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                        false,
                    ),
                    None => ok.remove_header(name),
                };
            }
            let mut response = CheckResponse::with_status(Status::ok(""));
            response.set_http_response(ok);
            response
        }
        Answer::Deny { reason, id } => {
            let body = DenyBody {
                approved: false,
                reason: reason.clone(),
                id,
            };
            let (status, text) = match rpc {
                None => (
                    HttpStatusCode::Forbidden,
                    serde_json::to_string(&body).unwrap_or_default(),
                ),
                Some(rpc) => (
                    HttpStatusCode::Ok,
                    denial::write(&rpc.id, rpc.tool_call, &body),
                ),
            };
            let mut denied = DeniedHttpResponseBuilder::new();
            denied
                .set_http_status(status)
                .add_header(
                    "content-type",
                    "application/json",
                    Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                    false,
                )
                .set_body(text);
            let mut response = CheckResponse::with_status(Status::permission_denied(reason));
            response.set_http_response(denied);
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::ext_authz::v3::pb::HttpResponse;

    use super::*;

    #[test]
    fn deny_is_a_json_403_with_the_reason() {
        let response = check_response(
            Answer::Deny {
                reason: "not today".into(),
                id: Some("abc".into()),
            },
            None,
        );
        let status = response.status.unwrap();
        assert_eq!(status.code, tonic::Code::PermissionDenied as i32);
        assert_eq!(status.message, "not today");
        let Some(HttpResponse::DeniedResponse(denied)) = response.http_response else {
            panic!("no denied response");
        };
        assert_eq!(
            denied.status.unwrap().code,
            HttpStatusCode::Forbidden as i32
        );
        let body: DenyBody = serde_json::from_str(&denied.body).unwrap();
        assert_eq!(
            body,
            DenyBody {
                approved: false,
                reason: "not today".into(),
                id: Some("abc".into())
            }
        );
        let ct = denied.headers[0].header.as_ref().unwrap();
        assert_eq!(
            (ct.key.as_str(), ct.value.as_str()),
            ("content-type", "application/json")
        );
    }

    fn deny(rpc: &RpcRequest) -> serde_json::Value {
        let response = check_response(
            Answer::Deny {
                reason: "change freeze".into(),
                id: Some("abc".into()),
            },
            Some(rpc),
        );
        assert_eq!(
            response.status.unwrap().code,
            tonic::Code::PermissionDenied as i32,
            "Envoy must still deny"
        );
        let Some(HttpResponse::DeniedResponse(denied)) = response.http_response else {
            panic!("no denied response");
        };
        assert_eq!(denied.status.unwrap().code, HttpStatusCode::Ok as i32);
        serde_json::from_str(&denied.body).unwrap()
    }

    fn seed_body() -> DenyBody {
        DenyBody {
            approved: false,
            reason: "change freeze".into(),
            id: Some("abc".into()),
        }
    }

    #[test]
    fn mcp_style_denies_a_tool_call_with_a_tool_error_the_model_reads() {
        let body = deny(&RpcRequest {
            id: "req-7".into(),
            tool_call: true,
        });
        assert_eq!(body["jsonrpc"], "2.0");
        assert_eq!(body["id"], "req-7");
        assert_eq!(body["result"]["isError"], true);
        assert_eq!(
            body["result"]["content"][0]["text"],
            "denied at the gateway (parked call abc): change freeze"
        );
        let meta = body["result"]["_meta"][denial::META_KEY].clone();
        assert_eq!(
            serde_json::from_value::<DenyBody>(meta).unwrap(),
            seed_body()
        );
    }

    #[test]
    fn mcp_style_denies_other_requests_with_a_json_rpc_error() {
        let body = deny(&RpcRequest {
            id: 7.into(),
            tool_call: false,
        });
        assert_eq!(body["id"], 7);
        assert_eq!(body["error"]["code"], denial::DENIED_CODE);
        let data = body["error"]["data"][denial::META_KEY].clone();
        assert_eq!(
            serde_json::from_value::<DenyBody>(data).unwrap(),
            seed_body()
        );
    }

    #[test]
    fn approval_sets_the_id_header_and_pass_strips_it() {
        let response = check_response(
            Answer::Allow {
                approval_id: Some("abc".into()),
                token: Some("v1.x.y".into()),
            },
            None,
        );
        assert_eq!(response.status.unwrap().code, tonic::Code::Ok as i32);
        let Some(HttpResponse::OkResponse(ok)) = response.http_response else {
            panic!("no ok response");
        };
        let headers: Vec<_> = ok
            .headers
            .iter()
            .map(|h| {
                let h = h.header.as_ref().unwrap();
                (h.key.as_str(), h.value.as_str())
            })
            .collect();
        assert_eq!(
            headers,
            [(APPROVAL_ID_HEADER, "abc"), (approval::HEADER, "v1.x.y")]
        );

        let response = check_response(
            Answer::Allow {
                approval_id: None,
                token: None,
            },
            None,
        );
        let Some(HttpResponse::OkResponse(ok)) = response.http_response else {
            panic!("no ok response");
        };
        assert_eq!(ok.headers_to_remove, [APPROVAL_ID_HEADER, approval::HEADER]);
    }
}
