//! The history page: decided calls from hitl-extauth's `/history`, newest first, filterable
//! by outcome and tool — who decided what, when, why, and how it ended.

use hitl_wire::extauth::{DecidedCall, HistoryPage, HistoryQuery, Outcome};
use maud::{Markup, html};

use super::visible;
use super::{Tab, Viewer, card::asker, layout, when};

/// Filters as the reviewer chose them (already validated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub outcome: Option<Outcome>,
    pub tool: Option<String>,
    pub before: Option<String>,
}

impl Filters {
    pub fn to_query(&self, limit: u32) -> HistoryQuery {
        HistoryQuery {
            limit: Some(limit),
            before: self.before.clone(),
            outcome: self.outcome,
            tool: self.tool.clone(),
        }
    }

    /// Query string for the next (older) page: same filters, `before` moved on.
    fn older(&self, next_before: &str) -> String {
        let mut pairs = Vec::new();
        if let Some(outcome) = self.outcome {
            pairs.push(format!("outcome={}", outcome.as_str()));
        }
        if let Some(tool) = &self.tool {
            pairs.push(format!(
                "tool={}",
                hitl_wire::extauth::paths::encode_segment(tool)
            ));
        }
        pairs.push(format!(
            "before={}",
            hitl_wire::extauth::paths::encode_segment(next_before)
        ));
        format!("/history?{}", pairs.join("&"))
    }
}

/// The page; `result` is the history or why it could not be read.
pub fn page(
    viewer: &Viewer,
    filters: &Filters,
    result: Result<&HistoryPage, String>,
    queue_count: usize,
) -> Markup {
    let main = html! {
        div.page-head {
            h1 { "History" }
            p.muted { "Every call the gate held, and how it ended: who decided, when, and why." }
        }
        (filter_form(filters))
        @match result {
            Err(message) => div.banner.warn role="alert" { strong { "Cannot load the history. " } (message) },
            Ok(history) if history.items.is_empty() => {
                div.empty.small-empty {
                    @if *filters == Filters::default() {
                        h2 { "No decisions yet" }
                        p { "Approved, rejected and expired calls are listed here once they end." }
                    } @else {
                        h2 { "Nothing matches these filters" }
                        p { a href="/history" { "Show everything" } }
                    }
                }
            }
            Ok(history) => {
                div.table-wrap {
                    table.history {
                        thead { tr {
                            th { "Decided" } th { "Outcome" } th { "Call" } th { "Asked by" }
                            th { "Reviewer" } th { "Reason" } th.num { "Waited" }
                        } }
                        tbody { @for item in &history.items { (row(item)) } }
                    }
                }
                @if let Some(next) = &history.next_before {
                    p.pager { a.btn.btn-small href=(filters.older(next)) { "Older decisions →" } }
                }
            }
        }
    };
    layout("History", Tab::History, viewer, queue_count, main)
}

fn filter_form(filters: &Filters) -> Markup {
    html! {
        form.filters method="get" action="/history" {
            label {
                "Outcome "
                select name="outcome" {
                    option value="" selected[filters.outcome.is_none()] { "All" }
                    @for outcome in Outcome::ALL {
                        option value=(outcome.as_str()) selected[filters.outcome == Some(outcome)] { (outcome.as_str()) }
                    }
                }
            }
            label {
                "Tool "
                input type="text" name="tool" list="known-tools" placeholder="any tool"
                    value=[filters.tool.as_deref()];
                datalist #known-tools {
                    @for tool in hitl_wire::mockdb::tools::ALL.iter().rev() {
                        option value=(tool) {}
                    }
                }
            }
            button.btn.btn-small type="submit" { "Filter" }
            @if filters.outcome.is_some() || filters.tool.is_some() {
                a.link href="/history" { "Clear" }
            }
        }
    }
}

fn row(item: &DecidedCall) -> Markup {
    let (call, hidden_chars) = visible::call(&item.call);
    let reason = visible::text(&item.reason);
    let reviewer = item.reviewer.as_deref().map(visible::text);
    let who = asker(&call);
    let tool_title = call.tool_args.to_string();
    let tool_title = tool_title.chars().take(2000).collect::<String>();
    html! {
        tr data-call-id=(item.call.id) data-outcome=(item.outcome.as_str()) {
            td.nowrap { time datetime=(when::machine(item.decided_at)) { (when::timestamp(item.decided_at)) } }
            td { span class={ "outcome outcome-" (item.outcome.as_str()) } { (item.outcome.as_str()) } }
            td {
                code.tool { (compact(&serde_json::Value::String(call.tool_name.clone()), 60).trim_matches('"')) }
                div.args title=(tool_title) { (compact(&call.tool_args, 80)) }
                div.request-hash { "hash " (short_hash(&item.call.body_sha256)) }
                @if hidden_chars || matches!(reason, std::borrow::Cow::Owned(_)) {
                    div.hidden-chars { "contains invisible or direction-changing characters, shown as ⟨U+…⟩" }
                }
            }
            td { (who.summary()) }
            td { (reviewer.as_deref().unwrap_or("—")) }
            td.reason { @if item.reason.is_empty() { span.muted { "—" } } @else { (reason) } }
            td.num.nowrap { (when::waited(item.waited_ms)) }
        }
    }
}

/// The request's hash, under its call: the first 12 hex digits shown and all of it on hover
/// (the queue's card shows it whole).
fn short_hash(sha256: &str) -> Markup {
    let short: String = sha256.chars().take(12).collect();
    html! {
        code.hash title={ "sha256:" (sha256) " — the approval applied to exactly these bytes" } {
            (short) @if sha256.len() > short.len() { "…" }
        }
    }
}

/// One-line JSON, cut at `max` characters with an ellipsis.
fn compact(value: &serde_json::Value, max: usize) -> String {
    let text = value.to_string();
    if text.chars().count() <= max {
        text
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_link_keeps_filters() {
        let filters = Filters {
            outcome: Some(Outcome::Rejected),
            tool: Some("run migration".into()),
            before: None,
        };
        assert_eq!(
            filters.older("c&9"),
            "/history?outcome=rejected&tool=run%20migration&before=c%269"
        );
    }

    #[test]
    fn compact_cuts_long_args() {
        let value = serde_json::json!({"sql": "x".repeat(100)});
        let text = compact(&value, 20);
        assert_eq!(text.chars().count(), 21);
        assert!(text.ends_with('…'));
    }
}
