//! `mock-db-mcp`: the orders database the agent works on (SQLite), served as two MCP servers
//! by path over Streamable HTTP. Parses configuration, opens the database, serves until
//! SIGTERM or Ctrl-C.

mod access;
mod audit;
mod config;
mod db;
mod http;
mod origin;
mod store;
mod tools;

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser as _;
use hitl_serve::hosts::AllowedHosts;
use hitl_wire::approval::Verifier;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hitl_serve::logs::init("info,rmcp=warn")?;
    let config = config::Config::parse().read_secret_files()?;

    let approvals = match (
        &config.approval_verifying_key_file,
        config.insecure_no_approval_key,
    ) {
        (Some(path), _) => Some(std::sync::Arc::new(
            Verifier::from_file(path).with_context(|| {
                format!("loading the approval verifying key {}", path.display())
            })?,
        )),
        (None, true) => {
            tracing::warn!(
                "INSECURE: no approval verifying key: /privileged/mcp executes tool calls \
                 without any approval, for anyone who reaches this port"
            );
            None
        }
        (None, false) => anyhow::bail!(
            "no approval verifying key: set {} (a file with the gate's hex Ed25519 public \
             key), or {}=1 to execute privileged calls without approval as the seed lab did",
            hitl_wire::env::mockdb::APPROVAL_VERIFYING_KEY_FILE,
            hitl_wire::env::mockdb::INSECURE_NO_APPROVAL_KEY
        ),
    };
    let location = config.location();
    let store = store::Store::open(&location, config.budgets())
        .with_context(|| format!("opening the database ({location:?})"))?;
    let reset = config
        .reset()
        .map_err(anyhow::Error::msg)?
        .map(access::ResetToken::new);
    let hosts = AllowedHosts::parse(&config.allowed_hosts).map_err(anyhow::Error::msg)?;
    if hosts == AllowedHosts::Any {
        tracing::warn!(
            "INSECURE: {}=* answers any Host: DNS-rebinding protection is OFF (a page on any \
             site the user opens could read /state)",
            hitl_wire::env::mockdb::ALLOWED_HOSTS
        );
    }

    let addr = SocketAddr::new(config.bind_addr, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let addr = listener.local_addr().context("the bound address")?;
    let origins =
        origin::Origins::parse(&config.allowed_origins, addr.port()).map_err(anyhow::Error::msg)?;
    let shutdown = CancellationToken::new();
    let allowed_hosts = hosts.describe();
    let guards = http::Guards { hosts, origins };
    let app = http::router(
        store,
        &config,
        guards,
        approvals,
        reset.clone(),
        shutdown.clone(),
    );
    tracing::info!(
        %addr,
        ?location,
        %allowed_hosts,
        reset_enabled = reset.is_some(),
        verifies_approvals = config.approval_verifying_key_file.is_some(),
        "mock-db-mcp listening"
    );
    hitl_serve::serve(
        listener,
        app,
        &config.http,
        http::DEFAULT_MAX_BODY_BYTES,
        async move {
            hitl_serve::shutdown_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        },
    )
    .await
    .context("serving HTTP")?;
    Ok(())
}
