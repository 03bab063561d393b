//! One parked call as a card: what will change in words, who asked, the arguments, the raw
//! request, a countdown and the approve / reject form. Everything shown comes from the agent's
//! request, i.e. is attacker-controlled: it only ever reaches the page through maud's escaping,
//! with invisible and direction-changing characters spelled out ([`super::visible`]) and long
//! values clamped (a "Show all" button opens them), so the buttons stay in view.

use hitl_wire::{extauth::ParkedCall, headers, mockdb::tools};
use maud::{Markup, PreEscaped, html};
use time::OffsetDateTime;

use super::{policy, visible, when};
use crate::{schema::SchemaVersion, schema::display_version};

/// Longest reason we accept (characters); the form says so too.
pub const MAX_REASON: usize = 2000;

/// Longest argument value quoted in the headline; the arguments below show it all.
const HEADLINE_CHARS: usize = 60;
/// Blocks (arguments, body) longer than this many characters or lines start clamped.
const CLAMP_CHARS: usize = 1200;
const CLAMP_LINES: usize = 16;

/// `text` cut to `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// A `pre` block, clamped with a "Show all" button when long.
fn block(class: Option<&str>, text: &str) -> Markup {
    let chars = text.chars().count();
    let long = chars > CLAMP_CHARS || text.lines().count() > CLAMP_LINES;
    html! {
        @if long {
            div.clamp.clamped {
                pre class=[class] { code { (text) } }
                button.btn.show-all type="button" data-show-all aria-expanded="false" {
                    "Show all (" (chars) " characters)"
                }
            }
        } @else {
            pre class=[class] { code { (text) } }
        }
    }
}

/// What approving a call would do, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub headline: String,
    pub detail: String,
    /// A caveat worth reading before deciding.
    pub note: Option<String>,
}

/// Describe the effect of `call`; `schema` is the live schema version for migrations.
pub fn describe(call: &ParkedCall, schema: &SchemaVersion) -> Change {
    let arg = |name: &str| {
        call.tool_args
            .get(name)
            .and_then(scalar)
            .map(|s| shorten(&s, HEADLINE_CHARS))
    };
    match call.tool_name.as_str() {
        tools::RUN_MIGRATION => {
            if let Some(target) = arg("version").or_else(|| arg("target_version")) {
                return migration(&display_version(&target), schema);
            }
        }
        tools::TRUNCATE_TABLE => {
            if let Some(table) = arg("table") {
                return Change {
                    headline: format!("Empty table {table}"),
                    detail: format!("Deletes every row of {table}. This cannot be undone."),
                    note: None,
                };
            }
        }
        tools::CLUSTER_DB_QUERY => {
            return Change {
                headline: "Run a SQL query".into(),
                detail: "Reads from the orders database; see the query below.".into(),
                note: None,
            };
        }
        _ => {}
    }
    Change {
        headline: format!("Call {}", shorten(&call.tool_name, HEADLINE_CHARS)),
        detail: "A privileged tool call held at the gateway. Check its arguments before approving."
            .into(),
        note: None,
    }
}

fn migration(target: &str, schema: &SchemaVersion) -> Change {
    let detail = format!("Applies migration {target} to the shared orders database.");
    let (current, note) = match schema {
        SchemaVersion::Known(current) => {
            let current = display_version(current);
            let note = (current == target)
                .then(|| format!("The database is already at {target}: expect no change."));
            (current, note)
        }
        SchemaVersion::Unavailable(reason) => (
            "?".to_owned(),
            Some(format!("Current version unknown: {reason}.")),
        ),
        SchemaVersion::NotConfigured => (
            "?".to_owned(),
            Some("Current version not shown: MOCK_DB_STATE_URL is not set.".to_owned()),
        ),
    };
    Change {
        headline: format!("Schema {current} → {target}"),
        detail,
        note,
    }
}

/// A JSON scalar as text (`"v3"` → `v3`, `3` → `3`); objects and arrays are not scalars.
fn scalar(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Who asked: the requester the gateway verified, and what the caller's own headers claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asker {
    /// Verified from the requester's token: the name separation of duties checks.
    pub verified: Option<String>,
    /// What `x-user-id` / `x-forwarded-user` say, when that is not the verified requester:
    /// shown as unverified, never used to decide anything.
    pub claimed: Option<String>,
    pub agent: Option<String>,
    pub user_agent: Option<String>,
}

