//! The classifier: decides, from nothing but the forwarded request, whether a frame passes,
//! is denied (and why), or parks for a human. Pure: no I/O, no clock, no state.
//!
//! Pass is the exception that has to be proven. Only three shapes pass:
//! - `GET` with no body (the MCP SSE stream),
//! - `DELETE` with no body (ending a session),
//! - `POST` whose complete body is exactly one strict JSON-RPC 2.0 object whose method is on
//!   the [`AllowList`].
//!
//! A complete, well-formed `tools/call` request parks. Everything else is denied with a
//! reason that says what was wrong.

mod allow;
mod strict;

use std::collections::BTreeMap;

pub use allow::{AllowList, AllowListError, DEFAULT as DEFAULT_ALLOWED_METHODS, Pattern};
use serde_json::{Map, Value};
pub use strict::StrictError;

/// The one JSON-RPC method that parks.
pub const TOOLS_CALL: &str = "tools/call";

/// Members a JSON-RPC 2.0 request or notification may have.
const RPC_MEMBERS: [&str; 4] = ["jsonrpc", "id", "method", "params"];

/// Members of `tools/call` params whose meaning the gate relies on.
const TOOL_CALL_MEMBERS: [&str; 2] = ["name", "arguments"];

/// What the gateway told us about one request.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// HTTP method, as sent (methods are case-sensitive).
    pub method: &'a str,
    pub path: &'a str,
    /// Request headers with lower-case names.
    pub headers: &'a BTreeMap<String, String>,
    /// The body bytes the gateway forwarded (possibly cut at its limit).
    pub body: &'a [u8],
    /// The body reached the gate as text (`http.body`), where the gateway has replaced any
    /// invalid UTF-8 with U+FFFD: what the gate sees may not be what the backend gets.
    pub body_is_text: bool,
    /// `CheckRequest` `http.size`; `None` when the gateway sent -1. Envoy sends the
    /// Content-Length (-1 without one); agentgateway the bytes it buffered, and -1 when it cut
    /// the body at its forwarding limit (its only partial marker).
    pub declared_size: Option<u64>,
}

/// The outcome of classifying one frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass(Pass),
    Deny(Denial),
    Park(ToolCall),
}

/// Why a frame passes unreviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// `GET` with no body: the server-to-client SSE stream.
    EventStream,
    /// `DELETE` with no body: the client ends its session.
    SessionEnd,
    /// A JSON-RPC request or notification whose method is on the allow-list.
    Rpc { method: String },
}

/// A fully parsed `tools/call`, held for a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    /// The call's `arguments` object (`{}` when the call had none).
    pub arguments: Value,
}

/// Why a frame is refused without review. The `Display` text is the reason the caller sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("HTTP method {0:?} is not part of MCP's HTTP transport (only GET, POST, DELETE)")]
    HttpMethod(String),
    #[error("{method} with a body is not MCP transport housekeeping ({detail})")]
    BodyOnBodyless { method: String, detail: String },
    #[error(
        "the request body was cut at the gateway's forwarding limit ({0}): an incomplete body can't be checked"
    )]
    Partial(String),
    #[error(
        "the request body's length was not declared (no Content-Length): the gate can't prove it saw all of it"
    )]
    UnknownLength,
    #[error("{0}")]
    LengthMismatch(String),
    #[error(
        "the body reached the gate as text with invalid UTF-8 replaced (U+FFFD): the bytes the gateway forwards may differ from the ones checked; escape U+FFFD as \\ufffd"
    )]
    LossyText,
    #[error("empty POST body: expected one JSON-RPC message")]
    EmptyBody,
    #[error("content-encoding {0:?}: the gate only inspects unencoded bodies")]
    ContentEncoding(String),
    #[error("content-type {0:?}: expected application/json")]
    ContentType(String),
    #[error("{0}")]
    Json(#[from] StrictError),
    #[error(
        "JSON-RPC batches (arrays) are not allowed through the gate: send one message per request"
    )]
    Batch,
    #[error("body is a JSON {0}, not a JSON-RPC message object")]
    NotAnObject(&'static str),
    #[error("\"jsonrpc\" must be the string \"2.0\"")]
    Version,
    #[error(
        "unexpected member {0:?} in the JSON-RPC message (allowed: jsonrpc, id, method, params)"
    )]
    UnexpectedMember(String),
    #[error(
        "no \"method\": JSON-RPC responses and other method-less messages are not allowed through the gate"
    )]
    NoMethod,
    #[error("\"method\" must be a string")]
    MethodNotString,
    #[error("\"id\" must be a string or a number")]
    BadId,
    #[error("\"params\" must be an object")]
    ParamsNotObject,
    #[error("JSON-RPC method {0:?} is not on the gate's allow-list")]
    MethodNotAllowed(String),
    #[error("malformed tools/call: {0}")]
    BadToolCall(String),
}

