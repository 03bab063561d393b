//! A two-key rule on a card, as each kind of reviewer sees it.

use hitl_wire::{
    extauth::{RequestState, RequestView},
    policy::{ApprovalView, RuleView},
};

use super::*;
use crate::{security::identity::Proof, test_support::call_from};

/// `run_migration v1` asked for by alice, under a rule that wants two of dba or sre, a
/// reason to reject; `approved` approved at 12:01.
fn two_keys(approved: &[&str]) -> ParkedCall {
    let mut call = call_from(Some("alice"), &[]);
    let at = time::macros::datetime!(2026-12-06 12:01 UTC);
    call.request = Some(RequestView {
        id: call.id.clone(),
        state: RequestState::Open,
        action_key: "k".into(),
        canonical_args: r#"{"version":"v1"}"#.into(),
        attempts: 1,
        waiting: true,
        open_until: at,
        rule: Some(RuleView {
            name: "migration-down-to-v1".into(),
            groups: vec!["dba".into(), "sre".into()],
            approvals: 2,
            reason_to_approve: false,
            reason_to_reject: true,
        }),
        approvals: approved
            .iter()
            .map(|r| ApprovalView {
                reviewer: (*r).into(),
                at,
                reason: String::new(),
            })
            .collect(),
    });
    call
}

fn signed_in(user: &str, groups: Option<&[&str]>) -> Identity {
    Identity {
        user: user.into(),
        proof: Proof::Oidc,
        groups: groups.map(|g| g.iter().map(|s| (*s).to_owned()).collect()),
        id_token: None,
    }
}

fn no_static_groups(_: &Name) -> Vec<String> {
    Vec::new()
}

#[test]
fn the_card_says_the_rule_its_groups_and_the_approvals_so_far() {
    let call = two_keys(&["dba-ann"]);
    assert_eq!(
        progress(&call).as_deref(),
        Some("1 of 2 approvals (dba-ann, 12:01)")
    );
    let html = facts(&call).into_string();
    assert!(html.contains("migration-down-to-v1"), "{html}");
    assert!(html.contains("dba or sre"), "{html}");
    assert!(html.contains("a reason is required to reject"), "{html}");
    assert_eq!(
        facts(&call_from(None, &[])).into_string(),
        "",
        "no rule, nothing"
    );
}

#[test]
fn each_reviewer_is_told_why_they_may_not_decide() {
    let call = two_keys(&["dba-ann"]);
    let sam = verdict(
        &call,
        Some(&signed_in("sre-sam", Some(&["sre"]))),
        no_static_groups,
    );
    assert_eq!(sam, Verdict::default(), "an sre may take the second key");
    let ann = verdict(
        &call,
        Some(&signed_in("dba-ann", Some(&["dba"]))),
        no_static_groups,
    );
    assert!(ann.approve.unwrap().contains("already approved"));
    assert_eq!(ann.reject, None, "she may still reject");
    let platform = verdict(
        &call,
        Some(&signed_in("reviewer", Some(&["platform"]))),
        no_static_groups,
    );
    assert!(platform.approve.as_deref().unwrap().contains("dba, sre"));
    let alice = verdict(
        &call,
        Some(&signed_in("alice", Some(&["dba"]))),
        no_static_groups,
    );
    assert!(alice.approve.unwrap().contains("you asked for this call"));
    // A static reviewer's groups come from the policy's static members.
    let static_dba = signed_in("bob", None);
    let dba = |_: &Name| vec!["dba".to_owned()];
    assert_eq!(verdict(&call, Some(&static_dba), dba), Verdict::default());
    assert_eq!(
        verdict(&call, None, dba),
        Verdict::default(),
        "nobody signed in"
    );
}

#[test]
fn the_form_disables_what_the_viewer_may_not_do_and_marks_the_reason() {
    let call = two_keys(&["dba-ann"]);
    let ann = verdict(
        &call,
        Some(&signed_in("dba-ann", Some(&["dba"]))),
        no_static_groups,
    );
    let html = personalise(MARKER, &call, &ann);
    assert!(html.contains(r#"value="approve" disabled"#), "{html}");
    assert!(!html.contains(r#"value="reject" disabled"#), "{html}");
    assert!(html.contains("already approved"), "{html}");
    assert!(html.contains(r#"data-reason-reject="required""#), "{html}");
    assert!(html.contains("required to reject"), "{html}");
    let free = personalise(MARKER, &call_from(None, &[]), &Verdict::default());
    assert!(
        !free.contains("disabled") && !free.contains("required"),
        "{free}"
    );
}
