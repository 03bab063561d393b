//! The MCP requests the bench sends (JSON-RPC over Streamable HTTP POSTs, as an agent's MCP
//! client sends them) and one timed POST.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

/// Header carrying each bench request's own tag, so the gate's view of a parked call (its
/// forwarded headers) can be matched to the request that made it.
pub const TAG_HEADER: &str = "x-bench-tag";
/// Who the bench's requests come from (`x-user-id`).
pub const USER: &str = "bench";
/// The reviewer who decides the bench's calls: never [`USER`], who asked for them (the gate
/// refuses a requester's own approval).
pub const REVIEWER: &str = "bench-reviewer";

/// `initialize`, as a client opens a session.
pub fn initialize(id: u64) -> String {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": { "name": "hitl-bench", "version": "1" }
        }
    })
    .to_string()
}

/// `tools/list`.
pub fn tools_list(id: u64) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list" }).to_string()
}

/// `tools/call` of `tool` with `arguments`.
pub fn tools_call(id: u64, tool: &str, arguments: Value) -> String {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": tool, "arguments": arguments }
    })
    .to_string()
}

/// What came back, and when.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// From just before the request was sent to the last byte of the answer.
    pub took: Duration,
    /// When the last byte of the answer arrived.
    pub done: Instant,
}

impl Reply {
    /// The JSON-RPC answer, which must be a `result` (not an `error`) for request `id`.
    pub fn rpc_result(&self, id: u64) -> anyhow::Result<&Self> {
        anyhow::ensure!(self.status == 200, "HTTP {}: {}", self.status, self.body);
        let value: Value = serde_json::from_str(&self.body)
            .with_context(|| format!("answer is not JSON: {}", self.body))?;
        anyhow::ensure!(
            value["id"] == id && value.get("result").is_some(),
            "not the JSON-RPC result of request {id}: {}",
            self.body
        );
        Ok(self)
    }
}

/// The bench user's requester token (`Authorization: Bearer …`), set once by
/// [`super::stack::Stack::start`]: the gated route verifies it like the lab's.
static REQUESTER_TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Use `token` as the bench user's proof on every later [`post`] (the first one set wins).
pub fn set_requester_token(token: String) {
    let _ = REQUESTER_TOKEN.set(token);
}

/// POST `body` to `url` the way a Streamable HTTP client does, tagged with `tag` if given.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    body: String,
    tag: Option<&str>,
) -> anyhow::Result<Reply> {
    post_as(http, url, body, tag, None).await
}

/// [`post`] proving the requester of `token` instead of the bench user (the capacity step
/// parks one action per requester: one action is one approval request, issue #26).
pub async fn post_as(
    http: &reqwest::Client,
    url: &str,
    body: String,
    tag: Option<&str>,
    token: Option<&str>,
) -> anyhow::Result<Reply> {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header(hitl_wire::headers::USER_ID, USER)
        .body(body);
    if let Some(tag) = tag {
        request = request.header(TAG_HEADER, tag);
    }
    if let Some(token) = token.or(REQUESTER_TOKEN.get().map(String::as_str)) {
        request = request.header(
            hitl_wire::identity::TOKEN_HEADER,
            hitl_lab::requester::bearer(token),
        );
    }
    let start = Instant::now();
    let resp = request
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .text()
        .await
        .with_context(|| format!("POST {url}: reading the answer"))?;
    let done = Instant::now();
    Ok(Reply {
        status,
        body,
        took: done - start,
        done,
    })
}

/// A keep-alive HTTP/1.1 client for loopback (no proxy), `timeout` per request.
pub fn http1(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .timeout(timeout)
        .build()
        .context("building an HTTP client")
}

/// An HTTP/2 (prior knowledge, h2c) client for loopback: one connection, many streams.
pub fn http2(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .tcp_nodelay(true)
        .timeout(timeout)
        .build()
        .context("building an HTTP/2 client")
}
