//! The admin HTTP API: the reviewer's queue (`/pending`, with large bodies cut to a preview,
//! and `/pending/{id}`, one call whole), its decisions (`/decide/{id}`), the audit trail
//! (`/history`), the live feed (`/events`), the operator's `/metrics`, `/healthz`, `/livez`
//! and `/readyz`, and the API's own OpenAPI 3.1 document (`/openapi.json`).
//!
//! Everything that shows request bodies or changes state needs `Authorization: Bearer
//! <ADMIN_TOKEN>` (compared in constant time). Without a token those endpoints are not
//! served (503), unless hitl-extauth runs with `--insecure-open-admin`. The probes and
//! `/metrics` stay open; `/healthz` lists every insecure setting.

mod sse;

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, Request, State, rejection::QueryRejection},
    handler::Handler,
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{MethodFilter, MethodRouter, on},
};
use hitl_wire::extauth::{
    ApiError, DecideAnswer, DecideRequest, HistoryPage, HistoryQuery, ParkedCall, PendingList,
    PendingQuery,
    openapi::{self, Access},
    paths,
};

use crate::{
    config::AdminAccess,
    gate::{DecideError, Gate},
    store::StoreError,
};

/// The admin API router: one route per operation of the admin API's OpenAPI document
/// ([`openapi::routes`], served at `/openapi.json`), behind the token where the document
/// says so. `warnings` (insecure settings) are shown by `/healthz`.
pub fn router(gate: Arc<Gate>, access: AdminAccess, warnings: Vec<&'static str>) -> Router {
    let mut open = Router::new();
    let mut protected = Router::new();
    for route in served(&warnings) {
        match route.access {
            Access::Open => open = open.route(route.path, route.handler),
            Access::Token => protected = protected.route(route.path, route.handler),
        }
    }
    let protected = protected.route_layer(middleware::from_fn_with_state(
        Arc::new(access),
        require_token,
    ));
    open.merge(protected).with_state(gate)
}

/// One route the router serves: what [`openapi::routes`] lists, with its handler.
struct Served {
    // What the unit test compares with the document (the handler carries it for the router).
    #[cfg_attr(not(test), allow(dead_code))]
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<Arc<Gate>>,
}

fn at<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> Served
where
    H: Handler<T, Arc<Gate>>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("GET and POST are filters");
    Served {
        method,
        path,
        access,
        handler: on(filter, handler),
    }
}

/// Every route of the admin API.
fn served(warnings: &[&str]) -> Vec<Served> {
    use Access::{Open, Token};
    let health = Arc::new(health_text(warnings));
    let document =
        Arc::new(serde_json::to_string(&openapi::document()).expect("the document serialises"));
    vec![
        at(Method::GET, paths::PENDING, Token, pending),
        at(Method::GET, paths::PENDING_CALL, Token, pending_call),
        at(Method::POST, paths::DECIDE, Token, decide),
        at(Method::GET, paths::HISTORY, Token, history),
        at(Method::GET, paths::EVENTS, Token, sse::events),
        at(
            Method::GET,
            paths::POLICY,
            Token,
            |State(gate): State<Arc<Gate>>| async move { Json(gate.policy().view()) },
        ),
        at(Method::GET, paths::METRICS, Open, metrics),
        at(Method::GET, paths::HEALTHZ, Open, move || async move {
            health.as_str().to_owned()
        }),
        at(Method::GET, paths::LIVEZ, Open, || async {
            hitl_wire::health::LIVE_TEXT
        }),
        at(Method::GET, paths::READYZ, Open, ready),
        at(Method::GET, paths::OPENAPI, Open, move || async move {
            (
                [(header::CONTENT_TYPE, "application/json")],
                document.as_str().to_owned(),
            )
        }),
    ]
}

/// `ready`, or 503 with why not: the store does not commit (every gated call is being denied).
/// The keys need no check here: a gate that could not load them does not start.
async fn ready(State(gate): State<Arc<Gate>>) -> Response {
    match gate.ready().await {
        Ok(()) => hitl_wire::health::READY_TEXT.into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            hitl_wire::health::not_ready_text(&format!(
                "{e}; gated calls are denied until it is back"
            )),
        )
            .into_response(),
    }
}

/// `ok`, then one `warning: …` line per insecure setting.
fn health_text(warnings: &[&str]) -> String {
    let mut text = String::from("ok\n");
    for warning in warnings {
        text.push_str("warning: ");
        text.push_str(warning);
        text.push('\n');
    }
    text
}

