//! The lab's notification receiver: hitl-extauth's webhooks (`hitl_wire::notify`), each
//! checked against the lab's notification secret (HMAC over timestamp and body, at most five
//! minutes old), taken once (a replayed or re-sent one is acknowledged and ignored), and
//! kept, the newest [`KEPT`]; the signed-in presenter reads them at
//! `/notifications` — what a platform team's Slack channel would show. A request opened for a
//! chat user's call also marks that call, in their conversation, as waiting for a reviewer.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

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

/// How long a notification is remembered as taken: past the signature's five minutes, a
/// replay is refused by its signature.
const REMEMBERED_SECS: i64 = 600;

/// What the receiver holds.
pub struct Inbox {
    secret: Vec<u8>,
    received: Mutex<Received>,
}

/// The notifications kept, and those taken lately (by request, kind and time: one event).
#[derive(Default)]
struct Received {
    kept: VecDeque<Notification>,
    taken: HashMap<(String, String, i64), i64>,
}

/// One event of the gate's: a retry or a replay of it carries the same three.
fn event_key(n: &Notification) -> (String, String, i64) {
    let at = n.at.unix_timestamp_nanos() / 1000;
    (
        n.request_id.clone(),
        n.kind.as_str().to_owned(),
        i64::try_from(at).unwrap_or(i64::MAX),
    )
}

impl Inbox {
    /// An empty inbox accepting notifications signed with `secret`.
    pub fn new(secret: Vec<u8>) -> Self {
        Self {
            secret,
            received: Mutex::new(Received::default()),
        }
    }

    /// Check `body`'s signature headers and keep it (and return it; `None` when this event
    /// was taken already); why not, as a status and a sentence.
    pub fn take(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Option<Notification>, (StatusCode, String)> {
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
        received
            .taken
            .retain(|_, taken_at| now - *taken_at < REMEMBERED_SECS);
        if received
            .taken
            .insert(event_key(&notification), now)
            .is_some()
        {
            tracing::info!(request = %notification.request_id, "notification taken already; ignored");
            return Ok(None);
        }
        if received.kept.len() == KEPT {
            received.kept.pop_front();
        }
        received.kept.push_back(notification.clone());
        Ok(Some(notification))
    }

    /// What was received, newest first.
    pub fn list(&self) -> Vec<Notification> {
        let received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        received.kept.iter().rev().cloned().collect()
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
        Ok(Some(notification)) => {
            tell_the_requester(&state, &notification).await;
            (StatusCode::NO_CONTENT, String::new())
        }
        Ok(None) => (StatusCode::NO_CONTENT, String::new()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &[u8], body: &[u8]) -> HeaderMap {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut headers = HeaderMap::new();
        let signature = notify::sign(secret, now, body);
        headers.insert(notify::SIGNATURE_HEADER, signature.parse().unwrap());
        headers.insert(notify::TIMESTAMP_HEADER, now.to_string().parse().unwrap());
        headers
    }

    #[test]
    fn a_notification_is_taken_once_however_often_it_is_sent() {
        let inbox = Inbox::new(b"lab-secret".to_vec());
        let body = serde_json::to_vec(&serde_json::json!({
            "kind": "opened", "request_id": "r1", "tool": "run_migration",
            "arguments": "{\"version\":\"v3\"}", "requester": "alice",
            "at": "2026-12-07T03:00:00Z",
        }))
        .unwrap();
        let first = inbox.take(&signed(b"lab-secret", &body), &body).unwrap();
        assert_eq!(first.map(|n| n.request_id).as_deref(), Some("r1"));
        // A replay (or the gate's retry) of the same event: acknowledged, not taken again.
        assert_eq!(
            inbox.take(&signed(b"lab-secret", &body), &body).unwrap(),
            None
        );
        assert_eq!(inbox.list().len(), 1);
        // A forged one never gets that far.
        let forged = inbox.take(&signed(b"other", &body), &body).unwrap_err();
        assert_eq!(forged.0, StatusCode::UNAUTHORIZED);
    }
}
