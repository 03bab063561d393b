//! The judge on hand-made observations: each rule of the runner, with no lab behind it.

use std::collections::BTreeMap;

use hitl_wire::{
    extauth::Outcome,
    mockdb::{AuditEntry, State},
};
use serde_json::{Value, json};

use super::{Standing, judge};
use crate::{
    a2a::hitl::Decision,
    scene::{
        Scene, Tier,
        observation::{Observation, SeenCall, SeenPark, ToolResult},
        parse,
        verdict::{Decided, Verdict},
    },
};

const REASON: &str = "Change freeze until the quarter closes.";

/// Scene 4's shape: one call parked at the gateway and rejected with a reason.
fn tier2_reject() -> Scene {
    parse(
        "s.toml",
        &format!(
            r#"
id = 4
name = "tier-2 reject"
prompts = ["Apply migration v3."]

[[turn]]
call = {{ tool = "run_migration", args = {{ version = "v3" }} }}

[[call]]
tool = "run_migration"
tier = "gateway"
decide = "reject"
reason = "{REASON}"
executed = false

[expect]
schema_version = "v2"
row_counts = {{ orders = 3 }}
reply_contains = ["{REASON}"]
model_saw = ["{REASON}"]
"#
        ),
    )
    .expect("the scene parses")
}

/// Scene 2's shape: one call paused at tier 1 and approved.
fn tier1_approve() -> Scene {
    parse(
        "s.toml",
        r#"
id = 2
name = "tier-1 approve"
prompts = ["Truncate the orders table."]

[[turn]]
call = { tool = "truncate_table", args = { table = "orders" } }

[[call]]
tool = "truncate_table"
tier = "agent"
decide = "approve"
executed = true
"#,
    )
    .expect("the scene parses")
}

pub(super) fn call(tool: &str, args: Value) -> SeenCall {
    SeenCall {
        id: format!("call_{tool}"),
        tool: tool.into(),
        args,
        tier1: None,
        result: None,
    }
}

pub(super) fn failed(text: &str) -> Option<ToolResult> {
    Some(ToolResult {
        text: text.into(),
        is_error: true,
    })
}

pub(super) fn park(tool: &str, args: Value, outcome: Option<Outcome>, reason: &str) -> SeenPark {
    SeenPark {
        id: "3f2b6a1e".into(),
        tool: tool.into(),
        args,
        requester: Some("alice".into()),
        outcome,
        reason: reason.into(),
        unexpected: false,
        hold_ended: false,
        came_back: false,
        listed_before_decision: None,
        counted: 0,
    }
}

pub(super) fn ran(seq: u64, tool: &str, args: Value) -> AuditEntry {
    AuditEntry {
        approved_by: Vec::new(),
        rule: None,
        seq,
        at: time::OffsetDateTime::UNIX_EPOCH,
        tool: tool.into(),
        args,
        caller: BTreeMap::new(),
        detail: Value::Null,
        approval_id: None,
        refused: None,
    }
}

pub(super) fn observation(
    calls: Vec<SeenCall>,
    parks: Vec<SeenPark>,
    audit: Vec<AuditEntry>,
) -> Observation {
    Observation {
        calls,
        reply: format!("The migration was not applied: {REASON}"),
        parks,
        state: State {
            schema_version: "v2".into(),
            row_counts: [("orders".to_owned(), 3)].into(),
            audit,
        },
        baseline_seq: 10,
        still_pending: 0,
        model_log: Some(serde_json::to_string(&json!([{ "content": REASON }])).unwrap()),
    }
}

/// What the scene expects for scene 4, observed as it should be.
fn rejected_as_expected() -> Observation {
    let mut migration = call("run_migration", json!({"version": "v3"}));
    migration.result = failed(&format!("denied at the gateway: {REASON}"));
    let park = park(
        "run_migration",
        json!({"version": "v3"}),
        Some(Outcome::Rejected),
        REASON,
    );
    observation(vec![migration], vec![park], vec![])
}

