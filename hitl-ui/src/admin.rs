//! Client for hitl-extauth's admin API: `/pending`, `/decide/{id}`, `/history`, `/events`.
//! The only place that knows its URL and token.

use std::time::Duration;

use futures::{Stream, StreamExt as _};
use hitl_wire::extauth::{
    ApiError, DecideRequest, DecidedCall, Event, HistoryPage, HistoryQuery, ParkedCall, PendingList,
};
use reqwest::{RequestBuilder, StatusCode};

use crate::sse::SseParser;

/// A failed admin API call.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("hitl-extauth is unreachable at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// 404: no such call (or not pending any more).
    #[error("{0}")]
    NotFound(String),
    /// 409: decided already.
    #[error("{0}")]
    Conflict(String),
    #[error("hitl-extauth answered {status}: {message}")]
    Status { status: StatusCode, message: String },
    #[error("hitl-extauth sent something unreadable: {0}")]
    Protocol(String),
}

/// hitl-extauth's admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// For the long-lived `/events` stream: no overall timeout.
    streaming: reqwest::Client,
}

impl AdminClient {
    pub fn new(base: &str, token: Option<String>) -> reqwest::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(10))
                .build()?,
            streaming: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .tcp_keepalive(Duration::from_secs(15))
                .build()?,
        })
    }

    /// The admin API's base URL (shown to reviewers when it is down; never the token).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(
        &self,
        request: RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, AdminError> {
        let response =
            self.authorize(request)
                .send()
                .await
                .map_err(|source| AdminError::Unreachable {
                    url: url.to_owned(),
                    source,
                })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ApiError>(&text)
            .map(|e| e.error)
            .unwrap_or_else(|_| text.chars().take(300).collect());
        Err(match status {
            StatusCode::NOT_FOUND => AdminError::NotFound(message),
            StatusCode::CONFLICT => AdminError::Conflict(message),
            status => AdminError::Status { status, message },
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        response: reqwest::Response,
    ) -> Result<T, AdminError> {
        let bytes = response
            .bytes()
            .await
            .map_err(|e| AdminError::Protocol(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| AdminError::Protocol(e.to_string()))
    }

    /// `GET /pending`.
    pub async fn pending(&self) -> Result<PendingList, AdminError> {
        let url = self.url("/pending");
        Self::json(self.send(self.http.get(&url), &url).await?).await
    }

    /// `GET /pending/{id}`: one pending call whole (listings cut large bodies to a preview).
    pub async fn pending_call(&self, id: &str) -> Result<ParkedCall, AdminError> {
        let url = self.url(&format!("/pending/{}", encode_segment(id)));
        Self::json(self.send(self.http.get(&url), &url).await?).await
    }

    /// `POST /decide/{id}`.
    pub async fn decide(
        &self,
        id: &str,
        decision: &DecideRequest,
    ) -> Result<DecidedCall, AdminError> {
        let url = self.url(&format!("/decide/{}", encode_segment(id)));
        Self::json(self.send(self.http.post(&url).json(decision), &url).await?).await
    }

    /// `GET /history`.
    pub async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, AdminError> {
        let url = self.url("/history");
        Self::json(self.send(self.http.get(&url).query(query), &url).await?).await
    }

    /// `GET /events`: connected once this returns; the stream ends when the connection does.
    pub async fn events(
        &self,
    ) -> Result<impl Stream<Item = Result<Event, AdminError>> + use<>, AdminError> {
        let url = self.url("/events");
        let request = self
            .streaming
            .get(&url)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        let response = self.send(request, &url).await?;
        let mut parser = SseParser::new();
        let stream = response
            .bytes_stream()
            .map(move |chunk| -> Vec<Result<Event, AdminError>> {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        return vec![Err(AdminError::Protocol(format!(
                            "events stream broke: {e}"
                        )))];
                    }
                };
                match parser.push(&chunk) {
                    Ok(events) => events
                        .into_iter()
                        .filter_map(|sse| decode_event(&sse.event, &sse.data).transpose())
                        .collect(),
                    Err(e) => vec![Err(AdminError::Protocol(e.to_string()))],
                }
            })
            .flat_map(futures::stream::iter);
        Ok(stream)
    }
}

/// One `/events` message as an [`Event`]; `None` for event names this version does not know
/// (a newer hitl-extauth may add some), an error when a known one does not parse.
fn decode_event(name: &str, data: &str) -> Result<Option<Event>, AdminError> {
    if !["parked", "decided", "expired", "abandoned"].contains(&name) {
        tracing::debug!(event = name, "ignoring unknown event from hitl-extauth");
        return Ok(None);
    }
    serde_json::from_str(data)
        .map(Some)
        .map_err(|e| AdminError::Protocol(format!("`{name}` event: {e}")))
}

/// Percent-encode one URL path segment. Dots are encoded too, so `..` cannot become a
/// dot-segment that climbs out of `/decide/`.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_their_path_segment() {
        assert_eq!(encode_segment("3f2a-9b_1~"), "3f2a-9b_1~");
        assert_eq!(encode_segment("../history?x=1"), "%2E%2E%2Fhistory%3Fx%3D1");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[tokio::test]
    async fn the_admin_token_is_sent_as_bearer_and_errors_keep_their_message() {
        use axum::{Json, Router, http::HeaderMap, http::StatusCode, routing::get};
        let app = Router::new().route(
            "/pending",
            get(|headers: HeaderMap| async move {
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer s3cret") => Ok(Json(PendingList { pending: vec![] })),
                    _ => Err((
                        StatusCode::UNAUTHORIZED,
                        Json(ApiError {
                            error: "needs the token".into(),
                        }),
                    )),
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let with_token = AdminClient::new(&base, Some("s3cret".into())).unwrap();
        assert!(with_token.pending().await.unwrap().pending.is_empty());
        let without = AdminClient::new(&base, Some(String::new())).unwrap();
        match without.pending().await {
            Err(AdminError::Status { status, message }) => {
                assert_eq!(status, StatusCode::UNAUTHORIZED);
                assert_eq!(message, "needs the token");
            }
            other => panic!("expected a 401, got {other:?}"),
        }
    }

    #[test]
    fn unknown_events_are_skipped_known_ones_must_parse() {
        assert!(decode_event("ping", "{}").unwrap().is_none());
        assert!(decode_event("parked", "{}").is_err());
    }
}
