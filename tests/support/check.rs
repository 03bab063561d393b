//! `Authorization/Check` requests as a gateway sends them, for tests that talk to
//! hitl-extauth's gRPC port directly (no gateway in between), and a channel to send them on.

use envoy_types::pb::envoy::service::auth::v3::CheckRequest;

use crate::extauth::ExtAuth;

pub use hitl_scenes::attacks::check::post;

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
