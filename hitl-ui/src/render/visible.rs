//! Characters a reviewer cannot see, made visible: bidi controls (which reorder text, so a
//! version `\u{202e}4v` reads "v4"), zero-width and other invisible characters, and control
//! characters are shown as `⟨U+202E⟩`. The card says so when it had to.

use std::{borrow::Cow, fmt::Write as _};

use hitl_wire::extauth::ParkedCall;
use serde_json::Value;

/// Whether `c` is shown as its code point instead of itself. Newline and tab stay: the
/// pretty-printed arguments and request body are multi-line.
pub fn is_hidden(c: char) -> bool {
    matches!(c,
        // C0 and C1 controls, DEL
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // bidi: ALM, LRM, RLM, embeddings and overrides, isolates
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        // zero-width and invisible formatting
        | '\u{ad}' | '\u{34f}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}' | '\u{180b}'..='\u{180f}'
        | '\u{200b}'..='\u{200d}' | '\u{2028}' | '\u{2029}' | '\u{2060}'..='\u{2064}' | '\u{206a}'..='\u{206f}'
        | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}' | '\u{fff9}'..='\u{fffb}'
        // tag characters (invisible ASCII look-alikes)
        | '\u{e0000}'..='\u{e007f}'
    )
}

/// `text` with every hidden character written as `⟨U+XXXX⟩`.
pub fn text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hidden(c) {
            let _ = write!(out, "⟨U+{:04X}⟩", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn owned(value: &str, found: &mut bool) -> String {
    match text(value) {
        Cow::Borrowed(same) => same.to_owned(),
        Cow::Owned(changed) => {
            *found = true;
            changed
        }
    }
}

fn json(value: &Value, found: &mut bool) -> Value {
    match value {
        Value::String(s) => Value::String(owned(s, found)),
        Value::Array(items) => Value::Array(items.iter().map(|v| json(v, found)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (owned(k, found), json(v, found)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A copy of `call` for display, every field a reviewer reads made visible (the id, which the
/// gate made, stays as it is); and whether anything had to be changed.
pub fn call(call: &ParkedCall) -> (ParkedCall, bool) {
    let mut found = false;
    let mut shown = call.clone();
    shown.tool_name = owned(&call.tool_name, &mut found);
    shown.tool_args = json(&call.tool_args, &mut found);
    shown.requester = call.requester.as_deref().map(|r| owned(r, &mut found));
    shown.method = owned(&call.method, &mut found);
    shown.path = owned(&call.path, &mut found);
    shown.rpc_method = owned(&call.rpc_method, &mut found);
    shown.body = owned(&call.body, &mut found);
    shown.headers = call
        .headers
        .iter()
        .map(|(k, v)| (owned(k, &mut found), owned(v, &mut found)))
        .collect();
    (shown, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_zero_width_and_controls_are_spelled_out() {
        assert_eq!(text("\u{202e}4v"), "⟨U+202E⟩4v");
        assert_eq!(text("or\u{200b}ders"), "or⟨U+200B⟩ders");
        assert_eq!(text("a\u{7}b\u{feff}"), "a⟨U+0007⟩b⟨U+FEFF⟩");
        assert_eq!(text("\u{e0041}"), "⟨U+E0041⟩");
        assert!(matches!(
            text("plain v3, ünïcødé, 日本, emoji 🙂\n\ttab"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn every_shown_field_of_a_call_is_covered() {
        let mut raw =
            crate::test_support::call_from(Some("ali\u{200d}ce"), &[("x-agent-id", "a\u{202e}b")]);
        raw.tool_args = serde_json::json!({"version": "\u{202e}4v", "k\u{200b}": ["\u{2066}x"]});
        let (shown, found) = call(&raw);
        assert!(found);
        assert_eq!(shown.requester.as_deref(), Some("ali⟨U+200D⟩ce"));
        assert_eq!(shown.tool_args["version"], "⟨U+202E⟩4v");
        assert_eq!(shown.tool_args["k⟨U+200B⟩"][0], "⟨U+2066⟩x");
        assert_eq!(shown.headers["x-agent-id"], "a⟨U+202E⟩b");
        assert_eq!(shown.id, raw.id);
        let (_, clean) = call(&crate::test_support::call_from(Some("alice"), &[]));
        assert!(!clean);
    }
}
