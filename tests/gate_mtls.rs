//! mTLS between the gateway and the gate (as the kind lab runs them): through each gateway a
//! gated call still parks and is approved, with the Check carried over TLS that both sides
//! authenticate; and whoever reaches the gate's Check port without the gateway's client
//! certificate — no certificate, one from another CA, or plaintext — is refused before a
//! single Check is read.
//!
//! Needs the built binaries, Envoy and agentgateway, as `extauth_gate` does.

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use hitl_lab::{
    envoy::{Endpoint, GateClientTls},
    gate_tls::GateTls,
};
use hitl_lab_tests::{
    extauth::PATIENCE,
    gate::{Gate, USER},
    mock_db, through_both_gateways,
};
use hitl_scenes::attacks::check::{check_over, post, verified_post};
use hitl_wire::{
    extauth::Outcome,
    mockdb::{paths, tools},
};
use serde_json::json;

through_both_gateways! {
async fn over_mtls_a_gated_call_parks_and_is_approved(gateway) {
    let gate = Gate::start_mtls("gate_mtls_approve", gateway).await?;
    assert!(gate.extauth.options.grpc_tls.is_some(), "the gate's Check port is mTLS only");
    assert!(gate.front.plan.ext_authz.tls.is_some(), "the gateway dials it with its certificate");
    let client = gate.mcp(paths::PRIVILEGED_MCP).await?;
    let call = tokio::spawn(async move {
        let result = mock_db::call(&client, tools::RUN_MIGRATION, json!({"version": "v3"})).await;
        (client, result)
    });
    let parked = gate.extauth.wait_pending(1).await?.remove(0);
    assert_eq!(parked.tool_name, tools::RUN_MIGRATION);
    assert_eq!(parked.requester.as_deref(), Some(USER));
    let decided = gate
        .extauth
        .decide(&parked.id, true, "over mTLS", "bob")
        .await?;
    assert_eq!(decided.outcome, Outcome::Approved);
    let (client, result) = tokio::time::timeout(PATIENCE, call).await??;
    assert_ne!(result?.is_error, Some(true), "{}", gate.gateway_log_tail());
    assert_eq!(gate.db.state().await?.schema_version, "v3");
    client.cancel().await?;
    Ok(())
}
}

/// One gate behind Envoy over mTLS; straight to its Check port: without a client
/// certificate, with one from another CA, and in plaintext, nothing gets through (not even a
/// denial: the connection fails) and nothing parks; with the gateway's own certificate a
/// Check is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_port_refuses_all_but_the_gateways_certificate() -> anyhow::Result<()> {
    let gate = Gate::start_mtls("gate_mtls_refusals", hitl_lab::gateway::Gateway::Envoy).await?;
    let files = gate.gate_tls.clone().expect("started with mTLS");
    let endpoint: Endpoint = gate.extauth.options.grpc_endpoint();
    let request = || {
        post(
            paths::PRIVILEGED_MCP,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            &[],
        )
    };

    // No client certificate: TLS that trusts the gate's CA, with nothing to present.
    let no_cert = {
        use tonic::transport::{Certificate, Channel, ClientTlsConfig};
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(std::fs::read_to_string(&files.ca)?))
            .domain_name(endpoint.host.clone());
        let channel = Channel::from_shared(format!("https://{}:{}", endpoint.host, endpoint.port))?
            .tls_config(config)?;
        let answer = tokio::time::timeout(PATIENCE, async {
            let channel = channel.connect().await?;
            let mut client = AuthorizationClient::new(channel);
            anyhow::Ok(client.check(request()).await?)
        })
        .await?;
        answer.err().map(|e| format!("{e:#}"))
    };
    assert!(
        no_cert.is_some(),
        "no client certificate: the gate answered"
    );
    // A certificate from another CA (one the attacker made) presented to the real gate.
    let foreign = GateTls::issue("mallory's CA")?.write(&gate.log_dir.join("foreign"))?;
    let foreign = GateClientTls {
        ca: files.ca.clone(),
        cert: foreign.client_cert,
        key: foreign.client_key,
    };
    for (what, tls) in [
        ("a client certificate from another CA", Some(&foreign)),
        ("plaintext h2c", None),
    ] {
        let answer = tokio::time::timeout(PATIENCE, check_over(&endpoint, tls, request())).await?;
        assert!(
            answer.is_err(),
            "{what}: the gate answered {answer:?} instead of refusing the connection"
        );
    }
    assert!(gate.extauth.pending().await?.is_empty());

    // The gateway's certificate: the Check is read and answered (housekeeping passes), and a
    // tools/call still needs a verified requester like any other.
    let own = GateClientTls::from(&files);
    let answer = check_over(&endpoint, Some(&own), request()).await?;
    assert_eq!(answer.status.map(|s| s.code), Some(0), "tools/list passes");
    let token = gate.issuer.mint(USER)?;
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_migration","arguments":{"version":"v9"}}}"#;
    let pending = {
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            check_over(
                &endpoint,
                Some(&own),
                verified_post(paths::PRIVILEGED_MCP, call, &token, &[]),
            )
            .await
        })
    };
    let parked = gate.extauth.wait_pending(1).await?.remove(0);
    assert_eq!(parked.requester.as_deref(), Some(USER));
    gate.extauth
        .decide(&parked.id, false, "not today", "bob")
        .await?;
    let answer = tokio::time::timeout(PATIENCE, pending).await???;
    assert_eq!(answer.status.map(|s| s.code), Some(7), "PERMISSION_DENIED");
    Ok(())
}
