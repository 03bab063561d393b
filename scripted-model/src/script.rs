//! Choosing the answer: which turn of the script a request is at, which alternative of that
//! turn matches the conversation, and filling in templates. Pure, so it is unit-tested here.

use hitl_wire::model::{Response, Script, When, template};
use serde_json::Value;

use crate::openai::{Answer, AnswerToolCall};

/// The facts about a conversation the script can react to.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Conversation {
    /// Number of assistant messages since the newest user message: the index of the turn to
    /// play. Each user message starts the script over, so one script serves every prompt of
    /// a chat (alternatives pick by what the user said).
    pub turn: usize,
    /// User messages before the newest one: tool-call ids carry it after the first, so a call
    /// made again on a later prompt ("Try again.") has an id of its own.
    pub earlier_prompts: usize,
    pub last_tool_result: Option<String>,
    pub last_user_message: Option<String>,
}

impl Conversation {
    /// Read the facts out of an OpenAI `messages` array.
    pub fn from_messages(messages: &[Value]) -> Self {
        let mut conv = Conversation::default();
        for message in messages {
            match message.get("role").and_then(Value::as_str) {
                Some("assistant") => conv.turn += 1,
                Some("tool") => conv.last_tool_result = Some(tool_text(message)),
                Some("user") => {
                    if conv.last_user_message.is_some() {
                        conv.earlier_prompts += 1;
                    }
                    conv.turn = 0;
                    conv.last_tool_result = None;
                    conv.last_user_message = Some(text_of(message));
                }
                _ => {}
            }
        }
        conv
    }

    fn matches(&self, when: &When) -> bool {
        match when {
            When::ToolResultContains(needle) => self
                .last_tool_result
                .as_deref()
                .is_some_and(|t| t.contains(needle.as_str())),
            When::UserSaid(needle) => self
                .last_user_message
                .as_deref()
                .is_some_and(|t| t.to_lowercase().contains(&needle.to_lowercase())),
        }
    }

    fn render(&self, text: &str) -> String {
        text.replace(
            template::LAST_TOOL_RESULT,
            self.last_tool_result.as_deref().unwrap_or(""),
        )
        .replace(
            template::LAST_USER_MESSAGE,
            self.last_user_message.as_deref().unwrap_or(""),
        )
    }

