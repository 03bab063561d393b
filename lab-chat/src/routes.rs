//! The HTTP surface: sign-in, the chat page, its event stream (SSE), the user's actions,
//! assets, health. Every request but the probes (`/healthz`, `/livez`, `/readyz`) must name
//! an allowed `Host` (DNS rebinding); everything but the sign-in form and the assets needs a
//! signed-in user; every state-changing request needs the same origin and the CSRF token;
//! every response carries a strict Content-Security-Policy.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Extension, Form, Json, Router,
    extract::{ConnectInfo, Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{
        IntoResponse, Redirect, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::{Stream, StreamExt as _};
use hitl_lab::components::scripted_model::Control;
use hitl_scenes::a2a::{Client, hitl::Decision};
use hitl_serve::hosts::AllowedHosts;
use hitl_ui::security::{IdentitySource, Signer, cookies, csrf, throttle::Throttle};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio_stream::wrappers::BroadcastStream;

use crate::{
    config::{Agents, SESSION_TTL},
    conversation::{Command, Conversation},
    render, requester,
};

/// This page's own cookie names: cookies are shared by every port of a host, so the
/// reviewer's page on the same machine must not read or overwrite them.
pub const SESSION_COOKIE: &str = "lab_chat_session";
pub const CSRF_COOKIE: &str = "lab_chat_csrf";

/// Everything the handlers share.
pub struct AppState {
    pub agents: Agents,
    /// The built-in sign-in (no trusted header: the chat user always signs in here).
    pub identity: IdentitySource,
    pub signer: Signer,
    pub cookies: cookies::Policy,
    pub allowed_hosts: AllowedHosts,
    pub throttle: Throttle,
    pub scripted_model: Option<String>,
    pub issuer: Option<Arc<hitl_lab::requester::Issuer>>,
    /// One conversation per (user, agent).
    pub conversations: Mutex<HashMap<(String, String), Arc<Conversation>>>,
    /// The gate's notifications, when this page receives them (`NOTIFY_SECRET_FILE`).
    pub inbox: Option<crate::inbox::Inbox>,
}

pub(crate) type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    let guarded = Router::new()
        .route("/", get(page))
        .route("/signin", get(signin_form).post(signin))
        .route("/signout", post(signout))
        .route("/events", get(events))
        .route("/say", post(say))
        .route("/decide", post(decide))
        .route("/answer", post(answer))
        .route("/new", post(new_chat))
        .route("/notifications", get(crate::inbox::list))
        .route("/assets/{file}", get(asset))
        .route_layer(middleware::from_fn_with_state(state.clone(), allowed_host));
    Router::new()
        .merge(guarded)
        // Probes may name any address as Host: health is open to any.
        // Nothing it needs can go away after start: ready once it serves.
        .merge(hitl_serve::probes::serving())
        // The gate's webhooks: checked by their signature, not a session.
        .route("/notify", post(crate::inbox::receive))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// Refuse a request whose `Host` is not on `ALLOWED_HOSTS` (421, saying what to configure).
async fn allowed_host(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if state.allowed_hosts.allows(request.headers(), request.uri()) {
        return next.run(request).await;
    }
    hitl_serve::hosts::misdirected("lab-chat", request.headers(), request.uri())
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The signed-in user, if the session cookie is genuine, unexpired, not signed out and still
/// an account.
pub(crate) fn user(state: &AppState, headers: &HeaderMap) -> Option<String> {
    state.identity.resolve(headers, now()).map(|i| i.user)
}

/// This browser's CSRF token, and the cookie to set if it has none yet.
fn csrf_token(state: &AppState, headers: &HeaderMap) -> (String, Option<String>) {
    match cookies::get(headers, CSRF_COOKIE) {
        Some(existing) if !existing.is_empty() => (csrf::token_for(&state.signer, existing), None),
        _ => {
            let fresh = csrf::new_cookie().unwrap_or_default();
            let set = state
                .cookies
                .set(CSRF_COOKIE, &fresh, Duration::from_secs(30 * 24 * 3600));
            (csrf::token_for(&state.signer, &fresh), Some(set))
        }
    }
}

fn with_cookie(set: Option<String>, body: impl IntoResponse) -> Response {
    match set {
        Some(cookie) => ([(header::SET_COOKIE, cookie)], body).into_response(),
        None => body.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct AgentQuery {
    agent: Option<String>,
}

async fn page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<AgentQuery>,
) -> Response {
    let Some(user) = user(&state, &headers) else {
        return Redirect::to(signin_path(&state, &headers)).into_response();
    };
    let (token, set) = csrf_token(&state, &headers);
    let agent = state.agents.pick(q.agent.as_deref()).name.clone();
    with_cookie(set, render::chat(&token, &user, &state.agents, &agent))
}

/// Where a request without a live session is sent: the sign-in form, saying the session
/// ended when the browser still holds a session cookie (signed out elsewhere, expired, or
/// lab-chat restarted with a new key).
fn signin_path(state: &AppState, headers: &HeaderMap) -> &'static str {
    match state.identity.holds_session_cookie(headers) {
        true => "/signin?ended=1",
        false => "/signin",
    }
}

/// What a page or an action says when the browser's session is no longer valid.
pub const SESSION_ENDED: &str = "Your session has ended (it expired, you signed out, or the \
    lab chat restarted): sign in again.";

#[derive(Debug, Default, Deserialize)]
struct SignInQuery {
    ended: Option<String>,
}

async fn signin_form(
    State(state): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<SignInQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if user(&state, &headers).is_some() {
        return Redirect::to("/").into_response();
    }
    let (token, set) = csrf_token(&state, &headers);
    let ended = query.is_ok_and(|Query(q)| q.ended.is_some());
    with_cookie(set, render::signin(&token, ended.then_some(SESSION_ENDED)))
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: Option<String>,
}

async fn signin(
    State(state): State<Shared>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let address = peer.map_or(
        std::net::Ipv4Addr::UNSPECIFIED.into(),
        |Extension(ConnectInfo(a))| a.ip(),
    );
    let name = form.username.trim();
    let (token, set) = csrf_token(&state, &headers);
    let again = |status: StatusCode, error: &str| {
        with_cookie(set.clone(), (status, render::signin(&token, Some(error))))
    };
    if let Err(e) = csrf::check_cookie(&state.signer, &headers, form.csrf.as_deref(), CSRF_COOKIE) {
        return again(StatusCode::FORBIDDEN, &e.to_string());
    }
    if let Err(wait) = state.throttle.check(name, address, Instant::now()) {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        tracing::warn!(user = %name, %address, wait_secs = secs, "sign-in refused: too many failures");
        let mut response = again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed sign-ins for this user or from this address. Try again in \
                 {secs} s."
            ),
        );
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let expires = now() + SESSION_TTL.as_secs() as i64;
    match state.identity.sign_in(name, &form.password, expires) {
        Some((user, value)) => {
            state.throttle.succeeded(&user);
            tracing::info!(%user, "signed in");
            let cookie = state.cookies.set(SESSION_COOKIE, &value, SESSION_TTL);
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        None => {
            state.throttle.failed(name, address, Instant::now());
            tracing::warn!(user = %name, %address, "sign-in failed");
            again(StatusCode::UNAUTHORIZED, "Wrong user name or password.")
        }
    }
}

#[derive(Debug, Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf: Option<String>,
}

async fn signout(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    if let Err(e) = csrf::check_cookie(&state.signer, &headers, form.csrf.as_deref(), CSRF_COOKIE) {
        return (StatusCode::FORBIDDEN, e.to_string()).into_response();
    }
    if let Some(user) = user(&state, &headers) {
        // Server-side: the cookie stops working even if a copy of it is replayed.
        state.identity.sign_out(&user);
        tracing::info!(%user, "signed out");
    }
    let cookie = state.cookies.clear(SESSION_COOKIE);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/signin")).into_response()
}

/// The user's conversation with `agent`, started on first use.
async fn conversation(state: &AppState, user: &str, agent: Option<&str>) -> Arc<Conversation> {
    let agent = state.agents.pick(agent);
    let key = (user.to_owned(), agent.name.clone());
    let mut all = state.conversations.lock().await;
    all.entry(key)
        .or_insert_with(|| start(state, user, &agent.url))
        .clone()
}

fn start(state: &AppState, user: &str, url: &str) -> Arc<Conversation> {
    let client = requester::authorize(Client::new(url), state.issuer.as_ref(), user);
    Conversation::start(client, state.scripted_model.as_deref().map(Control::new))
}

async fn events(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<AgentQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, StatusCode> {
    let user = user(&state, &headers).ok_or(StatusCode::UNAUTHORIZED)?;
    let conv = conversation(&state, &user, q.agent.as_deref()).await;
    let (past, next) = conv.follow();
    // First which conversation this is (a page that followed another one — before a restart
    // or a "New chat" elsewhere — reloads), and to retry within a second once cut off.
    let hello = SseEvent::default()
        .event("conversation")
        .data(conv.id())
        .retry(Duration::from_secs(1));
    let live = BroadcastStream::new(next).filter_map(|e| async move { e.ok() });
    let entries = futures::stream::iter(past)
        .chain(live)
        .map(|entry| SseEvent::default().json_data(&entry).unwrap_or_default());
    let stream = futures::stream::once(async { hello })
        .chain(entries)
        .map(Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A signed-in, same-origin request with this browser's CSRF token. The session is checked
/// first: a page left open across a restart has a dead session *and* a stale CSRF token, and
/// the session is what the user must fix (the page sends them to sign in on a 401).
fn actor(state: &AppState, headers: &HeaderMap) -> Result<String, (StatusCode, String)> {
    let user = user(state, headers).ok_or_else(|| {
        let why = match signin_path(state, headers) {
            "/signin" => "Sign in first.",
            _ => SESSION_ENDED,
        };
        (StatusCode::UNAUTHORIZED, why.to_owned())
    })?;
    csrf::check_cookie(&state.signer, headers, None, CSRF_COOKIE)
        .map_err(|e| (StatusCode::FORBIDDEN, e.to_string()))?;
    Ok(user)
}

#[derive(Debug, Deserialize)]
struct SayBody {
    agent: Option<String>,
    text: String,
}

async fn say(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<SayBody>,
) -> Result<StatusCode, (StatusCode, String)> {
    let user = actor(&state, &headers)?;
    let text = body.text.trim();
    if text.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "empty message".into()));
    }
    let conv = conversation(&state, &user, body.agent.as_deref()).await;
    queue(&conv, Command::Say(text.to_owned())).await
}

#[derive(Debug, Deserialize)]
struct DecideBody {
    agent: Option<String>,
    id: String,
    approve: bool,
    #[serde(default)]
    reason: String,
}

async fn decide(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<DecideBody>,
) -> Result<StatusCode, (StatusCode, String)> {
    let user = actor(&state, &headers)?;
    let decision = if body.approve {
        Decision::Approve
    } else {
        Decision::Reject {
            reason: body.reason.trim().to_owned(),
        }
    };
    let conv = conversation(&state, &user, body.agent.as_deref()).await;
    queue(
        &conv,
        Command::Decide {
            id: body.id,
            decision,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
struct AnswerBody {
    agent: Option<String>,
    id: String,
    answers: Vec<String>,
}

async fn answer(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<AnswerBody>,
) -> Result<StatusCode, (StatusCode, String)> {
    let user = actor(&state, &headers)?;
    let conv = conversation(&state, &user, body.agent.as_deref()).await;
    queue(
        &conv,
        Command::Answer {
            id: body.id,
            answers: body.answers,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
struct NewBody {
    agent: Option<String>,
}

/// Forget the conversation with this agent; the next message starts a new one.
async fn new_chat(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<NewBody>,
) -> Result<StatusCode, (StatusCode, String)> {
    let user = actor(&state, &headers)?;
    let agent = state.agents.pick(body.agent.as_deref());
    let fresh = start(&state, &user, &agent.url);
    state
        .conversations
        .lock()
        .await
        .insert((user, agent.name.clone()), fresh);
    Ok(StatusCode::NO_CONTENT)
}

async fn queue(conv: &Conversation, command: Command) -> Result<StatusCode, (StatusCode, String)> {
    if conv.send(command).await {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the conversation ended".into(),
        ))
    }
}

const CSS: &str = include_str!("../assets/chat.css");
const JS: &str = include_str!("../assets/chat.js");

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "chat.css" => (CSS, "text/css; charset=utf-8"),
        "chat.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}
