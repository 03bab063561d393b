//! The lab's notification receiver: hitl-extauth's webhooks (`hitl_wire::notify`), each
//! checked against the lab's notification secret (HMAC over timestamp and body, at most five
//! minutes old) and kept, the newest [`KEPT`]; the signed-in presenter reads them at
//! `/notifications` — what a platform team's Slack channel would show. A request opened for a
//! chat user's call also marks that call, in their conversation, as waiting for a reviewer.

use std::{collections::VecDeque, sync::Mutex};

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use hitl_wire::notify::{self, Notification};

use super::routes::{Shared, user};

/// Notifications kept.
pub const KEPT: usize = 100;
/// Largest notification body read.
pub const MAX_BODY: usize = 256 * 1024;

/// What the receiver holds.
pub struct Inbox {
    secret: Vec<u8>,
    received: Mutex<VecDeque<Notification>>,
}

impl Inbox {
    /// An empty inbox accepting notifications signed with `secret`.
    pub fn new(secret: Vec<u8>) -> Self {
        Self {
            secret,
            received: Mutex::new(VecDeque::new()),
        }
    }

    /// Check `body`'s signature headers and keep it (and return it); why not, as a status and
    /// a sentence.
    pub fn take(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Notification, (StatusCode, String)> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        notify::verify(
            &self.secret,
            header(notify::SIGNATURE_HEADER),
            header(notify::TIMESTAMP_HEADER),
            body,
            now,
        )
        .map_err(|e| (StatusCode::UNAUTHORIZED, format!("refused: {e}")))?;
        let notification: Notification = serde_json::from_slice(body).map_err(|e| {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("not a hitl-extauth notification: {e}"),
            )
        })?;
        let mut received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        if received.len() == KEPT {
            received.pop_front();
        }
        received.push_back(notification.clone());
        Ok(notification)
    }

    /// What was received, newest first.
    pub fn list(&self) -> Vec<Notification> {
        let received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        received.iter().rev().cloned().collect()
    }
}

/// `POST /notify`: one notification from the gate.
pub async fn receive(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(inbox) = &state.inbox else {
        return (
            StatusCode::NOT_FOUND,
            "this lab-chat receives no notifications (NOTIFY_SECRET_FILE unset)".into(),
        );
    };
    if body.len() > MAX_BODY {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "notification too large".into(),
        );
    }
    match inbox.take(&headers, &body) {
        Ok(notification) => {
            tell_the_requester(&state, &notification).await;
            (StatusCode::NO_CONTENT, String::new())
        }
        Err((status, why)) => {
            tracing::warn!(%status, %why, "notification refused");
            (status, why)
        }
    }
}

/// A request opened for a signed-in user's call: that user's conversations show the call as
/// waiting for a platform reviewer (the call with this tool and these arguments).
async fn tell_the_requester(state: &Shared, notification: &Notification) {
    let (notify::Kind::Opened, Some(requester)) = (notification.kind, &notification.requester)
    else {
        return;
    };
    let Ok(args) = serde_json::from_str::<serde_json::Value>(&notification.arguments) else {
        return;
    };
    let conversations = state.conversations.lock().await;
    let theirs: Vec<_> = conversations
        .iter()
        .filter(|((user, _agent), _)| user == requester)
        .map(|(_, conversation)| conversation)
        .collect();
    if !theirs.iter().any(|c| c.parked(&notification.tool, &args)) {
        for conversation in theirs {
            conversation.stash(&notification.tool, args.clone());
        }
    }
}

/// `GET /notifications`: what the gate sent, newest first (signed-in users only).
pub async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Json<Vec<Notification>>, StatusCode> {
    user(&state, &headers).ok_or(StatusCode::UNAUTHORIZED)?;
    Ok(Json(
        state.inbox.as_ref().map(|i| i.list()).unwrap_or_default(),
    ))
}
