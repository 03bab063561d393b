//! The one client of hitl-extauth's admin API ([`super::paths`]): `/pending`, `/decide/{id}`,
//! `/history`, `/events` (read with [`crate::sse`]), `/metrics` and `/healthz`. hitl-ui, the
//! harness and the tests all talk to the gate through it.

use std::time::Duration;

use futures::{Stream, StreamExt as _};
use reqwest::{RequestBuilder, StatusCode};

use super::{
    ApiError, DecideAnswer, DecideRequest, DecidedCall, Event, HistoryPage, HistoryQuery,
    ParkedCall, PendingList, paths,
};
use crate::sse::{CONTENT_TYPE, SseEvent};

/// A failed admin API call.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
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
    /// 202 to [`AdminClient::decide`]: the approval was counted, and the request still waits
    /// for more (k-of-n); the card as it now stands.
    #[error("approval counted: request {} still waits for more approvals", .0.id)]
    Counted(Box<ParkedCall>),
}

/// hitl-extauth's admin API at one base URL, with its bearer token when there is one.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// For the long-lived `/events` stream: no overall timeout.
    streaming: reqwest::Client,
}

impl AdminClient {
    /// A client of the admin API at `base` (`http://host:port`), sending `token` (hitl-extauth's
    /// `ADMIN_TOKEN`) as `Authorization: Bearer`; a blank token is none. Connecting may take
    /// 5 s; a request, as long as it needs (a listing of thousands of parks is large).
    pub fn new(base: &str, token: Option<String>) -> Result<Self, AdminError> {
        Self::build(base, token, Duration::from_secs(5), None)
    }

    /// The same, giving up on connecting after `connect` and on any request (but the
    /// `/events` stream) after `request`.
    pub fn with_timeouts(
        base: &str,
        token: Option<String>,
        connect: Duration,
        request: Duration,
    ) -> Result<Self, AdminError> {
        Self::build(base, token, connect, Some(request))
    }

