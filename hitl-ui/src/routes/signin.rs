//! The built-in sign-in: `GET /signin` (form), `POST /signin` (check, set the session cookie),
//! `POST /signout`. Both POSTs need the CSRF token, so another site cannot sign a reviewer in
//! or out behind their back.

use axum::{
    Form,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{SharedState, now, pages::with_cookie, viewer};
use crate::{
    render,
    security::{cookies, csrf},
};

pub async fn form(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let (viewer, set_cookie) = viewer(&state, &headers);
    let header = state.identity.trusted_header().map(|h| h.as_str());
    with_cookie(
        set_cookie,
        render::signin::page(&viewer, None, header, state.live.len()),
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
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let (viewer, set_cookie) = viewer(&state, &headers);
    let header = state.identity.trusted_header().map(|h| h.as_str());
    let again = |status: StatusCode, error: &str| {
        let page = render::signin::page(&viewer, Some(error), header, state.live.len());
        with_cookie(set_cookie.clone(), (status, page))
    };
    if let Err(e) = csrf::check(&state.signer, &headers, form.csrf.as_deref()) {
        return again(StatusCode::FORBIDDEN, &e.to_string());
    }
    let expires = now() + state.session_ttl.as_secs() as i64;
    match state
        .identity
        .sign_in(form.username.trim(), &form.password, expires)
    {
        Some((user, session)) => {
            tracing::info!(%user, "signed in");
            let cookie = state
                .cookies
                .set(cookies::SESSION, &session, state.session_ttl);
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        None => {
            tracing::warn!(user = %form.username.trim(), "sign-in failed");
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
    let cookie = state.cookies.clear(cookies::SESSION);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}
