//! Server-rendered HTML (maud: every interpolation is escaped unless marked otherwise, and
//! nothing here marks attacker-controlled text otherwise). One module per page, plus the card.

pub mod card;
pub mod history;
pub mod policy;
pub mod queue;
pub mod signin;
pub mod visible;
pub mod when;

use maud::{DOCTYPE, Markup, html};

use crate::security::{Identity, identity::Proof};

/// What the page needs to know about the person looking at it.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub identity: Option<Identity>,
    /// This browser's CSRF token (embedded for the page's script and forms).
    pub csrf_token: String,
    /// Built-in sign-in offered.
    pub sign_in_enabled: bool,
    /// Any identity source configured at all.
    pub identity_configured: bool,
    /// The OpenID Provider reviewers may sign in at, if any.
    pub oidc_issuer: Option<String>,
}

/// Which tab is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Queue,
    History,
    None,
}

/// The page frame: head, top bar with navigation and who is signed in, main content.
pub fn layout(title: &str, tab: Tab, viewer: &Viewer, queue_count: usize, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(viewer.csrf_token);
                title { (title) " · hitl-ui" }
                link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header.topbar {
                    a.brand href="/" {
                        span.brand-mark aria-hidden="true" { "◆" }
                        span { "hitl-ui" }
                        span.brand-sub { "Privileged tool calls" }
                    }
                    nav.tabs aria-label="Pages" {
                        a href="/" aria-current=[(tab == Tab::Queue).then_some("page")] {
                            "Queue "
                            span.count #queue-count data-count=(queue_count) { (queue_count) }
                        }
                        a href="/history" aria-current=[(tab == Tab::History).then_some("page")] { "History" }
                    }
                    div.who { (who(viewer)) }
                }
                main { (main) }
                noscript { div.banner.warn { "This page needs JavaScript to update live and to send decisions." } }
            }
        }
    }
}

fn who(viewer: &Viewer) -> Markup {
    html! {
        @match &viewer.identity {
            Some(identity) => {
                span.muted { "Reviewer " }
                strong #reviewer-name { (identity.user) }
                @if matches!(identity.proof, Proof::SignIn | Proof::Oidc) {
                    form.inline method="post" action="/signout" {
                        input type="hidden" name="csrf" value=(viewer.csrf_token);
                        button.link type="submit" { "Sign out" }
                    }
                }
            }
            None => {
                @if viewer.sign_in_enabled || viewer.oidc_issuer.is_some() {
                    a.btn.btn-small href="/signin" { "Sign in to decide" }
                } @else {
                    span.muted { "Read-only" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(identity: Option<Identity>) -> Viewer {
        Viewer {
            identity,
            csrf_token: "tok\"en".into(),
            sign_in_enabled: true,
            identity_configured: true,
            oidc_issuer: None,
        }
    }

    #[test]
    fn top_bar_shows_who_or_sign_in() {
        let anonymous = layout("Queue", Tab::Queue, &viewer(None), 0, html! {}).into_string();
        assert!(anonymous.contains("Sign in to decide"));
        assert!(anonymous.contains(r#"content="tok&quot;en""#));
        let bob = Identity {
            user: "<b>ob".into(),
            proof: Proof::SignIn,
            groups: None,
            id_token: None,
        };
        let signed_in = layout("Queue", Tab::Queue, &viewer(Some(bob)), 3, html! {}).into_string();
        assert!(signed_in.contains("&lt;b&gt;ob"));
        assert!(signed_in.contains("Sign out"));
        assert!(signed_in.contains(r#"aria-current="page""#));
    }
}
