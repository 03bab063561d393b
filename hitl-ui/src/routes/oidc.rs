//! The OpenID Connect sign-in: `GET /signin/oidc` sends the browser to the provider with a new
//! `state`, `nonce` and PKCE challenge (kept in the `SameSite=Lax` flow cookie, tagged);
//! `GET /oidc/callback` checks `state` against that cookie, exchanges the code, verifies the
//! ID token and sets the session cookie (`SameSite=Strict`, living as long as the token).
//! The callback answers with a page that moves on to the queue itself: a navigation that
//! started at the provider's site would not carry the `Strict` session cookie.

use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{AppendHeaders, IntoResponse, Redirect, Response},
};
use maud::html;
use serde::Deserialize;

use super::{SharedState, now, pages::with_cookie, viewer};
use crate::{
    oidc::{Flow, flow::FLOW_TTL_SECS},
    render,
    security::cookies,
};

/// The sign-in page again, with `error`.
fn again(state: &SharedState, headers: &HeaderMap, status: StatusCode, error: &str) -> Response {
    let (viewer, set_cookie) = viewer(state, headers);
    let header = state.identity.trusted_header().map(|h| h.as_str());
    let page = render::signin::page(&viewer, Some(error), header, state.live.len());
    with_cookie(set_cookie, (status, page))
}

/// `http(s)://<Host>`: the origin the browser used (the `Host` is on the allow-list).
fn origin(state: &SharedState, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let scheme = if state.cookies.secure {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}"))
}

pub async fn start(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let Some(provider) = &state.oidc else {
        return (StatusCode::NOT_FOUND, "no OpenID Provider is configured\n").into_response();
    };
    let Some(origin) = origin(&state, &headers) else {
        return again(&state, &headers, StatusCode::BAD_REQUEST, "No Host header.");
    };
    let fresh = cookies::get(&headers, cookies::OIDC_RELOGIN).is_some();
    match provider.start(&provider.redirect_for(&origin), fresh).await {
        Ok((url, flow)) => {
            let sealed = flow.seal(&state.signer, now());
            let cookie = state.cookies.set_lax(
                cookies::OIDC_FLOW,
                &sealed,
                std::time::Duration::from_secs(FLOW_TTL_SECS as u64),
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "OpenID Connect sign-in could not start");
            again(&state, &headers, StatusCode::BAD_GATEWAY, &e.to_string())
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CallbackParams {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

pub async fn callback(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let Some(provider) = &state.oidc else {
        return (StatusCode::NOT_FOUND, "no OpenID Provider is configured\n").into_response();
    };
    if let Some(error) = &params.error {
        let why = params.error_description.as_deref().unwrap_or(error);
        tracing::warn!(%error, %why, "the identity provider refused the sign-in");
        let text = format!("The identity provider did not sign you in: {why}");
        return again(&state, &headers, StatusCode::UNAUTHORIZED, &text);
    }
    let cookie = cookies::get(&headers, cookies::OIDC_FLOW);
    let flow = match Flow::open(
        &state.signer,
        cookie,
        params.state.as_deref().unwrap_or_default(),
        now(),
    ) {
        Ok(flow) => flow,
        Err(e) => return again(&state, &headers, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let code = params.code.as_deref().unwrap_or_default();
    let signed_in = match provider.finish(&flow, code).await {
        Ok(signed_in) => signed_in,
        Err(e) => {
            tracing::warn!(error = %e, "OpenID Connect sign-in refused");
            return again(&state, &headers, StatusCode::UNAUTHORIZED, &e.to_string());
        }
    };
    let reviewer = &signed_in.reviewer;
    // The cookie outlives the token (which ends the session) so that, once it has expired,
    // the page can say so rather than greet a stranger.
    let token_lives = (reviewer.expires - now()).max(1) as u64;
    let lives = state.session_ttl.as_secs().max(token_lives);
    let session = state
        .identity
        .oidc_session_for(&reviewer.user, &signed_in.id_token);
    tracing::info!(user = %reviewer.user, groups = ?reviewer.groups, "signed in at the identity provider");
    let set = AppendHeaders([
        (
            header::SET_COOKIE,
            state.cookies.set(
                cookies::OIDC_SESSION,
                &session,
                std::time::Duration::from_secs(lives),
            ),
        ),
        (header::SET_COOKIE, state.cookies.clear(cookies::OIDC_FLOW)),
        (
            header::SET_COOKIE,
            state.cookies.clear(cookies::OIDC_RELOGIN),
        ),
    ]);
    let page = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="0; url=/";
                title { "Signed in · hitl-ui" }
            }
            body {
                p { "Signed in as " strong { (reviewer.user) } ". " a href="/" { "Continue to the queue" } }
            }
        }
    };
    (set, page).into_response()
}
