//! The built-in sign-in: `GET /signin` (form), `POST /signin` (check, set the session cookie),
//! `POST /signout`. Both POSTs need the CSRF token, so another site cannot sign a reviewer in
//! or out behind their back.

use std::{net::SocketAddr, time::Instant};

use axum::{
    Extension, Form,
    extract::{ConnectInfo, Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode, header},
    response::{AppendHeaders, IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{SharedState, now, pages::with_cookie, viewer};
use crate::{
    render,
    security::{cookies, csrf},
};

#[derive(Debug, Default, Deserialize)]
pub struct FormParams {
    /// Set when an OpenID Connect sign-in's ID token expired.
    #[serde(default)]
    expired: Option<String>,
    /// Set when the browser's session cookie no longer stands for a session.
    #[serde(default)]
    ended: Option<String>,
}

pub async fn form(
    State(state): State<SharedState>,
    headers: HeaderMap,
    params: Result<Query<FormParams>, QueryRejection>,
) -> Response {
    let (viewer, set_cookie) = viewer(&state, &headers);
    let header = state.identity.trusted_header().map(|h| h.as_str());
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let signed_out = viewer.identity.is_none();
    let note = if params.expired.is_some() && signed_out {
        Some(
            "Your sign-in at the identity provider has expired (its ID token is no longer \
             valid): sign in again to decide.",
        )
    } else if params.ended.is_some() && signed_out {
        Some(
            "Your session has ended (you signed out elsewhere, or hitl-ui restarted): sign in \
             again to see the queue.",
        )
    } else {
        None
    };
    with_cookie(
        set_cookie,
        render::signin::page(&viewer, note, header, state.live.len()),
    )
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: Option<String>,
}

pub async fn submit(
    State(state): State<SharedState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let address = peer.map_or(
        std::net::Ipv4Addr::UNSPECIFIED.into(),
        |Extension(ConnectInfo(a))| a.ip(),
    );
    let user = form.username.trim();
    let (viewer, set_cookie) = viewer(&state, &headers);
    let header = state.identity.trusted_header().map(|h| h.as_str());
    let again = |status: StatusCode, error: &str| {
        let page = render::signin::page(&viewer, Some(error), header, state.live.len());
        with_cookie(set_cookie.clone(), (status, page))
    };
    if let Err(e) = csrf::check(&state.signer, &headers, form.csrf.as_deref()) {
        return again(StatusCode::FORBIDDEN, &e.to_string());
    }
    if let Err(wait) = state.throttle.check(user, address, Instant::now()) {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        tracing::warn!(%user, %address, wait_secs = secs, "sign-in refused: too many failures");
        let mut response = again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed sign-ins for this user or from this address. Try again in \
                 {secs} s."
            ),
        );
        if let Ok(value) = header::HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let expires = now() + state.session_ttl.as_secs() as i64;
    match state.identity.sign_in(user, &form.password, expires) {
        Some((user, session)) => {
            state.throttle.succeeded(&user);
            tracing::info!(%user, "signed in");
            let cookie = state
                .cookies
                .set(cookies::SESSION, &session, state.session_ttl);
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        None => {
            state.throttle.failed(user, address, Instant::now());
            tracing::warn!(%user, %address, "sign-in failed");
            again(StatusCode::UNAUTHORIZED, "Wrong user name or password.")
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf: Option<String>,
}

pub async fn sign_out(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    if let Err(e) = csrf::check(&state.signer, &headers, form.csrf.as_deref()) {
        return (StatusCode::FORBIDDEN, e.to_string()).into_response();
    }
    if let Some(identity) = state.identity.resolve(&headers, now()) {
        // Server-side: the cookie stops working here even if a copy of it is replayed.
        state.identity.sign_out(&identity.user);
        tracing::info!(user = %identity.user, "signed out");
    }
    // The provider still knows this browser: the next sign-in there asks for a password, so
    // another reviewer can take the seat.
    let relogin = state.cookies.set_lax(
        cookies::OIDC_RELOGIN,
        "1",
        std::time::Duration::from_secs(600),
    );
    let cleared = AppendHeaders([
        (header::SET_COOKIE, state.cookies.clear(cookies::SESSION)),
        (
            header::SET_COOKIE,
            state.cookies.clear(cookies::OIDC_SESSION),
        ),
        (header::SET_COOKIE, relogin),
    ]);
    (cleared, Redirect::to("/")).into_response()
}
