//! Reading the agent's gates out of A2A messages: its tier-1 pauses, its questions, its tool
//! activity and its words (the answers are written in [`super::answer`]).
//!
//! kagent 0.10.x pauses a task `input-required` with an `adk_request_confirmation` data part
//! (for `requireApproval` tools and for the built-in `ask_user` tool) and resumes on a
//! `decision_type` data part. Newer kagent declares the `hitl/v1` extension in its card and
//! uses message metadata instead; both are read here.

use serde_json::Value;

use super::types::{Message, Part};

/// The framework-neutral HITL extension newer kagent declares in its agent card.
pub const HITL_V1: &str = "https://kagent.dev/extensions/hitl/v1";
/// Data-part `name` of kagent 0.10's confirmation request.
pub const ADK_REQUEST_CONFIRMATION: &str = "adk_request_confirmation";
/// The engine's built-in question tool.
pub const ASK_USER: &str = "ask_user";

/// Which dialect a pause was announced in (the answer is sent in the same one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `adk_request_confirmation` / `decision_type` (kagent 0.10.x).
    AdkConfirmation,
    /// `tool_approval_request` / `tool_approval_response` metadata (`hitl/v1`).
    HitlV1,
}

/// A tool call waiting for the chat user's approval (tier 1).
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRequest {
    pub dialect: Dialect,
    /// Id of the confirmation request itself (`adk-…`).
    pub confirmation_id: String,
    /// The model's tool-call id.
    pub tool_call_id: String,
    pub tool: String,
    pub args: Value,
    pub hint: String,
}

/// A question the agent asks with `ask_user`.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub confirmation_id: String,
    pub tool_call_id: String,
    pub questions: Vec<QuestionItem>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuestionItem {
    pub question: String,
    pub choices: Vec<String>,
}

/// What an `input-required` task waits for.
#[derive(Debug, Clone, PartialEq)]
pub enum Pause {
    Approval(Vec<ApprovalRequest>),
    Question(Question),
}

/// The chat user's decision on a tier-1 approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject { reason: String },
}

/// Tool activity the agent reports as it works.
#[derive(Debug, Clone, PartialEq)]
pub enum Activity {
    Call {
        id: String,
        tool: String,
        args: Value,
    },
    Result {
        id: String,
        tool: String,
        /// The result as text (MCP content joined, or the engine's own message).
        text: String,
        is_error: bool,
    },
}

/// The pause announced by an agent message, if any.
pub fn pause_of(message: &Message) -> Option<Pause> {
    let mut approvals = Vec::new();
    for part in &message.parts {
        let Part::Data { data, .. } = part else {
            continue;
        };
        if data.get("name").and_then(Value::as_str) != Some(ADK_REQUEST_CONFIRMATION) {
            continue;
        }
        let confirmation_id = str_at(data, "/id");
        let original = data.pointer("/args/originalFunctionCall").cloned();
        let original = original.unwrap_or(Value::Null);
        let tool = str_at(&original, "/name");
        let tool_call_id = str_at(&original, "/id");
        let args = original.get("args").cloned().unwrap_or(Value::Null);
        if tool == ASK_USER {
            return Some(Pause::Question(Question {
                confirmation_id,
                tool_call_id,
                questions: questions_of(&args),
            }));
        }
        approvals.push(ApprovalRequest {
            dialect: Dialect::AdkConfirmation,
            confirmation_id,
            tool_call_id,
            tool,
            args,
            hint: str_at(data, "/args/toolConfirmation/hint"),
        });
    }
    if approvals.is_empty() {
        approvals = hitl_v1_requests(message);
    }
    (!approvals.is_empty()).then_some(Pause::Approval(approvals))
}

/// `hitl/v1`: `metadata.tool_approval_request` holds one request or a list of them, each with
/// an id, a tool name and its arguments (field names read tolerantly).
fn hitl_v1_requests(message: &Message) -> Vec<ApprovalRequest> {
    let Some(request) = message
        .metadata
        .as_ref()
        .and_then(|m| m.get("tool_approval_request"))
    else {
        return Vec::new();
    };
    let items: Vec<&Value> = match request {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => match ["requests", "tools", "tool_calls"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_array))
        {
            Some(items) => items.iter().collect(),
            None => vec![request],
        },
        _ => Vec::new(),
    };
    items
        .into_iter()
        .map(|item| {
            let id = first_str(item, &["/id", "/tool_call_id", "/toolCallId"]);
            ApprovalRequest {
                dialect: Dialect::HitlV1,
                confirmation_id: id.clone(),
                tool_call_id: id,
                tool: first_str(item, &["/name", "/tool_name", "/toolName", "/tool"]),
                args: ["args", "arguments"]
                    .iter()
                    .find_map(|k| item.get(*k).cloned())
                    .unwrap_or(Value::Null),
                hint: first_str(item, &["/hint", "/reason"]),
            }
        })
        .collect()
}

fn questions_of(args: &Value) -> Vec<QuestionItem> {
    args.get("questions")
        .and_then(Value::as_array)
        .map(|qs| {
            qs.iter()
                .map(|q| QuestionItem {
                    question: str_at(q, "/question"),
                    choices: q
                        .get("choices")
                        .and_then(Value::as_array)
                        .map(|c| {
                            c.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Tool calls and results reported in an agent message, in order. Confirmation requests are
/// not tool calls (see [`pause_of`]).
pub fn activities_of(message: &Message) -> Vec<Activity> {
    let mut out = Vec::new();
    for part in &message.parts {
        let Part::Data { data, .. } = part else {
            continue;
        };
        match part.kagent_type() {
            Some("function_call") => {
                let tool = str_at(data, "/name");
                if tool == ADK_REQUEST_CONFIRMATION {
                    continue;
                }
                out.push(Activity::Call {
                    id: str_at(data, "/id"),
                    tool,
                    args: data.get("args").cloned().unwrap_or(Value::Null),
                });
            }
            Some("function_response") => {
                let tool = str_at(data, "/name");
                if tool == ADK_REQUEST_CONFIRMATION {
                    continue;
                }
                let response = mcp_result(data.get("response").cloned().unwrap_or(Value::Null));
                out.push(Activity::Result {
                    id: str_at(data, "/id"),
                    tool,
                    text: response_text(&response),
                    is_error: response
                        .get("isError")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                });
            }
            _ => {}
        }
    }
    out
}

/// kagent-langgraph reports a tool result as the tool message's text only; our LangGraph
/// agent puts the MCP `CallToolResult` JSON there (so `isError` survives). Such a string is
/// read as the object it holds; any other response is left as it is.
fn mcp_result(response: Value) -> Value {
    if let Value::String(text) = &response
        && let Ok(parsed @ Value::Object(_)) = serde_json::from_str::<Value>(text)
        && parsed.get("content").is_some_and(Value::is_array)
    {
        return parsed;
    }
    response
}

/// A function response as text: MCP `content[].text` joined, `result` if a string, the
/// string itself, or JSON.
fn response_text(response: &Value) -> String {
    if let Value::String(text) = response {
        return text.clone();
    }
    if let Some(content) = response.get("content").and_then(Value::as_array) {
        return content
            .iter()
            .filter_map(|c| c.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n");
    }
    match response.get("result") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => response.to_string(),
    }
}

/// Plain text of a message (its text parts joined).
pub fn text_of(message: &Message) -> String {
    message
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn str_at(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn first_str(value: &Value, pointers: &[&str]) -> String {
    pointers
        .iter()
        .find_map(|p| value.pointer(p).and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned()
}
