//! `lab-chat`: the chat user's page for the local lab. Parses the configuration and serves
//! the pages (through hitl-serve's limits) until SIGTERM / Ctrl-C.

mod config;
mod conversation;
mod inbox;
mod render;
mod requester;
mod routes;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use clap::Parser as _;
use hitl_serve::hosts::AllowedHosts;
use hitl_ui::security::{Credentials, IdentitySource, Signer, cookies, throttle::Throttle};

use crate::{config::Config, routes::AppState};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hitl_serve::logs::init("info")?;
    let config = Config::parse().read_secret_files()?;
    let state = build_state(&config)?;
    let addr = SocketAddr::new(config.bind_addr, config.http_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let agents: Vec<&str> = config.agents.0.iter().map(|a| a.name.as_str()).collect();
    tracing::info!(%addr, ?agents, "lab-chat listening");
    hitl_serve::serve(
        listener,
        routes::router(Arc::new(state)),
        &config.http,
        hitl_serve::DEFAULT_MAX_BODY_BYTES,
        shutdown(),
    )
    .await
    .context("serving")
}

fn build_state(config: &Config) -> anyhow::Result<AppState> {
    let text = config.chat_credentials.as_deref().with_context(|| {
        format!(
            "set {} or {}: nobody gets past the sign-in without an account",
            hitl_wire::env::chat::CHAT_CREDENTIALS,
            hitl_wire::env::chat::CHAT_CREDENTIALS_FILE
        )
    })?;
    let credentials = Credentials::parse(text).context(hitl_wire::env::chat::CHAT_CREDENTIALS)?;
    tracing::info!(accounts = credentials.len(), "sign-in enabled");
    let signer = Signer::new(config.session_secret.as_deref())
        .context("no randomness for the session key")?;
    let allowed_hosts = AllowedHosts::parse(&config.allowed_hosts).map_err(anyhow::Error::msg)?;
    if allowed_hosts == AllowedHosts::Any {
        tracing::warn!(
            "ALLOWED_HOSTS=*: any Host is accepted, so a DNS-rebinding page can reach this \
             page; list its real host names instead"
        );
    } else {
        tracing::info!(allowed_hosts = %allowed_hosts.describe(), "Host allow-list");
    }
    let issuer = match &config.requester_key_file {
        Some(path) => Some(Arc::new(
            hitl_lab::requester::Issuer::load_file(path)
                .with_context(|| format!("REQUESTER_KEY_FILE {}", path.display()))?,
        )),
        None => {
            tracing::warn!(
                "REQUESTER_KEY_FILE not set: A2A requests carry no requester token, so the \
                 gate denies every tier-2 call"
            );
            None
        }
    };
    Ok(AppState {
        identity: IdentitySource::new(None, Some(credentials), signer.clone())
            .with_session_cookie(routes::SESSION_COOKIE),
        signer,
        cookies: cookies::Policy {
            secure: config.cookie_secure,
        },
        allowed_hosts,
        throttle: Throttle::default(),
        scripted_model: config.scripted_model_url.clone(),
        issuer,
        conversations: Default::default(),
        agents: config.agents.clone(),
        inbox: config.inbox()?,
    })
}

async fn shutdown() {
    hitl_serve::shutdown_signal().await;
    tracing::info!("shutting down");
}
