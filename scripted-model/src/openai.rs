//! The slice of the OpenAI chat-completions wire format the lab needs: tolerant requests,
//! exact responses (whole and streamed as `chat.completion.chunk`s).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An incoming `POST /v1/chat/completions` body. Unknown fields are ignored, as OpenAI does.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: String,
    pub messages: Vec<Value>,
    #[serde(default)]
    pub tools: Vec<Value>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

impl ChatRequest {
    /// Names of the offered tools (`tools[].function.name`).
    pub fn tool_names(&self) -> Vec<String> {
        self.tools
            .iter()
            .filter_map(|t| t.pointer("/function/name")?.as_str().map(str::to_owned))
            .collect()
    }
}

/// What the model decided to answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub content: Option<String>,
    pub tool_call: Option<AnswerToolCall>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerToolCall {
    pub id: String,
    pub name: String,
    /// JSON-encoded arguments, as OpenAI sends them.
    pub arguments: String,
}

impl Answer {
    fn finish_reason(&self) -> &'static str {
        if self.tool_call.is_some() {
            "tool_calls"
        } else {
            "stop"
        }
    }

    fn tool_calls_json(&self) -> Option<Value> {
        self.tool_call.as_ref().map(|c| {
            json!([{
                "index": 0,
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }])
        })
    }
}

/// Fixed, small usage figures: deterministic, and enough for clients that require them.
fn usage() -> Value {
    json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
}

/// A whole `chat.completion` object.
pub fn completion(id: &str, model: &str, created: i64, answer: &Answer) -> Value {
    let mut message = json!({"role": "assistant", "content": answer.content});
    if let Some(calls) = answer.tool_calls_json() {
        message["tool_calls"] = calls;
    }
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason()}],
        "usage": usage(),
    })
}

/// The `chat.completion.chunk`s of a streamed answer, in order (without the `[DONE]` line).
pub fn chunks(
    id: &str,
    model: &str,
    created: i64,
    answer: &Answer,
    include_usage: bool,
) -> Vec<Value> {
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let mut out = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    if let Some(text) = &answer.content {
        out.push(chunk(json!({"content": text}), None));
    }
    if let Some(calls) = answer.tool_calls_json() {
        out.push(chunk(json!({"tool_calls": calls}), None));
    }
    out.push(chunk(json!({}), Some(answer.finish_reason())));
    if include_usage {
        out.push(json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage(),
        }));
    }
    out
}
