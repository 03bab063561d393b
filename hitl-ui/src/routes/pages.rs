//! `GET /` (the queue), `GET /calls/{id}` (one parked call, whole) and `GET /history`.

use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use hitl_wire::extauth::Outcome;
use serde::Deserialize;

use super::{SharedState, personal_html, viewer};
use crate::render::{self, history::Filters};

/// Attach the CSRF cookie (if the browser had none) to a page.
pub(crate) fn with_cookie(set_cookie: Option<String>, page: impl IntoResponse) -> Response {
    match set_cookie {
        Some(cookie) => ([(header::SET_COOKIE, cookie)], page).into_response(),
        None => page.into_response(),
    }
}

pub async fn queue(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let (viewer, set_cookie) = viewer(&state, &headers);
    let (cards, connected) = state.live.snapshot();
    // Re-render with the schema version as it is now: the pushed cards were rendered at park
    // time, but a reload should show the database as it stands.
    let calls: Vec<_> = cards.iter().map(|card| card.call.clone()).collect();
    let fresh = state.cards.make_all(calls).await;
    let mine: Vec<String> = fresh
        .iter()
        .map(|card| personal_html(&state, card, viewer.identity.as_ref()))
        .collect();
    let html: Vec<&str> = mine.iter().map(String::as_str).collect();
    let page = render::queue::page(
        &viewer,
        &html,
        connected,
        state.live.more(),
        state.admin.base_url(),
    );
    with_cookie(set_cookie, page)
}

/// One parked call, loaded whole from the gate: the queue shows large calls as previews.
pub async fn call(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (viewer, set_cookie) = viewer(&state, &headers);
    let card = match state.admin.pending_call(&id).await {
        Ok(call) => {
            let card = state.cards.make(call).await;
            Ok(personal_html(&state, &card, viewer.identity.as_ref()))
        }
        Err(hitl_wire::extauth::client::AdminError::NotFound(_)) => Err(
            "This call is not waiting any more: it was decided, expired or withdrawn.".to_owned(),
        ),
        Err(e) => Err(e.to_string()),
    };
    let page = render::queue::one(
        &viewer,
        card.as_ref().map(String::as_str).map_err(String::as_str),
        state.live.len(),
    );
    with_cookie(set_cookie, page)
}

#[derive(Debug, Default, Deserialize)]
pub struct HistoryParams {
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

/// Rows per history page.
const PAGE_SIZE: u32 = 50;

pub async fn history(
    State(state): State<SharedState>,
    headers: HeaderMap,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Response {
    let (viewer, set_cookie) = viewer(&state, &headers);
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let non_empty = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let outcome_text = non_empty(params.outcome);
    let outcome = outcome_text
        .as_deref()
        .and_then(|text| Outcome::ALL.into_iter().find(|o| o.as_str() == text));
    let filters = Filters {
        outcome,
        tool: non_empty(params.tool),
        before: non_empty(params.before),
    };
    let result = match (&outcome_text, outcome) {
        (Some(text), None) => Err(format!("unknown outcome `{text}`")),
        _ => state
            .admin
            .history(&filters.to_query(PAGE_SIZE))
            .await
            .map_err(|e| e.to_string()),
    };
    let page = render::history::page(
        &viewer,
        &filters,
        result.as_ref().map_err(Clone::clone),
        state.live.len(),
    );
    with_cookie(set_cookie, page)
}