impl Frame<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Classify one frame against the allow-list.
pub fn classify(frame: &Frame<'_>, allow: &AllowList) -> Verdict {
    match classify_inner(frame, allow) {
        Ok(verdict) => verdict,
        Err(denial) => Verdict::Deny(denial),
    }
}

fn classify_inner(frame: &Frame<'_>, allow: &AllowList) -> Result<Verdict, Denial> {
    match frame.method {
        "GET" => bodyless(frame).map(|()| Verdict::Pass(Pass::EventStream)),
        "DELETE" => bodyless(frame).map(|()| Verdict::Pass(Pass::SessionEnd)),
        "POST" => {
            complete_body(frame)?;
            json_rpc(frame, allow)
        }
        other => Err(Denial::HttpMethod(other.to_owned())),
    }
}

/// Marker header value Envoy sets when it forwarded only part of the body.
fn partial_marker(frame: &Frame<'_>) -> bool {
    frame
        .header(hitl_wire::headers::ENVOY_PARTIAL_BODY)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `GET`/`DELETE`: proven to carry no body at all.
fn bodyless(frame: &Frame<'_>) -> Result<(), Denial> {
    let deny = |detail: String| {
        Err(Denial::BodyOnBodyless {
            method: frame.method.to_owned(),
            detail,
        })
    };
    if !frame.body.is_empty() {
        return deny(format!("{} body bytes", frame.body.len()));
    }
    if partial_marker(frame) {
        return deny("the gateway marked the body partial".into());
    }
    if let Some(size) = frame.declared_size.filter(|&s| s > 0) {
        return deny(format!("declared size {size}"));
    }
    if let Some(len) = frame.header("content-length").filter(|v| v.trim() != "0") {
        return deny(format!("content-length {len}"));
    }
    if let Some(te) = frame.header("transfer-encoding") {
        return deny(format!("transfer-encoding {te}"));
    }
    Ok(())
}

/// `POST`: the forwarded bytes are the whole body, unencoded JSON.
///
/// The rules mean the same behind Envoy and agentgateway:
/// 1. No `Content-Length`: the gate cannot prove it saw the whole body (chunked bodies;
///    agentgateway strips `Transfer-Encoding` before the gate sees the request, and stops
///    buffering an HTTP/2 body at its first empty DATA frame), so it is denied on both.
/// 2. Cut at the forwarding limit: Envoy says so with `x-envoy-auth-partial-body: true`
///    (a client's own copy is removed by the gateway first), agentgateway with `size == -1`.
/// 3. Text with U+FFFD (agentgateway sends text only): invalid UTF-8 may have been replaced.
/// 4. The forwarded bytes, `size` and `Content-Length` all agree.
fn complete_body(frame: &Frame<'_>) -> Result<(), Denial> {
    let received = frame.body.len() as u64;
    let header = frame
        .header("content-length")
        .ok_or(Denial::UnknownLength)?;
    if partial_marker(frame) || frame.declared_size.is_none() {
        return Err(Denial::Partial(format!("{received} bytes forwarded")));
    }
    if frame.body_is_text && frame.body.windows(3).any(|w| w == "\u{fffd}".as_bytes()) {
        return Err(Denial::LossyText);
    }
    let declared = frame.declared_size.ok_or(Denial::UnknownLength)?;
    match header.trim().parse::<u64>() {
        Ok(len) if len == declared => {}
        _ => {
            return Err(Denial::LengthMismatch(format!(
                "content-length {header:?} disagrees with the declared size {declared}"
            )));
        }
    }
    if received < declared {
        return Err(Denial::Partial(format!(
            "{received} of {declared} bytes forwarded"
        )));
    }
    if received > declared {
        return Err(Denial::LengthMismatch(format!(
            "the gateway forwarded {received} bytes but the request declared {declared}"
        )));
    }
    if received == 0 {
        return Err(Denial::EmptyBody);
    }
    if let Some(encoding) = frame.header("content-encoding")
        && !encoding.trim().eq_ignore_ascii_case("identity")
    {
        return Err(Denial::ContentEncoding(encoding.to_owned()));
    }
    let content_type = frame.header("content-type").unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(Denial::ContentType(content_type.to_owned()));
    }
    Ok(())
}

