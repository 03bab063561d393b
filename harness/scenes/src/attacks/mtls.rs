//! The Check port's own lock in the catalogue: with mTLS between gateway and gate, a Check
//! straight to the gate's port — even one carrying a valid requester token — gets nowhere
//! without the gateway's client certificate: not in plaintext, not over TLS without one.

use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use hitl_wire::mockdb::paths;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use super::{
    calls::{new_tag, released, tagged_call},
    check::{check_over, verified_post},
    run::{AttackReport, Target, check, since},
};

/// How long a refused Check may take to fail (a handshake, not a park).
const REFUSAL: Duration = Duration::from_secs(10);

/// A valid requester's `tools/call` sent straight to the gate's Check port in plaintext, and
/// over TLS that trusts the gate's CA but presents no client certificate: both fail before
/// the gate reads a Check; nothing parks, nothing runs.
pub async fn check_without_client_certificate(
    target: &Target,
    report: &mut AttackReport,
) -> anyhow::Result<()> {
    let (Some(endpoint), Some(tls)) = (&target.ext_authz, &target.ext_authz_tls) else {
        report
            .not_applicable
            .push("the gate's Check port is not known, or not mTLS here".into());
        return Ok(());
    };
    let before = target.db.state().await?;
    let tag = new_tag();
    let request = || {
        let token = target.issuer.mint(&target.requester)?;
        let body = tagged_call(tag, &before.schema_version);
        anyhow::Ok(verified_post(paths::PRIVILEGED_MCP, &body, &token, &[]))
    };
    let plaintext = tokio::time::timeout(REFUSAL, check_over(endpoint, None, request()?)).await;
    let no_cert = tokio::time::timeout(REFUSAL, async {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(std::fs::read_to_string(&tls.ca)?))
            .domain_name(endpoint.host.clone());
        let channel = Channel::from_shared(format!("https://{}:{}", endpoint.host, endpoint.port))?
            .tls_config(config)?
            .connect()
            .await?;
        anyhow::Ok(
            AuthorizationClient::new(channel)
                .check(request()?)
                .await?
                .into_inner(),
        )
    })
    .await;
    let refused = |answer: &Result<anyhow::Result<_>, _>| matches!(answer, Ok(Err(_)));
    report.observed = format!(
        "plaintext {}, TLS without a certificate {}",
        if refused(&plaintext) {
            "refused"
        } else {
            "answered"
        },
        if refused(&no_cert) {
            "refused"
        } else {
            "answered"
        },
    );
    check(
        report,
        refused(&plaintext),
        "plaintext to the Check port fails",
    );
    check(
        report,
        refused(&no_cert),
        "TLS without the gateway's client certificate fails",
    );
    if let Some(admin) = &target.admin {
        let gone = released(admin, tag, Duration::from_millis(500)).await?;
        check(report, gone, "nothing parked");
    }
    let after = target.db.state().await?;
    let (executed, _) = since(&before, &after);
    check(report, executed.is_empty(), "nothing executed");
    Ok(())
}
