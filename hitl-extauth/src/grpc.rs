//! The `envoy.service.auth.v3.Authorization` gRPC service: hands each `Check` to the gate and
//! turns its answer into Envoy's `CheckResponse`.

use std::{pin::Pin, sync::Arc};

use envoy_types::ext_authz::v3::{
    CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
    pb::{Authorization, CheckRequest, CheckResponse, HeaderAppendAction, HttpStatusCode},
};
use hitl_wire::extauth::{APPROVAL_ID_HEADER, DenyBody};
use tonic::{Request, Response, Status};

use crate::gate::{Answer, Gate};

/// The gRPC face of the gate.
#[derive(Debug, Clone)]
pub struct AuthService {
    gate: Arc<Gate>,
}

impl AuthService {
    pub fn new(gate: Arc<Gate>) -> Self {
        Self { gate }
    }
}

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
        // When Envoy cancels the call, tonic drops this future, and with it the park.
        let answer = self.gate.check(request.into_inner());
        Box::pin(async move { Ok(Response::new(check_response(answer.await))) })
    }
}

/// Envoy's reading of an [`Answer`]: OK (with the approval id for upstream), or
/// PERMISSION_DENIED with a JSON 403 carrying [`DenyBody`].
pub fn check_response(answer: Answer) -> CheckResponse {
    match answer {
        Answer::Allow { approval_id } => {
            let mut ok = OkHttpResponseBuilder::new();
            match approval_id {
                Some(id) => ok.add_header(
                    APPROVAL_ID_HEADER,
                    id,
                    Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                    false,
                ),
                // Whatever a client claims there never reaches upstream unless we set it.
                None => ok.remove_header(APPROVAL_ID_HEADER),
            };
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
            let mut denied = DeniedHttpResponseBuilder::new();
            denied
                .set_http_status(HttpStatusCode::Forbidden)
                .add_header(
                    "content-type",
                    "application/json",
                    Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                    false,
                )
                .set_body(serde_json::to_string(&body).unwrap_or_default());
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
        let response = check_response(Answer::Deny {
            reason: "not today".into(),
            id: Some("abc".into()),
        });
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

    #[test]
    fn approval_sets_the_id_header_and_pass_strips_it() {
        let response = check_response(Answer::Allow {
            approval_id: Some("abc".into()),
        });
        assert_eq!(response.status.unwrap().code, tonic::Code::Ok as i32);
        let Some(HttpResponse::OkResponse(ok)) = response.http_response else {
            panic!("no ok response");
        };
        let header = ok.headers[0].header.as_ref().unwrap();
        assert_eq!(
            (header.key.as_str(), header.value.as_str()),
            (APPROVAL_ID_HEADER, "abc")
        );

        let response = check_response(Answer::Allow { approval_id: None });
        let Some(HttpResponse::OkResponse(ok)) = response.http_response else {
            panic!("no ok response");
        };
        assert_eq!(ok.headers_to_remove, [APPROVAL_ID_HEADER]);
    }
}