    fn render_value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.render(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.render_value(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.render_value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// `content` as text: a string, or the text parts of a content array joined.
/// A tool message's text; when that text is an MCP `CallToolResult` (`{"content": [...]}`,
/// how our LangGraph agent hands results to its model), the result's own text, so a template
/// reads the same on every agent.
fn tool_text(message: &Value) -> String {
    let text = text_of(message);
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(result)) if result.get("content").is_some_and(Value::is_array) => {
            text_of(&Value::Object(result))
        }
        _ => text,
    }
}

fn text_of(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The answer the script gives to this conversation. Running past the script, or a turn
/// with no matching alternative, is answered in words that say so (so the agent's reply,
/// and the scene's assertions, show what went wrong instead of hanging).
pub fn answer(script: &Script, conv: &Conversation) -> Answer {
    let name = if script.name.is_empty() {
        "(none loaded)"
    } else {
        script.name.as_str()
    };
    let Some(turn) = script.turns.get(conv.turn) else {
        return say(format!(
            "scripted-model: script {name} has no turn {} (it has {}); the conversation went \
             further than the scene expected",
            conv.turn,
            script.turns.len()
        ));
    };
    let Some(response) = turn
        .respond
        .iter()
        .find(|r| r.when.as_ref().is_none_or(|w| conv.matches(w)))
    else {
        return say(format!(
            "scripted-model: no answer in turn {} of script {name} matches the conversation \
             (last tool result: {:?})",
            conv.turn, conv.last_tool_result
        ));
    };
    render(response, conv)
}

fn render(response: &Response, conv: &Conversation) -> Answer {
    Answer {
        content: response.say.as_deref().map(|s| conv.render(s)),
        tool_call: response.call.as_ref().map(|call| AnswerToolCall {
            id: match conv.earlier_prompts {
                0 => format!("call_{:03}_{}", conv.turn, call.tool),
                n => format!("call_p{n}_{:03}_{}", conv.turn, call.tool),
            },
            name: call.tool.clone(),
            arguments: conv.render_value(&call.args).to_string(),
        }),
    }
}

fn say(text: String) -> Answer {
    Answer {
        content: Some(text),
        tool_call: None,
    }
}

#[cfg(test)]
mod tests {
    use hitl_wire::model::{ToolCall, Turn};
    use serde_json::json;

    use super::*;

    fn reject_script() -> Script {
        Script {
            name: "tier-1 reject".into(),
            turns: vec![
                Turn {
                    respond: vec![Response {
                        when: None,
                        call: Some(ToolCall {
                            tool: "truncate_table".into(),
                            args: json!({"table": "orders"}),
                        }),
                        say: None,
                    }],
                },
                Turn {
                    respond: vec![
                        Response {
                            when: Some(When::ToolResultContains("rejected".into())),
                            call: None,
                            say: Some("Not done: {{last_tool_result}}".into()),
                        },
                        Response {
                            when: None,
                            call: None,
                            say: Some("Done.".into()),
                        },
                    ],
                },
            ],
        }
    }

    fn messages_after_tool(result: &str) -> Vec<Value> {
        vec![
            json!({"role": "system", "content": "sys"}),
            json!({"role": "user", "content": "Truncate the orders table"}),
            json!({"role": "assistant", "content": null, "tool_calls": []}),
            json!({"role": "tool", "tool_call_id": "x", "content": result}),
        ]
    }

    #[test]
    fn first_turn_calls_the_tool() {
        let conv = Conversation::from_messages(&[json!({"role": "user", "content": "hi"})]);
        let answer = answer(&reject_script(), &conv);
        let call = answer.tool_call.expect("a tool call");
        assert_eq!(call.name, "truncate_table");
        assert_eq!(call.arguments, r#"{"table":"orders"}"#);
        assert_eq!(call.id, "call_000_truncate_table");
    }

    #[test]
    fn rejection_reason_is_repeated_verbatim() {
        let result = "Tool call was rejected by user. Reason: keep the orders";
        let conv = Conversation::from_messages(&messages_after_tool(result));
        let answer = answer(&reject_script(), &conv);
        assert_eq!(
            answer.content.as_deref(),
            Some(&*format!("Not done: {result}"))
        );
        assert!(answer.tool_call.is_none());
    }

    #[test]
    fn falls_through_to_the_unconditional_alternative() {
        let conv = Conversation::from_messages(&messages_after_tool(r#"{"rows_deleted":3}"#));
        assert_eq!(
            answer(&reject_script(), &conv).content.as_deref(),
            Some("Done.")
        );
    }

    #[test]
    fn running_past_the_script_says_so() {
        let mut messages = messages_after_tool("x");
        messages.push(json!({"role": "assistant", "content": "Done."}));
        messages.push(json!({"role": "tool", "tool_call_id": "y", "content": "late"}));
        let conv = Conversation::from_messages(&messages);
        let text = answer(&reject_script(), &conv).content.unwrap();
        assert!(text.contains("has no turn 2 (it has 2)"), "{text}");
    }

    #[test]
    fn a_new_user_message_starts_the_script_over() {
        let mut messages = messages_after_tool("rejected");
        messages.push(json!({"role": "assistant", "content": "Not done."}));
        messages.push(json!({"role": "user", "content": "Then query it"}));
        let conv = Conversation::from_messages(&messages);
        assert_eq!(conv.turn, 0);
        assert_eq!(conv.last_tool_result, None);
        assert_eq!(conv.last_user_message.as_deref(), Some("Then query it"));
    }

    #[test]
    fn a_call_made_again_on_a_later_prompt_has_an_id_of_its_own() {
        let mut messages = messages_after_tool("rejected");
        messages.push(json!({"role": "assistant", "content": "Not done."}));
        messages.push(json!({"role": "user", "content": "Try again."}));
        let conv = Conversation::from_messages(&messages);
        assert_eq!(conv.earlier_prompts, 1);
        let call = answer(&reject_script(), &conv).tool_call.unwrap();
        assert_eq!(call.id, "call_p1_000_truncate_table");
    }

    #[test]
    fn user_said_ignores_case() {
        let conv =
            Conversation::from_messages(&[json!({"role": "user", "content": "TRUNCATE it"})]);
        assert!(conv.matches(&When::UserSaid("truncate".into())));
    }

    #[test]
    fn templates_fill_tool_arguments() {
        let script = Script {
            name: "ask".into(),
            turns: vec![Turn {
                respond: vec![Response {
                    when: None,
                    call: Some(ToolCall {
                        tool: "truncate_table".into(),
                        args: json!({"table": "{{last_user_message}}"}),
                    }),
                    say: None,
                }],
            }],
        };
        let conv = Conversation::from_messages(&[json!({"role": "user", "content": [
            {"type": "text", "text": "customers"}
        ]})]);
        let call = answer(&script, &conv).tool_call.unwrap();
        assert_eq!(call.arguments, r#"{"table":"customers"}"#);
    }

    #[test]
    fn no_script_loaded_is_explained() {
        let text = answer(&Script::default(), &Conversation::default())
            .content
            .unwrap();
        assert!(text.contains("(none loaded)"), "{text}");
    }
}
