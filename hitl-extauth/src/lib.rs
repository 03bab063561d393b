//! hitl-extauth: the tier-2 gate. An Envoy ext_authz gRPC server that classifies every
//! request on a gated route, passes MCP housekeeping, denies what it cannot prove harmless,
//! and parks each `tools/call` until a reviewer decides on the admin API — with every park
//! and its outcome in a durable SQLite audit trail.
//!
//! Modules, in the order a request meets them: [`grpc`] (the Envoy face) → [`request`]
//! (unpacking the check, with [`requester`]: who the gate verified) → [`classify`] (pass / deny / park) → [`gate`] (parking, decisions,
//! timeouts, cancellation) over [`approval_request`] (one request per action), [`park`],
//! [`audit`], [`events`] and [`metrics`]; [`admin`] is the reviewer's HTTP API; [`config`] the
//! command line, [`tls`] the Check port's optional mTLS.

pub mod admin;
pub mod approval_request;
pub mod classify;
pub mod config;
pub mod denials;
pub mod events;
pub mod gate;
pub mod grpc;
pub mod health;
pub mod metrics;
pub mod notify;
pub mod park;
pub mod request;
pub mod requester;
pub mod reviewer;
pub mod store;
pub mod tls;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use hitl_wire::approval::Signer;
use tonic_health::pb::health_server::HealthServer;

use crate::{
    config::{AdminAccess, Config},
    gate::{Gate, Settings},
    grpc::AuthService,
    park::Capacity,
    store::Store,
};

/// The public half of the approval signing key `config` names, as hex: what the MCP server
/// verifies approval tokens with (`--print-verifying-key`).
pub fn verifying_key_hex(config: &Config) -> anyhow::Result<String> {
    let path = config
        .approval_signing_key_file
        .as_deref()
        .with_context(|| {
            format!(
                "no approval signing key to print the public half of: set {}",
                hitl_wire::env::extauth::APPROVAL_SIGNING_KEY_FILE
            )
        })?;
    let signer = Signer::from_file(path)
        .with_context(|| format!("loading the approval signing key {}", path.display()))?;
    Ok(signer.verifying_key_hex())
}