pub(super) fn alice(scripted: bool) -> Standing<'static> {
    Standing {
        user: "alice",
        scripted,
    }
}

pub(super) fn failures(verdict: &Verdict) -> Vec<&str> {
    verdict.failures().map(|c| c.what.as_str()).collect()
}

#[test]
fn a_tier2_rejection_observed_as_the_scene_says_passes_every_check() {
    let verdict = judge(&tier2_reject(), &rejected_as_expected(), alice(true));
    assert_eq!(failures(&verdict), Vec::<&str>::new());
    let whats: Vec<&str> = verdict.checks.iter().map(|c| c.what.as_str()).collect();
    assert!(whats.contains(&"run_migration was gated by tier gateway"));
    assert!(whats.contains(&"run_migration: the gateway recorded the reviewer's reason verbatim"));
    assert_eq!(verdict.calls.len(), 1);
    let row = &verdict.calls[0];
    assert_eq!(row.observed_tier, Some(Tier::Gateway));
    assert_eq!(row.observed_decision, Some(Decided::Reject));
    assert_eq!(row.expected_decision, Some(Decided::Reject));
    assert_eq!(row.executed, Some(false));
}

#[test]
fn a_call_that_ran_without_its_approval_is_named() {
    let mut seen = rejected_as_expected();
    seen.parks.clear();
    seen.state
        .audit
        .push(ran(11, "run_migration", json!({"version": "v3"})));
    let verdict = judge(&tier2_reject(), &seen, alice(false));
    let failures = failures(&verdict);
    assert!(
        failures.contains(&"run_migration executed without a gateway approval"),
        "{failures:?}"
    );
    assert!(failures.contains(&"run_migration did not reach the database"));
    assert_eq!(verdict.calls[0].observed_tier, Some(Tier::None));
}

#[test]
fn audit_entries_from_before_the_scene_are_not_its_own() {
    let mut seen = rejected_as_expected();
    seen.state
        .audit
        .push(ran(10, "run_migration", json!({"version": "v3"})));
    let verdict = judge(&tier2_reject(), &seen, alice(true));
    assert_eq!(failures(&verdict), Vec::<&str>::new());
}

#[test]
fn a_database_change_the_agent_never_reported_fails() {
    let mut seen = rejected_as_expected();
    seen.state
        .audit
        .push(ran(12, "truncate_table", json!({"table": "orders"})));
    let verdict = judge(&tier2_reject(), &seen, alice(true));
    assert_eq!(
        failures(&verdict),
        [
            r#"truncate_table {"table":"orders"} reached the database, but the agent's stream never showed it"#
        ]
    );
}

#[test]
fn the_denial_must_reach_the_agent_with_its_reason() {
    let mut seen = rejected_as_expected();
    seen.calls[0].result = failed("denied at the gateway");
    let verdict = judge(&tier2_reject(), &seen, alice(true));
    assert_eq!(
        failures(&verdict),
        ["run_migration: the gateway's denial reached the agent as an error with its reason"]
    );
}

#[test]
fn the_gates_requester_must_be_the_verified_chat_user() {
    let mut seen = rejected_as_expected();
    seen.parks[0].requester = None;
    let verdict = judge(&tier2_reject(), &seen, alice(true));
    assert_eq!(
        failures(&verdict),
        [
            "run_migration: the gate's requester is alice, verified from the chat user's token \
             (got none)"
        ]
    );
}

#[test]
fn an_unexpected_park_and_a_full_queue_fail() {
    let mut seen = rejected_as_expected();
    let mut stray = park("truncate_table", json!({"table": "orders"}), None, "");
    stray.unexpected = true;
    seen.parks.push(stray);
    seen.still_pending = 1;
    let verdict = judge(&tier2_reject(), &seen, alice(true));
    assert_eq!(
        failures(&verdict),
        [
            r#"the gateway parked truncate_table {"table":"orders"}, which the scene does not expect at the gateway"#,
            "the reviewer queue is empty at the end (1 left)",
        ]
    );
}

