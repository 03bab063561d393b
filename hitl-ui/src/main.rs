//! `hitl-ui`: the platform reviewer's approval queue. Parses the configuration, starts
//! following hitl-extauth, and serves the pages until SIGTERM / Ctrl-C.

mod config;
mod live;
mod oidc;
mod render;
mod routes;
mod schema;
mod upstream;

#[cfg(test)]
mod test_support;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use axum::http::HeaderName;
use clap::Parser as _;

use hitl_serve::hosts::AllowedHosts;
use hitl_ui::security;
use hitl_wire::extauth::client::AdminClient;

use crate::{
    config::Config,
    live::Live,
    routes::AppState,
    schema::SchemaProbe,
    security::{Credentials, IdentitySource, Signer, cookies, throttle::Throttle},
    upstream::CardMaker,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hitl_serve::logs::init("info")?;
    let config = Config::parse().read_secret_files()?;
    let state = Arc::new(build_state(&config)?);

    tokio::spawn(upstream::follow(
        state.admin.clone(),
        state.live.clone(),
        state.cards.clone(),
    ));

    let addr = SocketAddr::new(config.bind_addr, config.http_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(
        %addr,
        gate = %config.extauth_admin_url,
        sign_in = state.identity.sign_in_enabled(),
        oidc = state.identity.oidc_enabled(),
        trusted_header = ?config.trusted_user_header,
        separation_of_duties = config.separation_of_duties,
        "hitl-ui listening"
    );
    hitl_serve::serve(
        listener,
        routes::router(state),
        &config.http,
        hitl_serve::DEFAULT_MAX_BODY_BYTES,
        shutdown(),
    )
    .await
    .context("serving")
}

fn build_state(config: &Config) -> anyhow::Result<AppState> {
    let signer = Signer::new(config.session_secret.as_deref())
        .context("no randomness for the session key")?;
    if config.session_secret.is_none() {
        tracing::info!("SESSION_SECRET not set: random key, sign-ins end at restart");
    }
    let credentials = load_credentials(config)?;
    let trusted_header = config
        .trusted_user_header
        .as_deref()
        .filter(|h| !h.is_empty())
        .map(|h| HeaderName::try_from(h).with_context(|| format!("TRUSTED_USER_HEADER `{h}`")))
        .transpose()?;
    let oidc = load_oidc(config)?;
    let proxies = hitl_ui::security::identity::parse_proxies(&config.trusted_proxy_addrs)
        .map_err(anyhow::Error::msg)?;
    if trusted_header.is_some() {
        tracing::info!(
            proxies = ?proxies,
            "the trusted user header is believed only from these addresses"
        );
    }
    let mut identity = IdentitySource::new(trusted_header, credentials, signer.clone())
        .with_trusted_proxies(proxies);
    if let Some(provider) = &oidc {
        identity = identity.with_oidc(provider.settings().claims.clone());
    }
    let allowed_hosts = AllowedHosts::parse(&config.allowed_hosts).map_err(anyhow::Error::msg)?;
    if allowed_hosts == AllowedHosts::Any {
        tracing::warn!(
            "ALLOWED_HOSTS=*: any Host is accepted, so a DNS-rebinding page can reach this UI; \
             list the UI's real host names instead"
        );
    } else {
        tracing::info!(allowed_hosts = %allowed_hosts.describe(), "Host allow-list");
    }
    if !identity.configured() {
        tracing::warn!(
            "no REVIEWER_CREDENTIALS(_FILE), OIDC_ISSUER_URL or TRUSTED_USER_HEADER: the queue \
             is read-only"
        );
    }
    let admin = AdminClient::with_timeouts(
        &config.extauth_admin_url,
        config.extauth_admin_token.clone(),
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(10),
    )
    .context("building the HTTP client")?;
    let schema =
        SchemaProbe::new(config.mock_db_state_url.clone()).context("building the HTTP client")?;
    Ok(AppState {
        live: Arc::new(Live::new()),
        admin,
        cards: CardMaker {
            schema: Arc::new(schema),
        },
        identity,
        signer,
        cookies: cookies::Policy {
            secure: config.cookie_secure,
        },
        session_ttl: config.session_ttl,
        separation_of_duties: config.separation_of_duties,
        allowed_hosts,
        throttle: Throttle::default(),
        oidc,
    })
}

/// The OpenID Provider, when OIDC_ISSUER_URL is set: its client id and secret are then
/// required (a half-configured sign-in refuses to start rather than silently not offering it).
fn load_oidc(config: &Config) -> anyhow::Result<Option<oidc::Provider>> {
    use hitl_wire::env::ui as env;
    let Some(issuer) = config.oidc_issuer_url.clone().filter(|i| !i.is_empty()) else {
        return Ok(None);
    };
    let client_id = config
        .oidc_client_id
        .clone()
        .filter(|c| !c.is_empty())
        .with_context(|| {
            format!(
                "{} is set: set {} too",
                env::OIDC_ISSUER_URL,
                env::OIDC_CLIENT_ID
            )
        })?;
    let path = config.oidc_client_secret_file.as_ref().with_context(|| {
        format!(
            "{} is set: set {} too",
            env::OIDC_ISSUER_URL,
            env::OIDC_CLIENT_SECRET_FILE
        )
    })?;
    let client_secret = std::fs::read_to_string(path)
        .with_context(|| {
            format!(
                "reading {} {}",
                env::OIDC_CLIENT_SECRET_FILE,
                path.display()
            )
        })?
        .trim()
        .to_owned();
    anyhow::ensure!(
        !client_secret.is_empty(),
        "{} {} is empty",
        env::OIDC_CLIENT_SECRET_FILE,
        path.display()
    );
    let settings = oidc::Settings {
        issuer: issuer.clone(),
        client_id,
        client_secret,
        redirect_url: config.oidc_redirect_url.clone().filter(|r| !r.is_empty()),
        scopes: config
            .oidc_scopes
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        claims: security::oidc_session::ClaimNames {
            name: config.oidc_name_claim.clone(),
            groups: config.oidc_groups_claim.clone(),
        },
    };
    let provider = oidc::Provider::new(settings).context("OpenID Connect sign-in")?;
    tracing::info!(%issuer, "OpenID Connect sign-in enabled");
    Ok(Some(provider))
}

/// Accounts from REVIEWER_CREDENTIALS and REVIEWER_CREDENTIALS_FILE together.
fn load_credentials(config: &Config) -> anyhow::Result<Option<Credentials>> {
    let mut text = config.reviewer_credentials.clone().unwrap_or_default();
    if let Some(path) = &config.reviewer_credentials_file {
        let file = std::fs::read_to_string(path)
            .with_context(|| format!("reading REVIEWER_CREDENTIALS_FILE {}", path.display()))?;
        text.push('\n');
        text.push_str(&file);
    }
    if text.trim().is_empty() {
        return Ok(None);
    }
    let credentials =
        Credentials::parse(&text).context(hitl_wire::env::ui::REVIEWER_CREDENTIALS)?;
    tracing::info!(accounts = credentials.len(), "built-in sign-in enabled");
    Ok(Some(credentials))
}

async fn shutdown() {
    hitl_serve::shutdown_signal().await;
    tracing::info!("shutting down");
}