pub fn asker(call: &ParkedCall) -> Asker {
    let header = |name: &str| {
        call.headers
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let verified = call.requester.clone().filter(|r| !r.trim().is_empty());
    let claimed = call
        .claimed_requester
        .clone()
        .or_else(|| headers::claimed_requester(&call.headers))
        .filter(|claimed| {
            verified
                .as_deref()
                .is_none_or(|v| !hitl_wire::identity::same_person(v, claimed))
        });
    Asker {
        verified,
        claimed,
        agent: header(headers::AGENT_ID),
        user_agent: header("user-agent"),
    }
}

impl Asker {
    /// One line for tables: the verified requester, else the claim marked unverified.
    pub fn summary(&self) -> String {
        match (&self.verified, &self.claimed) {
            (Some(verified), _) => verified.clone(),
            (None, Some(claimed)) => format!("{claimed} (unverified)"),
            (None, None) => "— (unverified)".to_owned(),
        }
    }
}

/// Headers whose values are credentials: shown as `[redacted]` even in the raw request.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "x-api-key"
    ) || ["token", "secret", "password", "api-key", "apikey"]
        .iter()
        .any(|word| name.contains(word))
}

/// Arguments pretty-printed (two-space JSON).
pub fn pretty_args(args: &serde_json::Value) -> String {
    serde_json::to_string_pretty(args).unwrap_or_else(|_| args.to_string())
}

/// The card for `call` as a viewer with no policy verdict sees it.
#[cfg(test)]
pub fn card(call: &ParkedCall, schema: &SchemaVersion, now: OffsetDateTime) -> Markup {
    let html = shared(call, schema, now).into_string();
    PreEscaped(policy::personalise(
        &html,
        call,
        &policy::Verdict::default(),
    ))
}