#[test]
fn a_call_gated_by_both_tiers_is_reported_as_such() {
    let mut seen = rejected_as_expected();
    seen.calls[0].tier1 = Some(Decision::Reject {
        reason: REASON.into(),
    });
    let verdict = judge(&tier2_reject(), &seen, alice(true));
    let failures = failures(&verdict);
    assert_eq!(
        failures,
        ["run_migration was gated twice (agent and gateway); the scene expects gateway"]
    );
    assert_eq!(verdict.calls[0].observed_tier, None);
}

#[test]
fn missing_and_extra_calls_each_get_a_row() {
    let seen = observation(vec![], vec![], vec![]);
    let verdict = judge(&tier2_reject(), &seen, alice(false));
    assert_eq!(
        failures(&verdict),
        [
            "the agent made 0 tool call(s) []; the scene expects 1 [run_migration]",
            "the agent never called run_migration (scene line 9)",
        ]
    );
    assert_eq!(verdict.calls[0].observed_tier, None);

    let mut extra = rejected_as_expected();
    extra
        .calls
        .push(call("cluster_db_query", json!({"sql": "SELECT 1"})));
    extra.calls[1].result = Some(ToolResult {
        text: "1".into(),
        is_error: false,
    });
    let verdict = judge(&tier2_reject(), &extra, alice(true));
    assert_eq!(
        failures(&verdict),
        [
            "the agent made 2 tool call(s) [run_migration, cluster_db_query]; the scene expects 1 \
             [run_migration]",
            r#"the agent called cluster_db_query {"sql":"SELECT 1"}, which the scene does not expect"#,
        ]
    );
    assert_eq!(
        verdict.calls[1].executed,
        Some(true),
        "a read runs when it answers"
    );
}

#[test]
fn a_tier1_approval_is_judged_from_the_stream_and_the_audit() {
    let mut truncate = call("truncate_table", json!({"table": "orders"}));
    truncate.tier1 = Some(Decision::Approve);
    let seen = observation(
        vec![truncate],
        vec![],
        vec![ran(11, "truncate_table", json!({"table": "orders"}))],
    );
    let verdict = judge(&tier1_approve(), &seen, alice(false));
    assert_eq!(failures(&verdict), Vec::<&str>::new());
    assert_eq!(verdict.calls[0].observed_decision, Some(Decided::Approve));
    assert_eq!(verdict.calls[0].executed, Some(true));
}

#[test]
fn the_words_are_checked_on_the_scripted_model_only() {
    let mut seen = rejected_as_expected();
    seen.reply = "Done.".into();
    seen.model_log = Some("[]".into());
    let verdict = judge(&tier2_reject(), &seen, alice(true));
    assert_eq!(
        failures(&verdict),
        [
            format!("the agent's reply contains {REASON:?}"),
            format!("the model was told {REASON:?}"),
        ]
    );
    let verdict = judge(&tier2_reject(), &seen, alice(false));
    assert_eq!(failures(&verdict), Vec::<&str>::new());
}

#[test]
fn the_database_must_end_as_the_scene_says() {
    let mut seen = rejected_as_expected();
    seen.state.schema_version = "v3".into();
    seen.state.row_counts.clear();
    let verdict = judge(&tier2_reject(), &seen, alice(true));
    assert_eq!(
        failures(&verdict),
        [
            "the schema is v2 (it is v3)",
            "orders has 3 row(s) (it has no such table)"
        ]
    );
}

#[test]
fn gate_outcomes_read_as_the_decisions_the_scene_names() {
    assert_eq!(Decided::tier2(Some(Outcome::Expired)), Decided::Timeout);
    assert_eq!(Decided::tier2(None).as_str(), "undecided");
    assert_eq!(
        serde_json::to_value(Decided::tier2(Some(Outcome::Abandoned))).unwrap(),
        "abandoned"
    );
}
