//! The HTTP surface: pages, the browser's live stream, decisions, sign-in, assets, health.
//! Every response carries a strict Content-Security-Policy: scripts and styles only from this
//! origin, no inline script, no framing.

mod assets;
mod decide;
mod live;
mod pages;
mod signin;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, header},
    middleware,
    response::Response,
    routing::{get, post},
};

use crate::{
    admin::AdminClient,
    live::Live,
    render::Viewer,
    security::{IdentitySource, Signer, cookies, csrf},
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
}

pub type SharedState = Arc<AppState>;

pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/", get(pages::queue))
        .route("/history", get(pages::history))
        .route("/live", get(live::stream))
        .route("/calls/{id}/decide", post(decide::decide))
        .route("/signin", get(signin::form).post(signin::submit))
        .route("/signout", post(signin::sign_out))
        .route("/assets/{file}", get(assets::serve))
        .route("/healthz", get(|| async { "ok" }))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
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
    };
    (viewer, set_cookie)
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests;
