//! The HTTP surface: pages, the browser's live stream, decisions, sign-in, assets, health.
//! Every response carries a strict Content-Security-Policy: scripts and styles only from this
//! origin, no inline script, no framing. Every request but the probes must name an allowed
//! `Host` (DNS rebinding); the queue, history and live stream need a signed-in reviewer.

mod assets;
mod decide;
mod live;
mod oidc;
mod pages;
mod probes;
mod signin;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};

use hitl_serve::hosts::AllowedHosts;
use hitl_wire::{extauth::client::AdminClient, health};

use crate::{
    live::{Card, Live},
    render::{self, Viewer, policy},
    security::{
        Identity, IdentitySource, Signer, cookies, csrf, identity::Resolved, throttle::Throttle,
    },
    upstream::CardMaker,
};

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub live: Arc<Live>,
    pub admin: AdminClient,
    pub cards: CardMaker,
    pub identity: IdentitySource,
    pub signer: Signer,
    pub cookies: cookies::Policy,
    pub session_ttl: Duration,
    pub separation_of_duties: bool,
    pub allowed_hosts: AllowedHosts,
    pub throttle: Throttle,
    /// Reviewers sign in at this OpenID Provider too.
    pub oidc: Option<crate::oidc::Provider>,
}

pub type SharedState = Arc<AppState>;

pub fn router(state: SharedState) -> Router {
    let reading = Router::new()
        .route("/", get(pages::queue))
        .route("/history", get(pages::history))
        .route("/calls/{id}", get(pages::call))
        .route("/live", get(live::stream))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_reviewer,
        ));
    let guarded = Router::new()
        .merge(reading)
        .route("/calls/{id}/decide", post(decide::decide))
        .route("/signin", get(signin::form).post(signin::submit))
        .route("/signout", post(signin::sign_out))
        .route("/signin/oidc", get(oidc::start))
        .route(crate::oidc::CALLBACK_PATH, get(oidc::callback))
        .route("/assets/{file}", get(assets::serve))
        .route_layer(middleware::from_fn_with_state(state.clone(), allowed_host));
    Router::new()
        .merge(guarded)
        // Probes name the pod's address as Host: health is open to any.
        .route(health::HEALTHZ, get(|| async { "ok" }))
        .route(health::LIVEZ, get(probes::live))
        .route(health::READYZ, get(probes::ready))
        .layer(middleware::map_response(security_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            untrusted_user_header,
        ))
        .with_state(state)
}

/// The trusted user header names a reviewer only on the auth proxy's connections: from
/// anyone else (who reached hitl-ui around the proxy) it is taken off the request, and logged.
async fn untrusted_user_header(
    State(state): State<SharedState>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(name) = state.identity.trusted_header()
        && request.headers().contains_key(name)
    {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<hitl_serve::Peer>>()
            .map(|info| info.0.ip());
        if !state.identity.header_believed_from(peer) {
            tracing::warn!(
                ?peer, header = %name,
                "the trusted user header came from an address not in {}: ignored",
                hitl_wire::env::ui::TRUSTED_PROXY_ADDRS
            );
            request.headers_mut().remove(name);
        }
    }
    next.run(request).await
}

/// Refuse a request whose `Host` is not on `ALLOWED_HOSTS` (421, saying what to configure).
async fn allowed_host(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    if state.allowed_hosts.allows(request.headers(), request.uri()) {
        return next.run(request).await;
    }
    hitl_serve::hosts::misdirected("hitl-ui", request.headers(), request.uri())
}

/// The queue, history and live stream are for reviewers only: a page sends a visitor who is
/// not signed in to the sign-in form (or, without a built-in sign-in, answers 401 saying
/// why); the live stream answers 401.
async fn require_reviewer(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    let expired = match state.identity.resolve_why(request.headers(), now()) {
        Resolved::Reviewer(_) => return next.run(request).await,
        Resolved::Expired { .. } => true,
        Resolved::Nobody => false,
    };
    if request.uri().path() == "/live" {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "sign in first: the live queue is for signed-in reviewers\n",
        )
            .into_response();
    }
    if state.identity.any_sign_in() {
        // A session cookie that no longer stands for a session: signed out elsewhere, or
        // hitl-ui restarted with a new key. The sign-in form says so.
        let ended = state.identity.holds_session_cookie(request.headers());
        let to = if expired {
            "/signin?expired=1"
        } else if ended {
            "/signin?ended=1"
        } else {
            "/signin"
        };
        return Redirect::to(to).into_response();
    }
    let (viewer, set_cookie) = viewer(&state, request.headers());
    let header = state.identity.trusted_header().map(|h| h.as_str());
    let page = render::signin::page(&viewer, None, header, 0);
    pages::with_cookie(set_cookie, (StatusCode::UNAUTHORIZED, page))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    // Same-origin requests keep their Referer (a fallback for the CSRF origin check).
    set(headers, "referrer-policy", "same-origin");
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Who is looking, and this browser's CSRF cookie: the existing one, or a new one to set.
pub(crate) fn viewer(state: &AppState, headers: &HeaderMap) -> (Viewer, Option<String>) {
    let (cookie, set_cookie) = match cookies::get(headers, cookies::CSRF) {
        Some(existing) if !existing.is_empty() => (existing.to_owned(), None),
        _ => {
            // The OS RNG failing is not something a page view can recover from; an empty
            // cookie makes every later token check fail closed.
            let fresh = csrf::new_cookie().unwrap_or_default();
            let set = state
                .cookies
                .set(cookies::CSRF, &fresh, Duration::from_secs(30 * 24 * 3600));
            (fresh, Some(set))
        }
    };
    let viewer = Viewer {
        identity: state.identity.resolve(headers, now()),
        csrf_token: csrf::token_for(&state.signer, &cookie),
        sign_in_enabled: state.identity.sign_in_enabled(),
        identity_configured: state.identity.configured(),
        oidc_issuer: state.oidc.as_ref().map(|p| p.settings().issuer.clone()),
    };
    (viewer, set_cookie)
}

/// `card` as `viewer` sees it: with the decide form the policy allows them.
pub(crate) fn personal_html(state: &AppState, card: &Card, viewer: Option<&Identity>) -> String {
    let verdict = policy::verdict(&card.call, viewer, |name| state.live.static_groups(name));
    policy::personalise(&card.html, &card.call, &verdict)
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests;