/// The card for `call`, the same for every reviewer (the decide form left as
/// [`policy::MARKER`]), so it can be rendered once and pushed to every browser.
pub fn shared(call: &ParkedCall, schema: &SchemaVersion, now: OffsetDateTime) -> Markup {
    let (shown, hidden_chars) = visible::call(call);
    let call = &shown;
    let change = describe(call, schema);
    let who = asker(call);
    let left = (call.expires_at - now).whole_seconds();
    let generic = !matches!(
        call.tool_name.as_str(),
        tools::RUN_MIGRATION | tools::TRUNCATE_TABLE
    );
    html! {
        article.card
            id={ "call-" (call.id) }
            data-call-id=(call.id)
            data-tool=(call.tool_name)
            data-expires-at=(when::machine(call.expires_at))
            aria-label={ "Parked call: " (change.headline) }
        {
            header.card-head {
                div.card-title {
                    span.tool-badge { (shorten(&call.tool_name, HEADLINE_CHARS)) }
                    h2.change { (change.headline) }
                    p.change-detail { (change.detail) }
                    @if let Some(note) = &change.note {
                        p.change-note { (note) }
                    }
                    @if hidden_chars {
                        p.change-note.hidden-chars role="alert" {
                            "Careful: this call contains invisible, direction-changing or control \
                             characters. They are shown as ⟨U+…⟩ codes; read the arguments \
                             before deciding."
                        }
                    }
                }
                div.countdown.soon[left <= 60] data-countdown title="The gate denies the call when this runs out" {
                    @if left > 0 { "expires in " (when::span(left)) } @else { "expiring now" }
                }
            }
            dl.facts {
                dt { "Asked by" }
                dd.asker {
                    @match &who.verified {
                        Some(person) => {
                            span.person title="verified by the gateway from the requester's signed token" { (person) }
                            " " span.badge.verified { "verified" }
                        }
                        None => span.unverified-warning title="hitl-extauth runs with REQUIRE_VERIFIED_REQUESTER=false" {
                            "No verified requester: separation of duties cannot be checked for this call."
                        },
                    }
                    @if let Some(claimed) = &who.claimed {
                        div.claimed {
                            span.muted { "headers claim " } span.claimed-name { (claimed) }
                            " " span.badge.unverified title="sent by the caller; anyone can send it; never used to decide" { "unverified" }
                        }
                    }
                    @if let Some(agent) = &who.agent {
                        " " span.muted { "via agent " } span.agent { (agent) }
                    }
                    @if let Some(ua) = &who.user_agent {
                        div.user-agent title="user-agent" { (ua) }
                    }
                }
                dt { "Route" }
                dd { code { (call.method) " " (call.path) } }
                dt { "Received" }
                dd {
                    time datetime=(when::machine(call.received_at)) { (when::timestamp(call.received_at)) }
                    // One request per action (issue #26): re-sends attach; kept on this line.
                    @if let Some(request) = &call.request {
                        span.request title={ "one approval request per action: re-sends attach here; open until " (when::timestamp(request.open_until)) ", an approval lets one call through" } {
                            " · " (request.attempts) @if request.attempts == 1 { " send" } @else { " sends" }
                            @if request.waiting { " · caller waiting" } @else { " · nobody waiting: the retry passes once approved" }
                        }
                    }
                }
                (policy::facts(call))
                dt { "Request hash" }
                dd { code.hash title="sha256 of the forwarded body: the approval applies to exactly these bytes" { "sha256:" (call.body_sha256) } }
            }
            section.args {
                h3 { @if generic { "Tool " code { (shorten(&call.tool_name, HEADLINE_CHARS)) } " with arguments" } @else { "Arguments" } }
                @if let Some(bytes) = call.preview_of_bytes {
                    p.change-note.large-call {
                        "This call is large (" (bytes) " bytes), so the queue shows only its first "
                        (call.body.len()) " bytes. "
                        a.whole-call href={ "/calls/" (call.id) } { "Review the whole call" }
                        " to approve it; rejecting needs no more."
                    }
                } @else {
                    (block(None, &pretty_args(&call.tool_args)))
                }
            }
            details.raw {
                summary { "Raw request" }
                table.headers {
                    tbody {
                        @for (name, value) in &call.headers {
                            tr {
                                th scope="row" { (name) }
                                td {
                                    @if is_secret_header(name) { span.muted { "[redacted]" } } @else { (shorten(value, CLAMP_CHARS)) }
                                }
                            }
                        }
                    }
                }
                // Verbatim: these are the bytes the hash above is taken over.
                (block(Some("body"), &call.body))
                @if let Some(bytes) = call.preview_of_bytes {
                    p.muted.small { "The first " (call.body.len()) " of " (bytes) " bytes; the hash covers them all." }
                }
                p.muted.small { "Call id " code { (call.id) } " · JSON-RPC " code { (call.rpc_method) } }
            }
            // Each viewer's own form goes here (`policy::personalise`).
            (PreEscaped(policy::MARKER))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::call_from;

    #[test]
    fn migration_reads_current_version() {
        let call = call_from(Some("alice"), &[]);
        let known = describe(&call, &SchemaVersion::Known("v2".into()));
        assert_eq!(known.headline, "Schema v2 → v3");
        assert_eq!(known.note, None);
        let same = describe(&call, &SchemaVersion::Known("3".into()));
        assert_eq!(same.headline, "Schema v3 → v3");
        assert!(same.note.unwrap().contains("already at v3"));
        let down = describe(
            &call,
            &SchemaVersion::Unavailable("mock-db state unreachable (connection refused)".into()),
        );
        assert_eq!(down.headline, "Schema ? → v3");
        assert!(down.note.unwrap().contains("connection refused"));
        let unset = describe(&call, &SchemaVersion::NotConfigured);
        assert!(
            unset
                .note
                .unwrap()
                .contains(hitl_wire::env::ui::MOCK_DB_STATE_URL)
        );
    }

    #[test]
    fn numeric_versions_and_other_tools() {
        let mut call = call_from(None, &[]);
        call.tool_args = serde_json::json!({"version": 4});
        assert_eq!(
            describe(&call, &SchemaVersion::Known("v2".into())).headline,
            "Schema v2 → v4"
        );
        call.tool_args = serde_json::json!({"oops": true});
        assert_eq!(
            describe(&call, &SchemaVersion::NotConfigured).headline,
            "Call run_migration"
        );
        call.tool_name = "truncate_table".into();
        call.tool_args = serde_json::json!({"table": "orders"});
        assert_eq!(
            describe(&call, &SchemaVersion::NotConfigured).headline,
            "Empty table orders"
        );
        call.tool_name = "launch_rocket".into();
        assert_eq!(
            describe(&call, &SchemaVersion::NotConfigured).headline,
            "Call launch_rocket"
        );
    }

    #[test]
    fn asker_shows_the_verified_requester_and_an_unverified_claim() {
        let call = call_from(
            None,
            &[("x-user-id", "carol"), ("x-agent-id", "dba-assistant")],
        );
        let who = asker(&call);
        assert_eq!(who.verified, None);
        assert_eq!(who.claimed.as_deref(), Some("carol"));
        assert_eq!(who.agent.as_deref(), Some("dba-assistant"));
        assert_eq!(who.summary(), "carol (unverified)");
        let forged = asker(&call_from(Some("alice"), &[("x-user-id", "carol")]));
        assert_eq!(forged.verified.as_deref(), Some("alice"));
        assert_eq!(forged.claimed.as_deref(), Some("carol"));
        let same = asker(&call_from(Some("alice"), &[("x-user-id", "Alice")]));
        assert_eq!(same.claimed, None, "a claim that matches is no news");
        assert_eq!(asker(&call_from(None, &[])), Asker::default());
    }

    #[test]
    fn secrets_are_redacted() {
        for name in [
            "Authorization",
            "cookie",
            "x-api-key",
            "x-auth-token",
            "X-Client-Secret",
        ] {
            assert!(is_secret_header(name), "{name}");
        }
        for name in ["x-user-id", "user-agent", "content-type"] {
            assert!(!is_secret_header(name), "{name}");
        }
        let call = call_from(None, &[("authorization", "Bearer hunter2")]);
        let html = card(&call, &SchemaVersion::NotConfigured, call.received_at).into_string();
        assert!(!html.contains("hunter2"));
        assert!(html.contains("[redacted]"));
    }

    /// An approval request's card says how many sends attached and whether anyone waits.
    #[test]
    fn the_card_counts_sends_and_says_whether_a_caller_waits() {
        let mut call = call_from(Some("alice"), &[]);
        let mut view = hitl_wire::extauth::RequestView {
            approvals: Vec::new(),
            rule: None,
            id: call.id.clone(),
            state: hitl_wire::extauth::RequestState::Open,
            action_key: "k".into(),
            canonical_args: r#"{"version":"v3"}"#.into(),
            attempts: 3,
            waiting: true,
            open_until: call.received_at + time::Duration::hours(24),
        };
        call.request = Some(view.clone());
        let html = card(&call, &SchemaVersion::NotConfigured, call.received_at).into_string();
        assert!(html.contains("3 sends · caller waiting"), "{html}");
        view.waiting = false;
        call.request = Some(view);
        let html = card(&call, &SchemaVersion::NotConfigured, call.received_at).into_string();
        assert!(html.contains("nobody waiting"), "{html}");
    }

    /// The whole card, one tag per line, for review: what a reviewer is shown for a typical
    /// parked migration.
    #[test]
    fn card_markup() {
        let mut call = call_from(
            Some("alice"),
            &[
                ("x-user-id", "alice"),
                ("x-agent-id", "dba-assistant"),
                ("user-agent", "kagent-adk/0.10.4"),
                ("authorization", "Bearer secret-token"),
            ],
        );
        call.id = "0b6e5c1e".into();
        call.body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_migration","arguments":{"version":"v3"}}}"#.into();
        call.body_sha256 = "c0ded249".into();
        call.expires_at = call.received_at + time::Duration::seconds(600);
        let html = card(
            &call,
            &SchemaVersion::Known("v2".into()),
            call.received_at + time::Duration::seconds(2),
        )
        .into_string()
        .replace("><", ">\n<");
        insta::assert_snapshot!(html);
    }

    #[test]
    fn attacker_controlled_text_is_escaped_everywhere() {
        let evil = "\"><script>alert(1)</script><img src=x onerror=alert(2)>";
        let mut call = call_from(
            Some(evil),
            &[("x-agent-id", evil), ("user-agent", evil), (evil, evil)],
        );
        call.id = evil.into();
        call.tool_name = evil.into();
        call.tool_args = serde_json::json!({ evil: evil });
        call.body = evil.into();
        call.path = evil.into();
        let html = card(
            &call,
            &SchemaVersion::Unavailable(evil.into()),
            call.received_at,
        )
        .into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("\"><script"), "attribute break-out: {html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}