/// Open the audit trail, then serve gRPC and the admin API until SIGINT/SIGTERM.
///
/// On a signal the process stops at once rather than waiting for parked calls (which may
/// wait for minutes): their connections drop, Envoy denies them (`failure_mode_allow:
/// false`), and the next start closes whatever was still pending as `lost`.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let location = config.store_location()?;
    let (audit, opened) = Store::open_as(&location, config.replica_name.as_deref())
        .with_context(|| format!("opening the store {location:?}"))?;
    if opened.lost > 0 {
        tracing::warn!(
            lost = opened.lost,
            "closed calls left pending by the previous run as lost"
        );
    }
    let mut warnings = Vec::new();
    let signer = match (
        &config.approval_signing_key_file,
        config.insecure_no_approval_key,
    ) {
        (Some(path), _) => Some(
            Signer::from_file(path)
                .with_context(|| format!("loading the approval signing key {}", path.display()))?,
        ),
        (None, true) => {
            warnings.push(
                "INSECURE: no approval signing key: approved calls carry no token, and a \
                 backend that verifies approvals refuses them",
            );
            None
        }
        (None, false) => anyhow::bail!(
            "no approval signing key: set {} (a file with a hex Ed25519 seed), or {}=1 to run \
             without one as the seed lab did",
            hitl_wire::env::extauth::APPROVAL_SIGNING_KEY_FILE,
            hitl_wire::env::extauth::INSECURE_NO_APPROVAL_KEY
        ),
    };
    // Logged at start: the public half, for whoever sets up the MCP server's verifying key.
    let verifying_key = signer
        .as_ref()
        .map(Signer::verifying_key_hex)
        .unwrap_or_else(|| "none".to_owned());
    let verifier = config.requester_verifier()?;
    let grpc_tls = match config.grpc_tls()? {
        Some(tls) => Some(tls.server_config()?),
        None => None,
    };
    let access = config.admin_access();
    match access {
        AdminAccess::Token(_) => {}
        AdminAccess::Open => warnings.push(
            "INSECURE: the admin API is open without a token: anyone who reaches it can \
             approve a parked call; reviewer names are recorded as unverified",
        ),
        AdminAccess::Closed => warnings.push(
            "the admin API's reviewer endpoints are off: set ADMIN_TOKEN (or \
             INSECURE_OPEN_ADMIN=1); parked calls can only expire",
        ),
    }
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let gate = Gate::start(
        Settings {
            allow: config.allowed_methods.clone(),
            park_timeout: config.park_timeout(),
            capacity: Capacity {
                total: config.max_parked,
                per_requester: usize::try_from(config.max_parked_per_requester)
                    .unwrap_or(usize::MAX),
                bytes: config.max_parked_bytes,
            },
            require_verified_requester: config.require_verified_requester,
            verifier,
            signer,
            reviewer_verified: !matches!(access, AdminAccess::Open),
            clocks: approval_request::Clocks {
                ttl: std::time::Duration::from_secs(config.approval_ttl_sec),
                window: std::time::Duration::from_secs(config.approval_window_sec),
                reject_hold: std::time::Duration::from_secs(config.rejection_hold_sec),
            },
            notify: config.notify_receivers()?,
            policy: config.approval_policy()?,
            reviewers: config.reviewer_tokens()?,
        },
        audit.clone(),
        opened.requests,
    );
    gate.metrics().lost(opened.lost as u64);
    if !config.require_verified_requester {
        tracing::warn!(
            "REQUIRE_VERIFIED_REQUESTER=false: tool calls WITHOUT a requester token the gate \
             verified are parked instead of denied; their cards say \"unverified\" and \
             separation of duties cannot be checked for them. Never run a real gate like this."
        );
    }

    let grpc_addr = SocketAddr::new(config.bind_addr, config.grpc_port);
    let http_addr = SocketAddr::new(config.bind_addr, config.http_port);
    let grpc_incoming = tonic::transport::server::TcpIncoming::bind(grpc_addr)
        .with_context(|| format!("binding the gRPC port {grpc_addr}"))?
        .with_nodelay(Some(true));
    let http_listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding the admin HTTP port {http_addr}"))?;
    tracing::info!(
        %grpc_addr, %http_addr, park_timeout_sec = config.park_timeout_sec,
        allowed_methods = %config.allowed_methods, store = ?location,
        admin_token = config.admin_token().is_some(),
        approval_verifying_key = %verifying_key,
        require_verified_requester = config.require_verified_requester,
        grpc_mtls = grpc_tls.is_some(), "hitl-extauth listening"
    );

    let mut grpc = tonic::transport::Server::builder();
    if let Some(tls) = grpc_tls {
        grpc = grpc.tls_config(tls).context(
            "the Check port's TLS files do not make a server identity (does the key belong \
             to the certificate?)",
        )?;
    }
    let grpc = grpc
        // One Envoy connection carries every parked call as a stream: no stream cap.
        .max_concurrent_streams(None)
        .add_service(AuthorizationServer::new(AuthService::with_deny_style(
            Arc::clone(&gate),
            config.deny_response,
        )))
        .add_service(HealthServer::new(health::HealthService::new(Arc::clone(
            &gate,
        ))))
        .serve_with_incoming(grpc_incoming);
    let admin = admin::router(Arc::clone(&gate), access, warnings);
    let http = hitl_serve::serve(
        http_listener,
        admin,
        &config.http,
        hitl_serve::DEFAULT_MAX_BODY_BYTES,
        std::future::pending(),
    );

    tokio::select! {
        result = grpc => result.context("gRPC server failed")?,
        result = http => result.context("admin HTTP server failed")?,
        () = hitl_serve::shutdown_signal() => tracing::info!("shutting down"),
    }
    audit.flush().await;
    Ok(())
}
