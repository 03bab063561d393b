//! The built-in sign-in page (or, when sign-in is done elsewhere, a page that says where).

use maud::{Markup, html};

use super::{Tab, Viewer, layout};

/// The sign-in page, with an optional error from a failed attempt. With an OpenID Provider
/// configured it offers that first, the built-in accounts (if any) below.
pub fn page(
    viewer: &Viewer,
    error: Option<&str>,
    trusted_header: Option<&str>,
    queue_count: usize,
) -> Markup {
    let main = html! {
        div.signin {
            h1 { "Sign in" }
            @if let Some(identity) = &viewer.identity {
                p { "You are signed in as " strong { (identity.user) } ". " a href="/" { "Back to the queue" } }
            } @else if viewer.sign_in_enabled || viewer.oidc_issuer.is_some() {
                p.muted { "Reviewers sign in to approve or reject parked calls; every decision is recorded under your name." }
                @if let Some(error) = error {
                    div.banner.warn role="alert" { (error) }
                }
                @if let Some(issuer) = &viewer.oidc_issuer {
                    div.card.signin-oidc {
                        a.btn.btn-primary #signin-oidc href="/signin/oidc" { "Sign in with your identity provider" }
                        p.muted.small { "OpenID Connect at " code { (issuer) } ": your groups come from there." }
                    }
                }
                @if viewer.sign_in_enabled {
                    @if viewer.oidc_issuer.is_some() {
                        p.muted { "Or with a built-in account:" }
                    }
                    form.card.signin-form method="post" action="/signin" {
                        input type="hidden" name="csrf" value=(viewer.csrf_token);
                        label for="username" { "User name" }
                        input #username type="text" name="username" autocomplete="username" required autofocus;
                        label for="password" { "Password" }
                        input #password type="password" name="password" autocomplete="current-password" required;
                        div.actions { button.btn.btn-primary type="submit" { "Sign in" } }
                    }
                }
            } @else if let Some(header) = trusted_header {
                p { "Sign-in is handled by the auth proxy in front of this page, which names you in the "
                    code { (header) } " header. It did not, so this page cannot show you the queue." }
            } @else {
                p { "No sign-in is configured: set " code { (hitl_wire::env::ui::REVIEWER_CREDENTIALS) } " or "
                    code { (hitl_wire::env::ui::TRUSTED_USER_HEADER) } " on hitl-ui." }
            }
        }
    };
    layout("Sign in", Tab::None, viewer, queue_count, main)
}
