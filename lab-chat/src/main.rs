//! `lab-chat`: the chat user's page for the local lab. Parses the configuration and serves
//! the pages until SIGTERM / Ctrl-C.

mod config;
mod conversation;
mod render;
mod requester;
mod routes;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use clap::Parser as _;
use hitl_ui::security::{Credentials, Signer, cookies};
use tracing_subscriber::EnvFilter;

use crate::{config::Config, routes::AppState};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    let state = AppState {
        credentials: Credentials::parse(&config.chat_credentials).context("CHAT_CREDENTIALS")?,
        signer: Signer::new(config.session_secret.as_deref())
            .context("no randomness for the session key")?,
        cookies: cookies::Policy {
            secure: config.cookie_secure,
        },
        scripted_model: config.scripted_model_url.clone(),
        issuer: match &config.requester_key_file {
            Some(path) => Some(Arc::new(hitl_harness::requester::Issuer::load_file(path)?)),
            None => {
                tracing::warn!("REQUESTER_KEY_FILE not set: no requester tokens, tier 2 denies");
                None
            }
        },
        conversations: Default::default(),
        agents: config.agents.clone(),
    };
    let addr = SocketAddr::new(config.bind_addr, config.http_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let agents: Vec<&str> = config.agents.0.iter().map(|a| a.name.as_str()).collect();
    tracing::info!(%addr, ?agents, accounts = state.credentials.len(), "lab-chat listening");
    axum::serve(listener, routes::router(Arc::new(state)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")
}
