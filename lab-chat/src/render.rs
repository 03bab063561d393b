//! Server-rendered HTML (maud escapes every interpolation): the sign-in page and the chat
//! page's frame. The conversation itself is drawn by `assets/chat.js` from the event stream.

use maud::{DOCTYPE, Markup, html};

use crate::config::Agents;

fn layout(title: &str, csrf: &str, user: Option<&str>, body_agent: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(csrf);
                title { (title) " · lab chat" }
                link rel="stylesheet" href="/assets/chat.css";
                script src="/assets/chat.js" defer {}
            }
            body data-agent=(body_agent) {
                header.topbar {
                    a.brand href="/" {
                        span.brand-mark aria-hidden="true" { "●" }
                        span { "lab chat" }
                        span.brand-sub { "Chat with the agent" }
                    }
                    @if let Some(user) = user {
                        div.who {
                            span.muted { "Signed in as " }
                            strong #user-name { (user) }
                            form.inline method="post" action="/signout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (main) }
                noscript { div.banner.warn { "This page needs JavaScript to chat." } }
            }
        }
    }
}

/// The sign-in form, with an optional error from a failed attempt.
pub fn signin(csrf: &str, error: Option<&str>) -> Markup {
    let main = html! {
        div.signin {
            h1 { "Sign in" }
            p.muted { "Sign in to chat with the agent. Tool calls the agent wants to make on your behalf ask for your approval here." }
            @if let Some(error) = error {
                div.banner.warn role="alert" { (error) }
            }
            form.card.signin-form method="post" action="/signin" {
                input type="hidden" name="csrf" value=(csrf);
                label for="username" { "User name" }
                input #username type="text" name="username" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                div.actions { button.btn.btn-primary type="submit" { "Sign in" } }
            }
        }
    };
    layout("Sign in", csrf, None, "", main)
}

/// The chat page for `user` talking to `agent`.
pub fn chat(csrf: &str, user: &str, agents: &Agents, agent: &str) -> Markup {
    let main = html! {
        div.chat {
            div.chat-head {
                @if agents.0.len() > 1 {
                    form.agent-pick method="get" action="/" {
                        label for="agent" { "You are chatting with " }
                        select #agent name="agent" {
                            @for a in &agents.0 {
                                option value=(a.name) selected[a.name == agent] { (a.name) }
                            }
                        }
                    }
                } @else {
                    span.agent-name { "You are chatting with " strong { (agent) } }
                }
                button #new-chat .btn.btn-small type="button" title={ "Start over with " (agent) } { "New chat" }
            }
            div #log .log aria-live="polite" {}
            div #status .status {}
            form #say .say {
                textarea #prompt name="text" rows="2" placeholder="Message the agent… (Enter sends)" required {}
                button #send .btn.btn-primary type="submit" { "Send" }
            }
            p.muted.try { "Try: “What's in the orders table?”, “Truncate the orders table.”, “Truncate a table.”, “Apply migration v3.”" }
        }
    };
    layout(agent, csrf, Some(user), agent, main)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Agent;

    #[test]
    fn chat_page_escapes_and_offers_agents() {
        let agents = Agents(vec![
            Agent {
                name: "a<b".into(),
                url: "http://x".into(),
            },
            Agent {
                name: "langgraph".into(),
                url: "http://y".into(),
            },
        ]);
        let page = chat("t\"k", "<alice>", &agents, "a<b").into_string();
        assert!(page.contains("&lt;alice&gt;"));
        assert!(page.contains(r#"content="t&quot;k""#));
        assert!(page.contains(r#"<option value="langgraph">"#));
        let one = Agents(vec![agents.0[1].clone()]);
        assert!(
            !chat("t", "alice", &one, "langgraph")
                .into_string()
                .contains("<select")
        );
    }
}