    fn build(
        base: &str,
        token: Option<String>,
        connect: Duration,
        request: Option<Duration>,
    ) -> Result<Self, AdminError> {
        let mut http = reqwest::Client::builder().connect_timeout(connect);
        if let Some(request) = request {
            http = http.timeout(request);
        }
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()),
            http: http.build().map_err(AdminError::Client)?,
            streaming: reqwest::Client::builder()
                .connect_timeout(connect)
                .tcp_keepalive(Duration::from_secs(15))
                .build()
                .map_err(AdminError::Client)?,
        })
    }

    /// The admin API's base URL (shown to reviewers when it is down; never the token).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The full URL of `path` (one of [`paths`]).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `request` with the bearer token, when there is one.
    pub fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
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

    async fn text(response: reqwest::Response) -> Result<String, AdminError> {
        response
            .text()
            .await
            .map_err(|e| AdminError::Protocol(e.to_string()))
    }

    /// `GET /pending`: the oldest pending calls, as many as the gate lists by default
    /// ([`super::PENDING_LISTED`]).
    pub async fn pending(&self) -> Result<PendingList, AdminError> {
        let url = self.url(paths::PENDING);
        Self::json(self.send(self.http.get(&url), &url).await?).await
    }

    /// Every pending call (`GET /pending?limit=` as high as it goes): for tools that must
    /// find their own call on a gate with a long queue. Gates that list everything anyway
    /// ignore the parameter.
    pub async fn pending_all(&self) -> Result<PendingList, AdminError> {
        self.pending_up_to(u32::MAX).await
    }

    /// `GET /pending?limit=`: up to `limit` of the oldest pending calls.
    pub async fn pending_up_to(&self, limit: u32) -> Result<PendingList, AdminError> {
        let url = self.url(paths::PENDING);
        let query = super::PendingQuery::up_to(limit);
        Self::json(self.send(self.http.get(&url).query(&query), &url).await?).await
    }

    /// `GET /pending/{id}`: one pending call whole (listings cut large bodies to a preview).
    pub async fn pending_call(&self, id: &str) -> Result<ParkedCall, AdminError> {
        let url = self.url(&paths::pending_call(id));
        Self::json(self.send(self.http.get(&url), &url).await?).await
    }

    /// `POST /decide/{id}`.
    pub async fn decide(
        &self,
        id: &str,
        decision: &DecideRequest,
    ) -> Result<DecidedCall, AdminError> {
        match self.decide_step(id, decision).await? {
            DecideAnswer::Decided(call) => Ok(*call),
            DecideAnswer::Counted(card) => Err(AdminError::Counted(card)),
        }
    }

    /// `POST /decide/{id}`, where an approval may be one of several the rule needs: 200 with
    /// the ended request, or 202 with the card still waiting ([`DecideAnswer`]).
    pub async fn decide_step(
        &self,
        id: &str,
        decision: &DecideRequest,
    ) -> Result<DecideAnswer, AdminError> {
        let url = self.url(&paths::decide(id));
        let response = self.send(self.http.post(&url).json(decision), &url).await?;
        if response.status() == StatusCode::ACCEPTED {
            return Ok(DecideAnswer::Counted(Box::new(Self::json(response).await?)));
        }
        Ok(DecideAnswer::Decided(Box::new(Self::json(response).await?)))
    }

    /// `GET /policy`.
    pub async fn policy(&self) -> Result<crate::policy::PolicyView, AdminError> {
        let url = self.url(paths::POLICY);
        Self::json(self.send(self.http.get(&url), &url).await?).await
    }

    /// `GET /history`.
    pub async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, AdminError> {
        let url = self.url(paths::HISTORY);
        Self::json(self.send(self.http.get(&url).query(query), &url).await?).await
    }

    /// `GET /metrics`: Prometheus text.
    pub async fn metrics(&self) -> Result<String, AdminError> {
        let url = self.url(paths::METRICS);
        Self::text(self.send(self.http.get(&url), &url).await?).await
    }

    /// `GET /healthz`: `ok`, then one `warning: …` line per insecure setting.
    pub async fn healthz(&self) -> Result<String, AdminError> {
        let url = self.url(paths::HEALTHZ);
        Self::text(self.send(self.http.get(&url), &url).await?).await
    }

    /// `GET /events`: connected once this returns (the pending calls come first, as
    /// `parked`); the stream ends when the connection does.
    pub async fn events(
        &self,
    ) -> Result<impl Stream<Item = Result<Event, AdminError>> + use<>, AdminError> {
        let url = self.url(paths::EVENTS);
        let request = self
            .streaming
            .get(&url)
            .header(reqwest::header::ACCEPT, CONTENT_TYPE);
        let response = self.send(request, &url).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with(CONTENT_TYPE) {
            return Err(AdminError::Protocol(format!(
                "{url} is not an event stream (content-type {content_type:?})"
            )));
        }
        let stream = crate::sse::events(response).filter_map(|sse| {
            std::future::ready(match sse {
                Ok(sse) => decode_event(&sse).transpose(),
                Err(e) => Some(Err(AdminError::Protocol(e.to_string()))),
            })
        });
        Ok(stream)
    }
}

/// One `/events` message as an [`Event`]; `None` for event names this version does not know
/// (a newer hitl-extauth may add some), an error when a known one does not parse or its
/// `type` is not its SSE name.
fn decode_event(sse: &SseEvent) -> Result<Option<Event>, AdminError> {
    let name = sse.event.as_str();
    if !["parked", "decided", "expired", "abandoned"].contains(&name) {
        tracing::debug!(event = name, "ignoring unknown event from hitl-extauth");
        return Ok(None);
    }
    let event: Event = serde_json::from_str(&sse.data)
        .map_err(|e| AdminError::Protocol(format!("`{name}` event: {e}")))?;
    if event.name() != name {
        return Err(AdminError::Protocol(format!(
            "`{name}` event carries a `{}`",
            event.name()
        )));
    }
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_admin_token_is_sent_as_bearer_and_errors_keep_their_message() {
        use axum::{Json, Router, http::HeaderMap, http::StatusCode, routing::get};
        let app = Router::new().route(
            paths::PENDING,
            get(|headers: HeaderMap| async move {
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer s3cret") => Ok(Json(PendingList {
                        pending: vec![],
                        more: false,
                    })),
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

    fn sse(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn unknown_events_are_skipped_known_ones_must_parse() {
        assert!(decode_event(&sse("ping", "{}")).unwrap().is_none());
        assert!(decode_event(&sse("parked", "{}")).is_err());
    }
}
