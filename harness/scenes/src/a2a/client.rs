//! The A2A transport: JSON-RPC `message/send`, `message/stream` and `tasks/get` over HTTP,
//! the agent card, and the chat user's proof (a fresh requester token on every request).

use std::{sync::Arc, time::Duration};

use futures::{Stream, StreamExt as _};
use serde_json::{Value, json};

use super::{
    A2aError, TURN_LIMIT,
    types::{AgentCard, Message, StreamEvent, Task},
};

/// Longest the agent card may take to arrive.
pub const CARD_LIMIT: Duration = Duration::from_secs(30);
use hitl_lab::requester::{Issuer, bearer};

/// A2A client for one agent.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
    /// Who the chat user is, proven: a fresh token for them on every request.
    requester: Option<(Arc<Issuer>, String)>,
}

impl Client {
    /// `url` is the agent's A2A endpoint (JSON-RPC is POSTed to it; the card is under it).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("reqwest client"),
            url: url.into().trim_end_matches('/').to_owned(),
            headers: Vec::new(),
            requester: None,
        }
    }

    /// Prove the chat user `user` on every request: `Authorization: Bearer <JWT>`, minted
    /// by `issuer` per request (kagent forwards it to the gateway, which verifies it).
    pub fn with_requester(mut self, issuer: Arc<Issuer>, user: impl Into<String>) -> Self {
        self.requester = Some((issuer, user.into()));
        self
    }

    /// Send this header with every request (e.g. `x-user-id`, `A2A-Extensions`).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET /.well-known/agent-card.json`.
    pub async fn card(&self) -> Result<AgentCard, A2aError> {
        let url = format!("{}/.well-known/agent-card.json", self.url);
        let resp = self
            .http
            .get(&url)
            .timeout(CARD_LIMIT)
            .send()
            .await
            .map_err(|source| A2aError::Http {
                url: url.clone(),
                source,
            })?;
        let resp = check_status(&url, resp).await?;
        resp.json()
            .await
            .map_err(|e| A2aError::Decode(format!("agent card: {e}")))
    }

    /// A JSON-RPC POST; none outlives a turn ([`TURN_LIMIT`]), its answer's stream included.
    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut req = self.http.post(&self.url).json(body).timeout(TURN_LIMIT);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some((issuer, user)) = &self.requester {
            match issuer.mint(user) {
                Ok(token) => req = req.header(hitl_wire::identity::TOKEN_HEADER, bearer(&token)),
                // Sent without a token: the gateway refuses the gated call and says why.
                Err(e) => tracing::error!(error = %e, %user, "minting the requester token failed"),
            }
        }
        req
    }

    /// Send the JSON-RPC request `method(params)` (asking for `accept` when given): the
    /// response, once its status says it succeeded.
    async fn rpc(
        &self,
        method: &str,
        params: Value,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, A2aError> {
        let body = json!({
            "jsonrpc": "2.0",
            "id": uuid::Uuid::new_v4().to_string(),
            "method": method,
            "params": params,
        });
        let mut request = self.post(&body);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let resp = request.send().await.map_err(|source| A2aError::Http {
            url: self.url.clone(),
            source,
        })?;
        check_status(&self.url, resp).await
    }

    /// One JSON-RPC call whose result is a task.
    async fn task_call(&self, method: &str, params: Value) -> Result<Task, A2aError> {
        let resp = self.rpc(method, params, None).await?;
        let value: Value = resp
            .json()
            .await
            .map_err(|e| A2aError::Decode(e.to_string()))?;
        serde_json::from_value(rpc_result(value)?)
            .map_err(|e| A2aError::Decode(format!("{method} result: {e}")))
    }

    /// `message/send` (blocking): the task as it stands when the agent pauses or finishes.
    pub async fn send(&self, message: &Message) -> Result<Task, A2aError> {
        let params = json!({"message": message, "configuration": {"blocking": true}});
        self.task_call("message/send", params).await
    }

    /// `tasks/get`: the task as it stands now, with its history.
    pub async fn get_task(&self, task_id: &str) -> Result<Task, A2aError> {
        self.task_call("tasks/get", json!({"id": task_id})).await
    }

    /// `message/stream`: the agent's events as they happen.
    pub async fn stream(
        &self,
        message: &Message,
    ) -> Result<impl Stream<Item = Result<StreamEvent, A2aError>> + use<>, A2aError> {
        let params = json!({"message": message, "configuration": {"blocking": false}});
        let resp = self
            .rpc("message/stream", params, Some(hitl_wire::sse::CONTENT_TYPE))
            .await?;
        Ok(hitl_wire::sse::events(resp).map(|event| {
            let event = event.map_err(|e| A2aError::Decode(e.to_string()))?;
            let value: Value = serde_json::from_str(&event.data)
                .map_err(|e| A2aError::Decode(format!("stream event: {e}")))?;
            let result = rpc_result(value)?;
            serde_json::from_value(result)
                .map_err(|e| A2aError::Decode(format!("stream event: {e}")))
        }))
    }
}

async fn check_status(url: &str, resp: reqwest::Response) -> Result<reqwest::Response, A2aError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    Err(A2aError::Status {
        url: url.to_owned(),
        status,
        body,
    })
}

pub(super) fn rpc_result(mut value: Value) -> Result<Value, A2aError> {
    if let Some(error) = value.get("error") {
        return Err(A2aError::Rpc {
            code: error
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    value
        .get_mut("result")
        .map(Value::take)
        .ok_or_else(|| A2aError::Decode("JSON-RPC answer with neither result nor error".into()))
}
