//! The HTTP surface: chat completions (whole or streamed), the script, the request log.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    extract::{State, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response, Sse, sse::Event},
    routing::{get, post},
};
use futures::stream;
use hitl_wire::model::{Script, SeenRequest};
use serde_json::json;

use crate::{
    openai::{self, ChatRequest},
    script::{Conversation, answer},
};

/// How many requests `GET /requests` remembers.
const REQUEST_LOG_LIMIT: usize = 1000;

#[derive(Debug, Default)]
struct Shared {
    script: Script,
    seen: Vec<SeenRequest>,
    served: u64,
}

type AppState = Arc<Mutex<Shared>>;

/// The router, starting with `script` loaded.
pub fn router(script: Script) -> Router {
    let state: AppState = Arc::new(Mutex::new(Shared {
        script,
        ..Default::default()
    }));
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/script", get(get_script).put(put_script))
        .route("/requests", get(get_requests).delete(clear_requests))
        // Nothing it needs can go away after start: ready once it serves.
        .merge(hitl_serve::probes::serving())
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": {"message": message.into(), "type": "invalid_request_error"}});
    (status, Json(body)).into_response()
}

async fn chat(
    State(state): State<AppState>,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let conv = Conversation::from_messages(&request.messages);
    let (answer, n) = {
        let mut shared = state.lock().expect("state lock");
        let answer = answer(&shared.script, &conv);
        shared.seen.push(SeenRequest {
            turn: conv.turn,
            stream: request.stream,
            messages: request.messages.clone(),
            tools: request.tool_names(),
        });
        let excess = shared.seen.len().saturating_sub(REQUEST_LOG_LIMIT);
        shared.seen.drain(..excess);
        shared.served += 1;
        (answer, shared.served)
    };
    tracing::info!(
        turn = conv.turn,
        stream = request.stream,
        ?answer,
        "answered"
    );
    let id = format!("chatcmpl-scripted-{n}");
    let model = if request.model.is_empty() {
        "scripted".to_owned()
    } else {
        request.model.clone()
    };
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    if request.stream {
        let include_usage = request
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage);
        let events = openai::chunks(&id, &model, created, &answer, include_usage)
            .into_iter()
            .map(|chunk| Event::default().data(chunk.to_string()))
            .chain(std::iter::once(Event::default().data("[DONE]")))
            .map(Ok::<_, Infallible>);
        Sse::new(stream::iter(events)).into_response()
    } else {
        Json(openai::completion(&id, &model, created, &answer)).into_response()
    }
}

async fn models() -> Json<serde_json::Value> {
    Json(
        json!({"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "hitl-lab"}]}),
    )
}

async fn get_script(State(state): State<AppState>) -> Json<Script> {
    Json(state.lock().expect("state lock").script.clone())
}

/// Load a new script; the request log starts afresh with it.
async fn put_script(
    State(state): State<AppState>,
    body: Result<Json<Script>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(script)) => {
            let mut shared = state.lock().expect("state lock");
            tracing::info!(name = %script.name, turns = script.turns.len(), "script loaded");
            shared.script = script;
            shared.seen.clear();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(rejection) => error(rejection.status(), rejection.body_text()),
    }
}

async fn get_requests(State(state): State<AppState>) -> Json<Vec<SeenRequest>> {
    Json(state.lock().expect("state lock").seen.clone())
}

async fn clear_requests(State(state): State<AppState>) -> StatusCode {
    state.lock().expect("state lock").seen.clear();
    StatusCode::NO_CONTENT
}
