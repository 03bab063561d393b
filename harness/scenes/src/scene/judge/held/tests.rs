//! The rules for a long approval on hand-made observations: the held call, decided after its
//! hold ran out (or its gate restarted), and the retry that passes at once on that approval.

use hitl_wire::extauth::Outcome;
use serde_json::json;

use crate::scene::{
    Scene, Tier,
    judge::{
        judge,
        tests::{alice, call, failed, failures, observation, park, ran},
    },
    observation::{Listed, Observation, ToolResult},
    parse,
    verdict::Decided,
};

const CARD: &str = "3f2b6a1e";

/// Scene 7's shape, or scene 8's with `while_held = "gate-restarts"`.
fn long_approval(while_held: &str) -> Scene {
    parse(
        "s.toml",
        &format!(
            r#"
id = 7
name = "a long approval"
prompts = ["Apply migration v3.", "Try again."]

[[turn]]
call = {{ tool = "run_migration", args = {{ version = "v3" }} }}

[[call]]
tool = "run_migration"
tier = "gateway"
decide = "approve"
while_held = "{while_held}"
executed = false

[[call]]
tool = "run_migration"
tier = "gateway"
decide = "earlier-approval"
executed = true
"#
        ),
    )
    .expect("the scene parses")
}

/// Scene 7 observed as it should be: one card, its hold ran out (the caller told the request
/// stays open), listed with nobody waiting, approved; the retry ran once under its approval.
fn approved_after_the_hold() -> Observation {
    let v3 = json!({"version": "v3"});
    let mut held = call("run_migration", v3.clone());
    held.id = "call_1".into();
    held.result = failed(&format!(
        "park timed out after 20 s with no decision from a reviewer; the approval request {CARD} \
         stays open until 2026-12-07T17:00:00Z: once a reviewer approves it, send the same \
         call again and it passes once"
    ));
    let mut retry = call("run_migration", v3.clone());
    retry.id = "call_2".into();
    retry.result = Some(ToolResult {
        text: "migrated v2 -> v3".into(),
        is_error: false,
    });
    let mut card = park("run_migration", v3.clone(), Some(Outcome::Approved), "");
    card.hold_ended = true;
    card.listed_before_decision = Some(Listed::NotWaiting);
    let mut entry = ran(11, "run_migration", v3);
    entry.approval_id = Some(CARD.into());
    let mut seen = observation(vec![held, retry], vec![card], vec![entry]);
    seen.state.schema_version = "v3".into();
    seen
}

#[test]
fn a_decision_after_the_hold_and_a_retry_on_it_pass_every_check() {
    let verdict = judge(
        &long_approval("hold-runs-out"),
        &approved_after_the_hold(),
        alice(false),
    );
    assert_eq!(failures(&verdict), Vec::<&str>::new());
    let rows: Vec<_> = verdict
        .calls
        .iter()
        .map(|r| (r.observed_tier, r.observed_decision, r.executed))
        .collect();
    assert_eq!(
        rows,
        [
            (Some(Tier::Gateway), Some(Decided::Approve), Some(false)),
            (
                Some(Tier::Gateway),
                Some(Decided::EarlierApproval),
                Some(true)
            ),
        ]
    );
}

#[test]
fn a_decision_taken_while_the_caller_still_waited_is_named() {
    let mut seen = approved_after_the_hold();
    seen.parks[0].hold_ended = false;
    seen.parks[0].listed_before_decision = Some(Listed::Waiting);
    let verdict = judge(&long_approval("hold-runs-out"), &seen, alice(false));
    let failures = failures(&verdict);
    assert!(
        failures
            .iter()
            .any(|f| f.contains("/events showed its hold run out")),
        "{failures:?}"
    );
    assert!(
        failures
            .iter()
            .any(|f| f.contains("found: a caller waiting")),
        "{failures:?}"
    );
}

#[test]
fn a_second_card_for_the_retry_is_named_even_when_it_is_approved() {
    let mut seen = approved_after_the_hold();
    let mut second = seen.parks[0].clone();
    second.id = "second".into();
    second.unexpected = true;
    seen.parks.push(second);
    let verdict = judge(&long_approval("hold-runs-out"), &seen, alice(false));
    let failures = failures(&verdict);
    assert!(
        failures
            .iter()
            .any(|f| f.contains("opened none of its own on /events (2 card(s))")),
        "{failures:?}"
    );
}

#[test]
fn a_migration_that_ran_twice_is_named() {
    let mut seen = approved_after_the_hold();
    let mut again = seen.state.audit[0].clone();
    again.seq = 12;
    seen.state.audit.push(again);
    let verdict = judge(&long_approval("hold-runs-out"), &seen, alice(false));
    let failures = failures(&verdict);
    assert!(
        failures
            .iter()
            .any(|f| f.contains("ran exactly once (mock-db-mcp's audit: 2)")),
        "{failures:?}"
    );
}

#[test]
fn a_retry_that_ran_under_another_approval_is_named() {
    let mut seen = approved_after_the_hold();
    seen.state.audit[0].approval_id = Some("another".into());
    let verdict = judge(&long_approval("hold-runs-out"), &seen, alice(false));
    let failures = failures(&verdict);
    assert!(
        failures
            .iter()
            .any(|f| f.contains("under the earlier approval 3f2b6a1e (it ran under another)")),
        "{failures:?}"
    );
    assert_eq!(verdict.calls[1].observed_decision, Some(Decided::Undecided));
}

#[test]
fn after_a_restart_the_card_must_have_come_back_and_the_held_call_failed_closed() {
    let mut seen = approved_after_the_hold();
    seen.parks[0].hold_ended = false;
    seen.calls[0].result = failed("ext_authz: upstream connect error");
    assert_eq!(
        failures(&judge(&long_approval("gate-restarts"), &seen, alice(false))),
        ["run_migration: the restarted gate's /events still showed the card"]
    );
    seen.parks[0].came_back = true;
    seen.calls[0].result = Some(ToolResult {
        text: "migrated v2 -> v3".into(),
        is_error: false,
    });
    assert_eq!(
        failures(&judge(&long_approval("gate-restarts"), &seen, alice(false))),
        [
            "run_migration: the held call failed closed when its gate died (the agent got an \
             error, not a result)"
        ]
    );
    // kagent reports a broken MCP session as a result that holds the error.
    seen.calls[0].result = Some(ToolResult {
        text: r#"{"error":"MCP session connection lost"}"#.into(),
        is_error: false,
    });
    assert_eq!(
        failures(&judge(&long_approval("gate-restarts"), &seen, alice(false))),
        Vec::<&str>::new()
    );
}
