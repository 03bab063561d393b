//! `Authorization/Check` requests as a gateway sends them, for tests that talk to
//! hitl-extauth's gRPC port directly (no gateway in between), and a channel to send them on.

use envoy_types::pb::envoy::service::auth::v3::CheckRequest;

use hitl_lab::requester::Issuer;

use crate::extauth::ExtAuth;

pub use hitl_scenes::attacks::check::post;

/// `check` as Envoy sends it with the requester's token (minted by `issuer` for `sub`) in
/// `Authorization`, for the gate to verify.
pub fn verified(check: CheckRequest, issuer: &Issuer, sub: &str) -> CheckRequest {
    let token = issuer.mint(sub).expect("minting a requester token");
    hitl_scenes::attacks::check::with_token(check, &token)
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
