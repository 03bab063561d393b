//! A deliberately fail-open ext_authz gate, the negative control for `gate-check`: it answers
//! OK to everything except a body that *obviously* is a `tools/call` (parses as one JSON
//! object whose `method` is `"tools/call"`), which it holds until a decision file appears
//! (`<decisions>/<x-hitl-check-id>`: `true|false`, newline, reason) or its park timeout ends.
//! It checks no length, no encoding, no requester, no duplicate keys: the shortcuts a gate
//! written in an afternoon takes.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use envoy_types::ext_authz::v3::{
    CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
    pb::{Authorization, AuthorizationServer, CheckRequest, CheckResponse, HttpStatusCode},
};
use hitl_lab::envoy::Endpoint;
use tonic::{Request, Response, Status};

/// The running gate; stops on drop.
pub struct FailOpenGate {
    pub endpoint: Endpoint,
    /// Where `--decide-cmd` writes decisions.
    pub decisions: PathBuf,
    pub park_timeout: Duration,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FailOpenGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Service {
    decisions: PathBuf,
    park_timeout: Duration,
}

fn obviously_a_tool_call(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("method")
                .and_then(|m| m.as_str())
                .map(|m| m == "tools/call")
        })
        .unwrap_or(false)
}

fn ok() -> CheckResponse {
    let mut response = CheckResponse::with_status(Status::ok(""));
    response.set_http_response(OkHttpResponseBuilder::new());
    response
}

fn denied(reason: &str) -> CheckResponse {
    let mut denied = DeniedHttpResponseBuilder::new();
    denied
        .set_http_status(HttpStatusCode::Forbidden)
        .set_body(format!("denied: {reason}"));
    let mut response = CheckResponse::with_status(Status::permission_denied(reason));
    response.set_http_response(denied);
    response
}

#[tonic::async_trait]
impl Authorization for Service {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let http = request
            .into_inner()
            .attributes
            .and_then(|a| a.request)
            .and_then(|r| r.http)
            .unwrap_or_default();
        let body = if http.raw_body.is_empty() {
            http.body.into_bytes()
        } else {
            http.raw_body
        };
        if !obviously_a_tool_call(&body) {
            return Ok(Response::new(ok()));
        }
        let tag = http
            .headers
            .get(hitl_wire::headers::CHECK_ID)
            .cloned()
            .unwrap_or_default();
        let file = self.decisions.join(&tag);
        let deadline = tokio::time::Instant::now() + self.park_timeout;
        while tokio::time::Instant::now() < deadline {
            if !tag.is_empty()
                && let Ok(text) = std::fs::read_to_string(&file)
            {
                let (approve, reason) = text.split_once('\n').unwrap_or((text.as_str(), ""));
                return Ok(Response::new(if approve.trim() == "true" {
                    ok()
                } else {
                    denied(reason.trim())
                }));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Response::new(denied("no decision in time")))
    }
}

impl FailOpenGate {
    pub async fn start(dir: &std::path::Path, park_timeout: Duration) -> anyhow::Result<Self> {
        let decisions = dir.join("decisions");
        std::fs::create_dir_all(&decisions)?;
        let port = hitl_lab::net::free_port()?;
        let incoming =
            tonic::transport::server::TcpIncoming::bind(SocketAddr::from(([127, 0, 0, 1], port)))
                .map_err(|e| anyhow::anyhow!("binding the fail-open gate: {e}"))?;
        let service = Service {
            decisions: decisions.clone(),
            park_timeout,
        };
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(AuthorizationServer::new(service))
                .serve_with_incoming(incoming)
                .await;
        });
        Ok(Self {
            endpoint: Endpoint::loopback(port),
            decisions,
            park_timeout,
            task,
        })
    }

    /// The `--decide-cmd` that decides through the decision files.
    pub fn decide_cmd(&self) -> String {
        format!(
            "printf '%s\\n%s' {{approve}} {{reason}} > '{}'/{{id}}",
            self.decisions.display()
        )
    }
}
