//! The probes: `/healthz` (as it always was), `/livez` (the process serves) and `/readyz`
//! (its gate's admin API answers: without it the page can neither list nor decide).

use std::time::Duration;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use hitl_wire::health;

use super::SharedState;

/// How long `/readyz` waits for the gate's admin API.
pub const READY_LIMIT: Duration = Duration::from_secs(2);

/// `/livez`: 200 while the process serves.
pub async fn live() -> &'static str {
    health::LIVE_TEXT
}

/// `/readyz`: `ready` while the gate's admin API answers its `/healthz`, else 503 with why
/// not.
pub async fn ready(State(state): State<SharedState>) -> Response {
    let reason = match tokio::time::timeout(READY_LIMIT, state.admin.healthz()).await {
        Ok(Ok(_)) => return health::READY_TEXT.into_response(),
        Ok(Err(e)) => format!("the gate's admin API does not answer: {e}"),
        Err(_) => format!("the gate's admin API did not answer within {READY_LIMIT:?}"),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        health::not_ready_text(&reason),
    )
        .into_response()
}
