//! The queue page: live cards, or an empty state that says what will show up and how to
//! make something show up; banners when the gate is unreachable or nobody can decide.

use maud::{Markup, PreEscaped, html};

use super::{Tab, Viewer, layout};

/// The queue page around already-rendered cards (oldest first).
/// `more`: the gate listed only its oldest pending calls.
pub fn page(
    viewer: &Viewer,
    cards: &[&str],
    upstream_connected: bool,
    more: bool,
    gate_url: &str,
) -> Markup {
    let main = html! {
        div #upstream-banner .banner.warn role="alert" hidden[upstream_connected] {
            strong { "Not connected to the gate." }
            " hitl-ui cannot reach hitl-extauth at " code { (gate_url) } " and keeps retrying. "
            "The cards below may be out of date until it is back."
        }
        (identity_banner(viewer))
        div.page-head {
            span #live-status .live-status data-state="connecting" { "connecting…" }
            h1 { "Waiting for a decision" }
            p.muted {
                "Privileged tool calls held at the gateway. The agent is waiting on each one; "
                "approve to let it through, reject to send your reason back to the agent."
            }
        }
        div #more-banner .banner.info role="status" hidden[!more] {
            strong { "More calls are waiting than are shown." }
            " These are the oldest " (hitl_wire::extauth::PENDING_LISTED) "; the newer ones "
            "appear here as these are decided."
        }
        div #queue .queue data-live-url="/live" aria-live="polite" {
            @for card in cards { (PreEscaped(*card)) }
        }
        (empty_state(cards.is_empty()))
        div #toasts .toasts aria-live="polite" {}
    };
    layout("Queue", Tab::Queue, viewer, cards.len(), main)
}

/// One parked call on its own page, whole (`GET /calls/{id}`), or why it cannot be shown.
pub fn one(viewer: &Viewer, card: Result<&str, &str>, queue_count: usize) -> Markup {
    let main = html! {
        (identity_banner(viewer))
        div.page-head {
            p { a href="/" { "← Back to the queue" } }
            h1 { "One parked call, whole" }
        }
        @match card {
            Ok(card) => div.single { (PreEscaped(card)) },
            Err(why) => div.banner.warn role="alert" {
                (why) " " a href="/history" { "See the history" } "."
            },
        }
        div #toasts .toasts aria-live="polite" {}
    };
    layout("Parked call", Tab::None, viewer, queue_count, main)
}

fn identity_banner(viewer: &Viewer) -> Markup {
    html! {
        @if !viewer.identity_configured {
            div.banner.info {
                strong { "Read-only." }
                " No reviewer sign-in is configured, so nobody can decide here. Set "
                code { (hitl_wire::env::ui::REVIEWER_CREDENTIALS) } " (built-in sign-in) or "
                code { (hitl_wire::env::ui::TRUSTED_USER_HEADER) } " (behind an auth proxy) and restart hitl-ui."
            }
        } @else if viewer.identity.is_none() {
            div.banner.info {
                @if viewer.sign_in_enabled || viewer.oidc_issuer.is_some() {
                    a href="/signin" { "Sign in" } " to approve or reject. Decisions are recorded under your name."
                } @else {
                    "Your auth proxy did not say who you are, so you can look but not decide."
                }
            }
        }
    }
}

fn empty_state(empty: bool) -> Markup {
    html! {
        section #empty .empty hidden[!empty] {
            div.empty-mark aria-hidden="true" { "✓" }
            h2 { "Nothing is waiting for you" }
            p {
                "When the agent calls a privileged tool — such as " code { (hitl_wire::mockdb::tools::RUN_MIGRATION) }
                " on the gateway's " code { "/privileged/mcp" } " route — the gate holds the request "
                "and it appears here at once: what it would change, who asked, and Approve / Reject."
            }
            p {
                "To see one, send a migration from the chat: ask the agent "
                q.example { "Apply migration v3." } " in the chat tab (or " code { "cargo xtask chat" } ")."
            }
            p.muted.small { "This page updates by itself; no need to reload." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(configured: bool) -> Viewer {
        Viewer {
            identity: None,
            csrf_token: "t".into(),
            sign_in_enabled: configured,
            identity_configured: configured,
            oidc_issuer: None,
        }
    }

    #[test]
    fn empty_state_explains_how_to_trigger_a_card() {
        let html = page(&viewer(true), &[], true, false, "http://gate").into_string();
        assert!(html.contains("Nothing is waiting for you"));
        assert!(html.contains(r#"id="more-banner" role="status" hidden"#));
        assert!(html.contains("Apply migration v3"));
        assert!(html.contains(r#"id="upstream-banner" role="alert" hidden"#));
        assert!(html.contains("Sign in"));
    }

    #[test]
    fn banners_for_disconnected_gate_and_no_identity() {
        let html = page(
            &viewer(false),
            &["<article>x</article>"],
            false,
            false,
            "http://gate:8081",
        )
        .into_string();
        assert!(html.contains("http://gate:8081"));
        assert!(html.contains(r#"id="upstream-banner" role="alert">"#));
        assert!(html.contains("Read-only."));
        assert!(
            html.contains(r#"<section class="empty" id="empty" hidden>"#),
            "{html}"
        );
    }

    #[test]
    fn a_queue_longer_than_the_listing_says_more_are_waiting() {
        let html = page(
            &viewer(true),
            &["<article>x</article>"],
            true,
            true,
            "http://gate",
        )
        .into_string();
        assert!(
            html.contains(r#"id="more-banner" role="status">"#),
            "{html}"
        );
        assert!(html.contains("More calls are waiting than are shown."));
    }
}
