//! The scripted model's script: what the deterministic OpenAI-compatible model answers at
//! each turn of a conversation. Scene files embed these turns; the scene runner pushes them
//! to `scripted-model` (`PUT /script`) before each scene.

use serde::{Deserialize, Serialize};

/// A whole conversation's worth of model turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Name shown in the model's answers when the script runs out (e.g. the scene id).
    #[serde(default)]
    pub name: String,
    /// Turn `i` answers the request whose history holds `i` assistant messages after the
    /// newest user message (each user message starts the script over).
    pub turns: Vec<Turn>,
}

/// One model turn: the first alternative whose `when` matches is the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    pub respond: Vec<Response>,
}

/// One possible answer for a turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// Only answer this way if the condition holds (absent: always).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    /// Call a tool with these arguments (string values may use templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<ToolCall>,
    /// Say this text (templates allowed). With `call`, sent as the content beside the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
}

/// A condition on the conversation so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum When {
    /// The newest tool result contains this text.
    ToolResultContains(String),
    /// The newest user message contains this text (case-insensitive).
    UserSaid(String),
}

/// A tool call the model makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    pub tool: String,
    #[serde(default = "empty_object")]
    pub args: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Template placeholders available in `say` and string tool arguments.
pub mod template {
    /// Content of the newest `tool` message.
    pub const LAST_TOOL_RESULT: &str = "{{last_tool_result}}";
    /// Content of the newest `user` message.
    pub const LAST_USER_MESSAGE: &str = "{{last_user_message}}";
}

/// One chat-completions request as the scripted model received it (`GET /requests`), so a
/// scene can check what reached the model (e.g. a rejection reason).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeenRequest {
    /// Index of the turn this request was answered with.
    pub turn: usize,
    pub stream: bool,
    /// The request's `messages`, verbatim.
    pub messages: Vec<serde_json::Value>,
    /// Names of the tools the model was offered.
    pub tools: Vec<String>,
}
