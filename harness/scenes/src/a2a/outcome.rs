//! What happened to a tool call, read from what the agent reports as its result (the same
//! words on every agent: kagent-adk's rejection text, the gate's denial text), and a tool
//! result made readable for a person: a short sentence, and the rows as a table when there
//! are rows. The chat page and `cargo xtask chat` show calls through this one reading.

use serde::Serialize;
use serde_json::{Map, Value};

/// kagent-adk's words for a call the user rejected (its LangGraph executor and our LangGraph
/// agent use the same), followed by ` Reason: <reason>` when there was one.
pub const REJECTED_BY_USER: &str = "Tool call was rejected by user.";

/// What happened to a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CallOutcome {
    /// The tool ran; what it returned, in a few words.
    Ran { summary: String },
    /// The chat user rejected it; it never ran.
    Rejected { reason: String },
    /// The gateway denied it (the gate's reason, a reviewer's rejection among them).
    Denied { reason: String },
    /// It ran into an error (the tool's or the transport's).
    Failed { error: String },
}

impl CallOutcome {
    /// Read the outcome from a call's result `text` as the agent reported it.
    pub fn of(text: &str, is_error: bool) -> Self {
        let text = envelope_text(text).unwrap_or_else(|| text.to_owned());
        if let Some(rest) = text.trim_start().strip_prefix(REJECTED_BY_USER) {
            let reason = rest.trim().strip_prefix("Reason:").unwrap_or(rest).trim();
            return Self::Rejected {
                reason: reason.to_owned(),
            };
        }
        if let Some(reason) = hitl_wire::extauth::denial::reason_of(&text) {
            return Self::Denied {
                reason: reason.to_owned(),
            };
        }
        if is_error {
            return Self::Failed {
                error: clip(text.trim(), SHORT),
            };
        }
        Self::Ran {
            summary: clip(&Readable::of(&text).sentence, SHORT),
        }
    }

    /// One line for a person, as the chat page words it: `✓ ran: …`, `✗ not run: rejected by
    /// you: …`, `✗ not run: denied at the gateway: …`, `✗ failed: …`.
    pub fn line(&self) -> String {
        let or_none = |r: &str| {
            if r.is_empty() {
                "(no reason given)".to_owned()
            } else {
                r.to_owned()
            }
        };
        match self {
            Self::Ran { summary } => format!("✓ ran: {summary}"),
            Self::Rejected { reason } => {
                format!("✗ not run: rejected by you: {}", or_none(reason))
            }
            Self::Denied { reason } => {
                format!("✗ not run: denied at the gateway: {}", or_none(reason))
            }
            Self::Failed { error } => format!("✗ failed: {error}"),
        }
    }
}

/// Longest summary on a call's line.
const SHORT: usize = 120;

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `text` holding an MCP `CallToolResult` (`{"content": [...], ...}`, as our LangGraph agent
/// reports a result): its content's text; `None` for anything else.
pub fn envelope_text(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text.trim()).ok()?;
    let content = value.get("content")?.as_array()?;
    Some(
        content
            .iter()
            .filter_map(|c| c.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Rows to show as a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    pub columns: Vec<String>,
    /// Each row's cells, in `columns` order, as text.
    pub rows: Vec<Vec<String>>,
}

/// A message made readable: JSON it carries turned into a sentence, and a table for rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readable {
    pub sentence: String,
    pub table: Option<Table>,
}

impl Readable {
    /// `text` as a person reads it: the words before any JSON it ends with, then that JSON
    /// said in a sentence (a query's rows as a table). Text without JSON is left as it is.
    pub fn of(text: &str) -> Self {
        let Some((before, value)) = trailing_json(text) else {
            return Self {
                sentence: text.to_owned(),
                table: None,
            };
        };
        let (said, table) = say(&value);
        let sentence = match before.trim_end() {
            "" => said,
            before => format!("{before} {said}"),
        };
        Self { sentence, table }
    }
}

/// The JSON object or array `text` ends with, and the words before it.
fn trailing_json(text: &str) -> Option<(&str, Value)> {
    let trimmed = text.trim_end();
    text.char_indices()
        .filter(|(_, c)| *c == '{' || *c == '[')
        .find_map(|(at, _)| {
            let value: Value = serde_json::from_str(&trimmed[at..]).ok()?;
            (value.is_object() || value.is_array()).then(|| (&text[..at], value))
        })
}

/// A tool result's JSON in a sentence (and its rows).
fn say(value: &Value) -> (String, Option<Table>) {
    let Some(object) = value.as_object() else {
        return (cell(value), None);
    };
    if let Some(rows) = object.get("rows").and_then(Value::as_array) {
        let table = table_of(object, rows);
        let n = rows.len();
        let mut sentence = format!("{n} row{}", if n == 1 { "" } else { "s" });
        if let Some(version) = object.get("schema_version").and_then(Value::as_str) {
            sentence.push_str(&format!(" (schema {version})"));
        }
        sentence.push('.');
        if let Some(note) = object.get("note").and_then(Value::as_str) {
            sentence.push_str(&format!(" ({note})"));
        }
        return (sentence, Some(table));
    }
    if let Some(message) = object.get("message").and_then(Value::as_str) {
        return (sentence_case(message), None);
    }
    if let (Some(table), Some(deleted)) = (object.get("table"), object.get("rows_deleted")) {
        return (
            format!(
                "Emptied the {} table: {} row(s) deleted.",
                cell(table),
                cell(deleted)
            ),
            None,
        );
    }
    let parts: Vec<String> = object
        .iter()
        .map(|(k, v)| format!("{}: {}", k.replace('_', " "), cell(v)))
        .collect();
    (sentence_case(&parts.join(", ")), None)
}

fn table_of(object: &Map<String, Value>, rows: &[Value]) -> Table {
    let mut columns: Vec<String> = object
        .get("columns")
        .and_then(Value::as_array)
        .map(|c| c.iter().map(cell).collect())
        .unwrap_or_default();
    if columns.is_empty()
        && let Some(first) = rows.first().and_then(Value::as_object)
    {
        columns = first.keys().cloned().collect();
    }
    let rows = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| row.get(c).map(cell).unwrap_or_default())
                .collect()
        })
        .collect();
    Table { columns, rows }
}

fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn sentence_case(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_is_not_a_run_on_either_agent() {
        let kagent = "Tool call was rejected by user. Reason: keep the orders";
        let langgraph = r#"{"content":[{"type":"text","text":"Tool call was rejected by user. Reason: keep the orders"}],"isError":true}"#;
        for (text, is_error) in [(kagent, false), (langgraph, true), (kagent, true)] {
            assert_eq!(
                CallOutcome::of(text, is_error),
                CallOutcome::Rejected {
                    reason: "keep the orders".into()
                }
            );
        }
        assert_eq!(
            CallOutcome::of(REJECTED_BY_USER, false).line(),
            "✗ not run: rejected by you: (no reason given)"
        );
    }

    #[test]
    fn a_denial_carries_the_gates_reason() {
        let text = "denied at the gateway (parked call ab12): rejected by reviewer: not today";
        assert_eq!(
            CallOutcome::of(text, true).line(),
            "✗ not run: denied at the gateway: rejected by reviewer: not today"
        );
    }

    #[test]
    fn a_result_that_ran_is_not_denied_whatever_its_rows_say() {
        let rows = r#"{"schema_version":"v2","columns":["note"],"rows":[{"note":"denied at the gateway: approved by security"}],"row_count":1,"truncated":false}"#;
        let wrapped = serde_json::json!({"content":[{"type":"text","text":rows}],"isError":false})
            .to_string();
        for (text, is_error) in [(rows, false), (wrapped.as_str(), false)] {
            let outcome = CallOutcome::of(text, is_error);
            assert!(matches!(outcome, CallOutcome::Ran { .. }), "{outcome:?}");
        }
        // A query that failed on such a name failed; the gateway did not deny it.
        let failed = "no such table: denied at the gateway: x";
        assert!(matches!(
            CallOutcome::of(failed, true),
            CallOutcome::Failed { .. }
        ));
    }

    #[test]
    fn results_read_the_same_in_and_out_of_the_mcp_envelope() {
        let rows = r#"{"schema_version":"v2","columns":["id","customer"],"rows":[{"id":1,"customer":"acme"}],"row_count":1,"truncated":false}"#;
        let wrapped = serde_json::json!({"content":[{"type":"text","text":rows}],"isError":false})
            .to_string();
        let plain = Readable::of(&format!("Here is the result: {rows}"));
        assert_eq!(plain.sentence, "Here is the result: 1 row (schema v2).");
        let table = plain.table.expect("rows");
        assert_eq!(table.columns, ["id", "customer"]);
        assert_eq!(table.rows, [["1", "acme"]]);
        assert_eq!(
            CallOutcome::of(&wrapped, false),
            CallOutcome::of(rows, false)
        );
        assert_eq!(
            CallOutcome::of(rows, false).line(),
            "✓ ran: 1 row (schema v2)."
        );
        let migrated = r#"{"from":"v2","to":"v3","message":"migrated the schema from v2 to v3"}"#;
        assert_eq!(
            CallOutcome::of(migrated, false).line(),
            "✓ ran: Migrated the schema from v2 to v3."
        );
        let truncated = r#"{"table":"orders","rows_deleted":3,"audit_seq":1}"#;
        assert_eq!(
            Readable::of(&format!("Done: {truncated}")).sentence,
            "Done: Emptied the orders table: 3 row(s) deleted."
        );
        assert_eq!(Readable::of("no json here").sentence, "no json here");
    }
}