/// One strict JSON-RPC 2.0 message: allow-listed → pass, `tools/call` → park.
fn json_rpc(frame: &Frame<'_>, allow: &AllowList) -> Result<Verdict, Denial> {
    let message = match strict::parse(frame.body)? {
        Value::Object(message) => message,
        Value::Array(_) => return Err(Denial::Batch),
        other => return Err(Denial::NotAnObject(json_kind(&other))),
    };
    if let Some(unexpected) = message.keys().find(|k| !RPC_MEMBERS.contains(&k.as_str())) {
        let is_response = matches!(unexpected.as_str(), "result" | "error");
        return Err(if is_response && !message.contains_key("method") {
            Denial::NoMethod
        } else {
            Denial::UnexpectedMember(unexpected.clone())
        });
    }
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Denial::Version);
    }
    let method = match message.get("method") {
        Some(Value::String(method)) => method.as_str(),
        Some(_) => return Err(Denial::MethodNotString),
        None => return Err(Denial::NoMethod),
    };
    let id = message.get("id");
    if id.is_some_and(|id| !(id.is_string() || id.is_number())) {
        return Err(Denial::BadId);
    }
    let params = match message.get("params") {
        None => None,
        Some(Value::Object(params)) => Some(params),
        Some(_) => return Err(Denial::ParamsNotObject),
    };
    if method == TOOLS_CALL {
        if id.is_none() {
            return Err(Denial::BadToolCall(
                "sent as a notification (no \"id\"), so no result could be returned".into(),
            ));
        }
        let params = params.ok_or_else(|| Denial::BadToolCall("no \"params\"".into()))?;
        return tool_call(params).map(Verdict::Park);
    }
    if allow.matches(method) {
        return Ok(Verdict::Pass(Pass::Rpc {
            method: method.to_owned(),
        }));
    }
    Err(Denial::MethodNotAllowed(method.to_owned()))
}

fn tool_call(params: &Map<String, Value>) -> Result<ToolCall, Denial> {
    // A server that matches member names case-insensitively would read "Name" as "name":
    // refuse anything the gate and such a server could read differently.
    if let Some(lookalike) = params.keys().find(|k| {
        TOOL_CALL_MEMBERS
            .iter()
            .any(|m| k.eq_ignore_ascii_case(m) && k.as_str() != *m)
    }) {
        return Err(Denial::BadToolCall(format!(
            "member {lookalike:?} differs from a tools/call member only by case"
        )));
    }
    let name = match params.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        Some(Value::String(_)) => return Err(Denial::BadToolCall("empty \"name\"".into())),
        Some(_) => return Err(Denial::BadToolCall("\"name\" must be a string".into())),
        None => return Err(Denial::BadToolCall("no \"name\"".into())),
    };
    let arguments = match params.get("arguments") {
        None => Value::Object(Map::new()),
        Some(args @ Value::Object(_)) => args.clone(),
        Some(_) => {
            return Err(Denial::BadToolCall(
                "\"arguments\" must be an object".into(),
            ));
        }
    };
    Ok(ToolCall { name, arguments })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests;