/// An admin API error: a status and an [`ApiError`] body.
#[derive(Debug)]
pub struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(ApiError { error: self.1 })).into_response()
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadCursor(_) => Failure(StatusCode::BAD_REQUEST, e.to_string()),
            _ => {
                tracing::error!(error = %e, "admin API: audit trail failed");
                Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

impl From<DecideError> for Failure {
    fn from(e: DecideError) -> Self {
        match e {
            DecideError::NotFound(_) => Failure(StatusCode::NOT_FOUND, e.to_string()),
            DecideError::Conflict(_) => Failure(StatusCode::CONFLICT, e.to_string()),
            DecideError::Invalid(_) => Failure(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
            DecideError::Forbidden(_) => Failure(StatusCode::FORBIDDEN, e.to_string()),
            DecideError::NotRecorded(_) => {
                Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
            DecideError::Store(e) => e.into(),
        }
    }
}

async fn require_token(
    State(access): State<Arc<AdminAccess>>,
    request: Request,
    next: Next,
) -> Response {
    match access.as_ref() {
        AdminAccess::Open => {}
        AdminAccess::Closed => {
            return Failure(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the admin API is off: hitl-extauth has no {} (or {}=1 to serve it \
                     without one)",
                    hitl_wire::env::extauth::ADMIN_TOKEN,
                    hitl_wire::env::extauth::INSECURE_OPEN_ADMIN
                ),
            )
            .into_response();
        }
        AdminAccess::Token(expected) => {
            let presented = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if !presented.is_some_and(|p| same(p.trim().as_bytes(), expected.as_bytes())) {
                let mut response = Failure(
                    StatusCode::UNAUTHORIZED,
                    "this endpoint needs `Authorization: Bearer <ADMIN_TOKEN>`".into(),
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return response;
            }
        }
    }
    next.run(request).await
}

/// Compare in constant time, so response time says nothing about the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    bool::from(a.ct_eq(b))
}

async fn metrics(State(gate): State<Arc<Gate>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gate.metrics().render(),
    )
}

async fn pending(
    State(gate): State<Arc<Gate>>,
    query: Result<Query<PendingQuery>, QueryRejection>,
) -> Result<Json<PendingList>, Failure> {
    let Query(query) = query.map_err(|e| Failure(StatusCode::BAD_REQUEST, e.body_text()))?;
    let listed = query.listed().ok_or_else(|| {
        Failure(
            StatusCode::BAD_REQUEST,
            "`limit` must be at least 1".to_owned(),
        )
    })?;
    let listing = gate.pending_listed(listed).await;
    Ok(Json(PendingList {
        pending: listing
            .calls
            .iter()
            .map(|c| c.preview().into_owned())
            .collect(),
        more: listing.more,
    }))
}

/// One pending call, whole (body and arguments), for a reviewer who opens a large one.
async fn pending_call(
    State(gate): State<Arc<Gate>>,
    Path(id): Path<String>,
) -> Result<Json<ParkedCall>, Failure> {
    gate.pending_card(&id)
        .await?
        .map(|c| Json(crate::park::whole(&c)))
        .ok_or_else(|| {
            Failure(
                StatusCode::NOT_FOUND,
                format!("no pending call {id} (decided, expired or never parked: see /history)"),
            )
        })
}

async fn decide(
    State(gate): State<Arc<Gate>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<axum::response::Response, Failure> {
    // Parsed by hand, whatever the content-type, so clients that don't set one still work
    // and every mistake gets a message.
    let request: DecideRequest = serde_json::from_slice(&body).map_err(|e| {
        let status = match e.classify() {
            serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        Failure(
            status,
            format!(
                r#"expected {{"approved": true|false, "reason": "...", "reviewer": "..."}}: {e}"#
            ),
        )
    })?;
    Ok(match gate.decide(&id, request).await? {
        DecideAnswer::Decided(mut decided) => {
            decided.call = crate::park::whole(&decided.call);
            Json(decided).into_response()
        }
        // Counted, and the rule needs more approvals: the card as it now stands.
        DecideAnswer::Counted(card) => (StatusCode::ACCEPTED, Json(card)).into_response(),
    })
}

async fn history(
    State(gate): State<Arc<Gate>>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryPage>, Failure> {
    let Query(query) = query.map_err(|e| Failure(StatusCode::BAD_REQUEST, e.body_text()))?;
    Ok(Json(gate.history(query).await?))
}

#[cfg(test)]
mod tests;
