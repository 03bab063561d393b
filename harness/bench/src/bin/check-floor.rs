//! `check-floor`: the bench's floor for one passed `Check` — an
//! `envoy.service.auth.v3.Authorization` server that decodes each `CheckRequest` and answers
//! OK, with hitl-extauth's transport exactly (tonic, one current-thread runtime, TCP_NODELAY,
//! no stream cap) and nothing else: no classifier, no logging, no metrics. What hitl-extauth
//! spends per passed Check beyond this is the gate's own work; this much any tonic gate pays.
//!
//! Not a gate: it passes everything. The bench starts it on a free loopback port
//! (`check-floor <port>`), never the lab.

use envoy_types::ext_authz::v3::{
    CheckResponseExt, OkHttpResponseBuilder,
    pb::{Authorization, AuthorizationServer, CheckRequest, CheckResponse},
};
use tonic::{Request, Response, Status};

/// Answers every Check OK, after tonic has decoded it (as any gate must, to read it).
struct Floor;

#[tonic::async_trait]
impl Authorization for Floor {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        // Read what a gate reads at the least, so the decode is not optimised away.
        let check = request.into_inner();
        std::hint::black_box(&check);
        let mut response = CheckResponse::with_status(Status::ok(""));
        response.set_http_response(OkHttpResponseBuilder::new());
        Ok(Response::new(response))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: check-floor <port> (binds 127.0.0.1)"))?
        .parse()?;
    let incoming = tonic::transport::server::TcpIncoming::bind(([127, 0, 0, 1], port).into())
        .map_err(|e| anyhow::anyhow!("binding 127.0.0.1:{port}: {e}"))?
        .with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .max_concurrent_streams(None)
        .add_service(AuthorizationServer::new(Floor))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
