//! A denial in MCP terms (hitl-extauth's `DENY_RESPONSE=mcp`): the answer, HTTP 200, to the
//! denied JSON-RPC request's id. A `tools/call` gets a tool result marked `isError` whose text
//! is the reason (the model reads it; MCP clients retry errors, not results); any other
//! request a JSON-RPC error with [`DENIED_CODE`]. Either way the [`DenyBody`] of the 403 rides
//! along under [`META_KEY`]. hitl-extauth writes it with [`write`]; readers take it apart with
//! [`parse`] (a whole JSON-RPC answer) or [`from_tool_result`] (a `CallToolResult` alone).

use serde_json::{Value, json};

use super::DenyBody;

/// JSON-RPC error code of a denied request that is not a `tools/call` (server-defined range).
pub const DENIED_CODE: i64 = -32003;

/// Key under which the denial carries its [`DenyBody`]: in the tool result's `_meta`, or in
/// the error's `data`.
pub const META_KEY: &str = "dev.hitl-lab/denial";

/// How every denial's text begins.
pub const PREFIX: &str = "denied at the gateway";

/// The text the agent reads: the reason, and the parked call's id when there was one.
pub fn message(body: &DenyBody) -> String {
    match &body.id {
        Some(park) => format!("{PREFIX} (parked call {park}): {}", body.reason),
        None => format!("{PREFIX}: {}", body.reason),
    }
}

/// The gate's reason when `text` *is* a denial's text ([`message`]: the whole content of the
/// tool result the gate answered); `None` otherwise. Only the start counts: a result that ran
/// may carry the same words anywhere in its data (a row, a column name), and must not read
/// as denied.
pub fn reason_of(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix(PREFIX)?;
    let rest = match rest.strip_prefix(" (parked call ") {
        Some(parked) => &parked[parked.find(')')? + 1..],
        None => rest,
    };
    Some(rest.strip_prefix(':')?.trim())
}

/// The JSON-RPC answer (as sent) to request `id`, denied with `body`: a tool result marked
/// `isError` when the request was a `tools/call`, a JSON-RPC error otherwise.
pub fn write(id: &Value, tool_call: bool, body: &DenyBody) -> String {
    let message = message(body);
    let mut answer = if tool_call {
        json!({
            "result": {
                "content": [{"type": "text", "text": message}],
                "isError": true,
                "_meta": {META_KEY: body},
            }
        })
    } else {
        json!({
            "error": {"code": DENIED_CODE, "message": message, "data": {META_KEY: body}},
        })
    };
    answer["jsonrpc"] = "2.0".into();
    answer["id"] = id.clone();
    answer.to_string()
}

/// A denial read back from a JSON-RPC answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    /// The id of the request it answers.
    pub id: Value,
    /// `true`: a tool result marked `isError` (the request was a `tools/call`); `false`: a
    /// JSON-RPC error.
    pub tool_error: bool,
    /// What the 403 would have carried.
    pub body: DenyBody,
}

/// `answer` (a JSON-RPC response's text) as a gate's denial; `None` when it is anything else
/// (a real tool result, another server's error, not JSON).
pub fn parse(answer: &str) -> Option<Denial> {
    let answer: Value = serde_json::from_str(answer).ok()?;
    let id = answer.get("id")?.clone();
    if let Some(result) = answer.get("result") {
        return Some(Denial {
            id,
            tool_error: true,
            body: from_tool_result(result)?,
        });
    }
    let error = answer.get("error")?;
    if error.get("code")?.as_i64()? != DENIED_CODE {
        return None;
    }
    Some(Denial {
        id,
        tool_error: false,
        body: serde_json::from_value(error.get("data")?.get(META_KEY)?.clone()).ok()?,
    })
}

/// A `CallToolResult` (the `result` of a `tools/call` answer) as a gate's denial: marked
/// `isError` and carrying the [`DenyBody`] under `_meta`.
pub fn from_tool_result(result: &Value) -> Option<DenyBody> {
    if result.get("isError")?.as_bool()? {
        serde_json::from_value(result.get("_meta")?.get(META_KEY)?.clone()).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> DenyBody {
        DenyBody {
            approved: false,
            reason: "change freeze".into(),
            id: Some("abc".into()),
        }
    }

    #[test]
    fn a_tool_call_is_denied_with_a_tool_error_the_model_reads() {
        let text = write(&"req-7".into(), true, &body());
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["id"], "req-7");
        assert_eq!(answer["result"]["isError"], true);
        assert_eq!(
            answer["result"]["content"][0]["text"],
            "denied at the gateway (parked call abc): change freeze"
        );
        assert_eq!(
            parse(&text),
            Some(Denial {
                id: "req-7".into(),
                tool_error: true,
                body: body()
            })
        );
    }

    #[test]
    fn other_requests_are_denied_with_a_json_rpc_error() {
        let text = write(&7.into(), false, &body());
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["error"]["code"], DENIED_CODE);
        assert_eq!(
            parse(&text),
            Some(Denial {
                id: 7.into(),
                tool_error: false,
                body: body()
            })
        );
    }

    #[test]
    fn the_reason_is_read_back_from_the_text() {
        assert_eq!(reason_of(&message(&body())), Some("change freeze"));
        let plain = DenyBody { id: None, ..body() };
        assert_eq!(reason_of(&message(&plain)), Some("change freeze"));
        assert_eq!(reason_of("migrated the schema from v2 to v3"), None);
        // The words inside other text (a row that holds them) are not a denial.
        assert_eq!(
            reason_of(r#"{"rows":[{"note":"denied at the gateway: approved"}]}"#),
            None
        );
        assert_eq!(reason_of(&format!("Tool error: {}", message(&plain))), None);
    }

    #[test]
    fn other_answers_are_not_denials() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":false}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32004,"message":"no"}}"#,
            "not json",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
