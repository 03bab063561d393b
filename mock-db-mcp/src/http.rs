//! The HTTP surface: both MCP services mounted by path (stateless Streamable HTTP), `/state`,
//! the probes (`/healthz`, `/livez`, `/readyz`) and the optional `/reset` (with its
//! credential). In front of every route but the probes: the `Host` allow-list ([`crate::access`]), then the `Origin` check
//! ([`crate::origin`]); in front of the MCP endpoints also a guard that turns bodies which
//! are not JSON-RPC into JSON-RPC errors (400) instead of transport errors.

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{Query, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use std::sync::Arc;

use hitl_wire::{
    approval::Verifier,
    health,
    mockdb::{StateQuery, paths},
};
use rmcp::{
    model::ClientJsonRpcMessage,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
    },
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::{
    access::{self, ResetToken},
    audit,
    config::Config,
    db::DbError,
    origin::{self, Origins},
    store::Store,
    tools::{PrivilegedTools, PublicTools},
};

/// Largest request body accepted unless `HTTP_MAX_BODY_BYTES` says otherwise: the most the
/// gate forwards (the SQL itself is capped at 8 KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct App {
    store: Store,
    /// `None`: /reset is off.
    reset: Option<ResetToken>,
}

/// What every request is checked against before any route runs.
pub struct Guards {
    pub hosts: hitl_serve::hosts::AllowedHosts,
    pub origins: Origins,
}

/// The exact body bytes of an MCP POST, as received: what an approval token's sha256 must
/// match. Put into the request's extensions by the guard; rmcp hands them on to the tools.
#[derive(Debug, Clone)]
pub struct ReceivedBody(pub Bytes);

/// The body limit, for the JSON-RPC guard's own read of the body.
#[derive(Clone, Copy)]
struct BodyLimit(usize);

/// The whole service. `shutdown` stops the MCP services' in-flight work when cancelled.
/// `approvals`: the verifier /privileged/mcp checks every tool call's approval with (`None`
/// only when running with `--insecure-no-approval-key`). `reset_token`: /reset's credential
/// (`None`: /reset is off).
pub fn router(
    store: Store,
    config: &Config,
    guards: Guards,
    approvals: Option<Arc<Verifier>>,
    reset_token: Option<ResetToken>,
    shutdown: CancellationToken,
) -> Router {
    let body_limit = config.http.body_limit(DEFAULT_MAX_BODY_BYTES);
    let probe = store.clone();
    let mcp_config = StreamableHttpServerConfig::default()
        // Stateless: no session id, every POST self-contained, answered with plain JSON.
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(body_limit)
        .with_cancellation_token(shutdown)
        // Checked for every route in front of rmcp, with the same list ([`access`]).
        .disable_allowed_hosts();

    let public = PublicTools::new(store.clone());
    let privileged = PrivilegedTools::new(store.clone(), approvals);
    let mcp = Router::new()
        .route_service(
            paths::PUBLIC_MCP,
            StreamableHttpService::new(
                move || Ok(public.clone()),
                NeverSessionManager::default().into(),
                mcp_config.clone(),
            ),
        )
        .route_service(
            paths::PRIVILEGED_MCP,
            StreamableHttpService::new(
                move || Ok(privileged.clone()),
                NeverSessionManager::default().into(),
                mcp_config,
            ),
        )
        .layer(middleware::from_fn_with_state(
            BodyLimit(body_limit),
            jsonrpc_guard,
        ));

    let guarded = Router::new()
        .route(paths::STATE, get(state))
        .route(paths::RESET, post(reset))
        .with_state(App {
            store,
            reset: reset_token,
        })
        .merge(mcp)
        // The last layer added runs first: Host, then Origin, then the route.
        .layer(middleware::from_fn_with_state(
            guards.origins,
            origin::check,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::new(guards.hosts),
            access::check_host,
        ));
    Router::new()
        .merge(guarded)
        // Probes name the pod's address as Host; their answers tell a rebinding page nothing.
        .route(paths::HEALTHZ, get(healthz))
        .route(paths::LIVEZ, get(|| async { health::LIVE_TEXT }))
        .route(paths::READYZ, get(ready).with_state(probe))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http())
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// `ready` while the database answers, else 503 with why not.
async fn ready(State(store): State<Store>) -> Response {
    match store.ready().await {
        Ok(()) => health::READY_TEXT.into_response(),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            health::not_ready_text(&format!("the database does not answer: {err}")),
        )
            .into_response(),
    }
}

async fn state(State(app): State<App>, Query(query): Query<StateQuery>) -> Response {
    match app.store.state(query.audit).await {
        Ok(state) => Json(state).into_response(),
        Err(err) => internal_error(err),
    }
}

async fn reset(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some(token) = &app.reset else {
        return (
            StatusCode::NOT_FOUND,
            "reset is disabled: start mock-db-mcp with --enable-reset and --reset-token\n",
        )
            .into_response();
    };
    if !token.admits(&headers) {
        return access::unauthorized();
    }
    match app.store.reset(audit::caller_from_headers(&headers)).await {
        Ok(state) => {
            tracing::info!("reset to the seed");
            Json(state).into_response()
        }
        Err(err) => internal_error(err),
    }
}

fn internal_error(err: DbError) -> Response {
    tracing::error!(%err, "database failure");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": err.to_string() })),
    )
        .into_response()
}

/// In front of the MCP services: a JSON POST whose body is not JSON gets a JSON-RPC parse
/// error, and JSON that is not a JSON-RPC message an invalid-request error, both as HTTP 400
/// with a message saying what was wrong. (rmcp alone answers both with a bare 415.) Other
/// requests — wrong content type, wrong `Accept`, GET/DELETE — pass through to rmcp, which
/// answers them with the right 4xx.
async fn jsonrpc_guard(
    State(BodyLimit(limit)): State<BodyLimit>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST || !is_json(request.headers()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {limit} bytes\n"),
            )
                .into_response();
        }
    };
    if let Err(rejection) = check_jsonrpc(&bytes) {
        return rejection.into_response();
    }
    let mut request = Request::from_parts(parts, Body::from(bytes.clone()));
    request.extensions_mut().insert(ReceivedBody(bytes));
    next.run(request).await
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// A body that is not one JSON-RPC message: answered 400 with a JSON-RPC error.
struct Rejection {
    id: Value,
    code: i64,
    message: String,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": { "code": self.code, "message": self.message },
        });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

/// JSON-RPC's parse error and invalid request codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

fn check_jsonrpc(bytes: &Bytes) -> Result<(), Rejection> {
    // The common case in one pass, straight into rmcp's message type; only a body that
    // fails it is read again, to say why (and an array always is: batches are refused).
    let batch = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if !batch && serde_json::from_slice::<ClientJsonRpcMessage>(bytes).is_ok() {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|err| Rejection {
        id: Value::Null,
        code: PARSE_ERROR,
        message: format!("Parse error: the body is not valid JSON ({err})"),
    })?;
    if value.is_array() {
        return Err(Rejection {
            id: Value::Null,
            code: INVALID_REQUEST,
            message: "Invalid Request: JSON-RPC batches are not supported; send one message per \
                      POST"
                .into(),
        });
    }
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    serde_json::from_value::<ClientJsonRpcMessage>(value).map_err(|err| Rejection {
        id,
        code: INVALID_REQUEST,
        message: format!(
            "Invalid Request: not a JSON-RPC 2.0 message ({err}); expected an object with \
             \"jsonrpc\": \"2.0\", \"method\", \"params\" and, for requests, \"id\""
        ),
    })?;
    Ok(())
}
