//! Who may decide a card (issue #28): the rule the gate applies to it, its groups and the
//! approvals so far ("1 of 2 approvals (dba-ann, 12:01)") — the same on every reviewer's
//! card — and, per reviewer, whether they may approve or reject and why not (the one
//! answer `hitl_wire::policy::may_decide` gives the gate too), with the decide form to match.
//!
//! A card is rendered once for everyone with [`MARKER`] where its form goes; each page and
//! each browser's live stream puts the viewer's own form there ([`personalise`]). The marker
//! cannot come from a call's text: maud escapes every `<` in it.

use hitl_wire::{
    extauth::ParkedCall,
    identity::Identity as Name,
    policy::{ANYONE, RuleView, may_decide},
};
use maud::{Markup, html};

use super::{card::MAX_REASON, when};
use crate::security::Identity;

/// Where the viewer's decide form goes in a shared card.
pub const MARKER: &str = "<!--hitl:decide-->";

/// Why this viewer may not approve, or reject, a card (`None`: they may).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub approve: Option<String>,
    pub reject: Option<String>,
}

/// The rule on `call`, if the gate named one.
pub fn rule(call: &ParkedCall) -> Option<&RuleView> {
    call.request.as_ref().and_then(|r| r.rule.as_ref())
}

/// `dba or sre`; `any signed-in reviewer` for [`ANYONE`].
fn groups_text(rule: &RuleView) -> String {
    if rule.groups.iter().any(|g| g == ANYONE) {
        return "any signed-in reviewer".to_owned();
    }
    rule.groups.join(" or ")
}

/// `1 of 2 approvals (dba-ann, 12:01)`.
pub fn progress(call: &ParkedCall) -> Option<String> {
    let rule = rule(call)?;
    let approvals = call
        .request
        .as_ref()
        .map(|r| r.approvals.as_slice())
        .unwrap_or_default();
    let mut text = format!(
        "{} of {} approval{}",
        approvals.len(),
        rule.approvals,
        if rule.approvals == 1 { "" } else { "s" }
    );
    if !approvals.is_empty() {
        let who: Vec<String> = approvals
            .iter()
            .map(|a| format!("{}, {}", a.reviewer, when::clock(a.at)))
            .collect();
        text.push_str(&format!(" ({})", who.join("; ")));
    }
    Some(text)
}

/// The card's policy lines (nothing when the gate names no rule).
pub fn facts(call: &ParkedCall) -> Markup {
    html! {
        @if let (Some(rule), Some(progress)) = (rule(call), progress(call)) {
            dt { "Policy" }
            dd.policy data-rule=(rule.name) {
                "rule " code.rule-name { (rule.name) } " · "
                span.groups { (groups_text(rule)) } " may decide · "
                span.approvals { (progress) }
                @if rule.reason_to_approve || rule.reason_to_reject {
                    " · " span.reason-rule { (reason_rule(rule)) }
                }
            }
        }
    }
}

fn reason_rule(rule: &RuleView) -> &'static str {
    match (rule.reason_to_approve, rule.reason_to_reject) {
        (true, true) => "a reason is required",
        (true, false) => "a reason is required to approve",
        _ => "a reason is required to reject",
    }
}

/// What `viewer` may do with `call`: `static_groups` gives a reviewer's groups when their
/// sign-in did not (the policy file's static members).
pub fn verdict(
    call: &ParkedCall,
    viewer: Option<&Identity>,
    static_groups: impl Fn(&Name) -> Vec<String>,
) -> Verdict {
    let Some(viewer) = viewer else {
        return Verdict::default();
    };
    // The reason is checked when the decision is sent; the form marks it required.
    Verdict {
        approve: check(call, viewer, &static_groups, true, "-").err(),
        reject: check(call, viewer, &static_groups, false, "-").err(),
    }
}

/// Whether `viewer` may take the decision `approve` (with `reason`) on `call` under its rule
/// (the gate checks it again; `Ok` when the gate names no rule): the sentence that says why
/// not.
pub fn check(
    call: &ParkedCall,
    viewer: &Identity,
    static_groups: impl Fn(&Name) -> Vec<String>,
    approve: bool,
    reason: &str,
) -> Result<(), String> {
    let Some(rule) = rule(call) else {
        return Ok(());
    };
    let name = Name::parse(&viewer.user)
        .map_err(|_| "your name is not one the gate accepts".to_owned())?;
    let groups = viewer
        .groups
        .clone()
        .unwrap_or_else(|| static_groups(&name));
    let approvals = call
        .request
        .as_ref()
        .map(|r| r.approvals.as_slice())
        .unwrap_or_default();
    may_decide(
        rule,
        approvals,
        call.requester.as_deref(),
        &name,
        &groups,
        approve,
        reason,
    )
    .map_err(|e| e.to_string())
}

/// The approve / reject form as `verdict` allows.
pub fn decide_form(call: &ParkedCall, verdict: &Verdict) -> Markup {
    let reason_id = format!("reason-{}", call.id);
    let rule = rule(call);
    let to_approve = rule.is_some_and(|r| r.reason_to_approve);
    let to_reject = rule.is_some_and(|r| r.reason_to_reject);
    let whys: Vec<&String> = match (&verdict.approve, &verdict.reject) {
        (Some(a), Some(r)) if a == r => vec![a],
        (a, r) => a.iter().chain(r.iter()).collect(),
    };
    html! {
        form.decide method="post" action={ "/calls/" (call.id) "/decide" }
            data-reason-approve=[to_approve.then_some("required")]
            data-reason-reject=[to_reject.then_some("required")]
        {
            label for=(reason_id) {
                "Reason "
                @if to_approve || to_reject {
                    span.required { "— required " (match (to_approve, to_reject) { (true, true) => "", (true, false) => "to approve ", _ => "to reject " }) }
                    span.muted { "(sent back to the agent word for word)" }
                } @else {
                    span.muted { "— optional, sent back to the agent word for word" }
                }
            }
            textarea id=(reason_id) name="reason" rows="2" maxlength=(MAX_REASON)
                required[to_approve && to_reject]
                placeholder="e.g. Approved for tonight's maintenance window / Not during business hours" {}
            div.actions {
                button.btn.btn-reject type="submit" name="decision" value="reject" disabled[verdict.reject.is_some()] { "Reject" }
                @if call.preview_of_bytes.is_none() {
                    button.btn.btn-approve type="submit" name="decision" value="approve" disabled[verdict.approve.is_some()] { "Approve" }
                } @else {
                    a.btn.btn-approve href={ "/calls/" (call.id) } { "Review to approve" }
                }
            }
            @for why in &whys {
                p.not-eligible role="note" { (why) }
            }
            p.form-message role="status" aria-live="polite" {}
        }
    }
}

/// The shared card `html` with `viewer`'s form in it.
pub fn personalise(html: &str, call: &ParkedCall, verdict: &Verdict) -> String {
    html.replacen(MARKER, &decide_form(call, verdict).into_string(), 1)
}

#[cfg(test)]
mod tests;
