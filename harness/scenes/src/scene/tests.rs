//! The scene parser: every shipped scene parses, and every mistake is reported at its line
//! with a message that says what to write instead.

use super::{HumanDecision, Tier, WhileHeld, parse, parse::default_dir};

const VALID: &str = r#"
id = 9
name = "test"
prompts = ["Truncate the orders table."]

[[turn]]
call = { tool = "truncate_table", args = { table = "orders" } }

[[call]]
tool = "truncate_table"
tier = "agent"
decide = "reject"
reason = "no"
executed = false
"#;

fn error_of(text: &str) -> String {
    parse("s.toml", text)
        .expect_err("the scene must be refused")
        .to_string()
}

#[test]
fn every_shipped_scene_parses_and_ids_are_unique() {
    let scenes = super::load_dir(&default_dir()).expect("scenes load");
    let ids: Vec<u32> = scenes.iter().map(|s| s.id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
}

#[test]
fn a_valid_scene_reads_as_written() {
    let scene = parse("s.toml", VALID).unwrap();
    assert_eq!(scene.prompts, ["Truncate the orders table."]);
    assert_eq!(scene.calls[0].tier, Tier::Agent);
    assert_eq!(
        scene.calls[0].decision,
        Some(HumanDecision::Reject {
            reason: "no".into()
        })
    );
    assert_eq!(scene.calls[0].line, 9);
    assert_eq!(scene.script.turns.len(), 1);
}

#[test]
fn a_toml_syntax_error_points_at_its_line() {
    let text = VALID.replace("tier = \"agent\"", "tier = agent");
    let err = error_of(&text);
    assert!(err.starts_with("s.toml:11:"), "{err}");
}

#[test]
fn an_unknown_tier_lists_the_valid_ones() {
    let err = error_of(&VALID.replace("tier = \"agent\"", "tier = \"agnet\""));
    assert!(err.starts_with("s.toml:11:"), "{err}");
    assert!(err.contains("none") && err.contains("gateway"), "{err}");
}

#[test]
fn an_unknown_decision_is_named_at_its_line() {
    let err = error_of(&VALID.replace("decide = \"reject\"", "decide = \"maybe\""));
    assert_eq!(
        err,
        "s.toml:12:10: unknown decision `maybe`: use approve, reject, timeout or earlier-approval"
    );
}

#[test]
fn a_typo_in_a_tool_name_lists_the_lab_tools() {
    let err = error_of(&VALID.replace(
        "tool = \"truncate_table\"\ntier",
        "tool = \"truncate\"\ntier",
    ));
    assert!(err.starts_with("s.toml:10:"), "{err}");
    assert!(err.contains("unknown tool `truncate`"), "{err}");
    assert!(err.contains("run_migration"), "{err}");
}

#[test]
fn a_gated_call_needs_a_decision() {
    let text = VALID
        .replace("decide = \"reject\"\n", "")
        .replace("reason = \"no\"\n", "");
    let err = error_of(&text);
    assert!(err.starts_with("s.toml:9:"), "{err}");
    assert!(err.contains("needs `decide`"), "{err}");
}

#[test]
fn timeouts_exist_only_at_the_gateway() {
    let text = VALID
        .replace("decide = \"reject\"", "decide = \"timeout\"")
        .replace("reason = \"no\"\n", "");
    let err = error_of(&text);
    assert!(err.contains("only exists at the gateway"), "{err}");
}

#[test]
fn a_rejected_call_cannot_have_executed() {
    let err = error_of(&VALID.replace("executed = false", "executed = true"));
    assert!(err.contains("contradicts the decision"), "{err}");
}

#[test]
fn an_ungated_call_takes_no_decision() {
    let err = error_of(&VALID.replace("tier = \"agent\"", "tier = \"none\""));
    assert!(err.starts_with("s.toml:12:"), "{err}");
    assert!(err.contains("nobody decides"), "{err}");
}

#[test]
fn unknown_keys_are_refused() {
    let err = error_of(&VALID.replace("executed = false", "executed = false\nexecute = true"));
    assert!(err.starts_with("s.toml:15:"), "{err}");
    assert!(err.contains("unknown field `execute`"), "{err}");
}

#[test]
fn a_turn_cannot_mix_both_forms() {
    let text = VALID.replace(
        "call = { tool = \"truncate_table\", args = { table = \"orders\" } }",
        "say = \"hi\"\nrespond = [{ say = \"x\" }]",
    );
    let err = error_of(&text);
    assert!(err.starts_with("s.toml:6:"), "{err}");
    assert!(err.contains("turn 0: use either"), "{err}");
}

#[test]
fn empty_prompts_are_refused() {
    let err = error_of(&VALID.replace("[\"Truncate the orders table.\"]", "[]"));
    assert!(err.starts_with("s.toml:4:"), "{err}");
    assert!(err.contains("at least one"), "{err}");
}

#[test]
fn the_free_chat_script_parses() {
    let script = super::parse::chat_script().expect("the chat script parses");
    assert_eq!(script.turns.len(), 3);
}

/// Scene 7's calls: approved once the hold ran out, then a retry on that approval.
const LONG: &str = r#"
id = 7
name = "test"
prompts = ["Apply migration v3.", "Try again."]

[[turn]]
call = { tool = "run_migration", args = { version = "v3" } }

[[call]]
tool = "run_migration"
tier = "gateway"
decide = "approve"
while_held = "hold-runs-out"
executed = false

[[call]]
tool = "run_migration"
tier = "gateway"
decide = "earlier-approval"
executed = true
"#;

#[test]
fn a_long_approval_reads_as_written() {
    let scene = parse("s.toml", LONG).unwrap();
    assert_eq!(scene.calls[0].while_held, Some(WhileHeld::HoldRunsOut));
    assert_eq!(scene.calls[0].decision, Some(HumanDecision::Approve));
    assert_eq!(scene.calls[1].while_held, None);
    assert_eq!(
        scene.calls[1].decision,
        Some(HumanDecision::EarlierApproval)
    );
    let restart = parse("s.toml", &LONG.replace("hold-runs-out", "gate-restarts")).unwrap();
    assert_eq!(restart.calls[0].while_held, Some(WhileHeld::GateRestarts));
}

#[test]
fn an_unknown_while_held_is_named_at_its_value() {
    let err = error_of(&LONG.replace("\"hold-runs-out\"", "\"hold-expires\""));
    assert_eq!(
        err,
        "s.toml:13:14: unknown `while_held = \"hold-expires\"`: use hold-runs-out or gate-restarts"
    );
}

#[test]
fn while_held_goes_with_a_reviewer_decision_at_the_gateway() {
    let err = error_of(&LONG.replace("decide = \"approve\"", "decide = \"timeout\""));
    assert!(
        err.starts_with("s.toml:13:14: `while_held` goes with"),
        "{err}"
    );
}

#[test]
fn a_held_call_whose_decision_is_put_off_never_runs() {
    let err = error_of(&LONG.replacen("executed = false", "executed = true", 1));
    assert!(err.starts_with("s.toml:9:1: "), "{err}");
    assert!(
        err.contains("contradicts `while_held = \"hold-runs-out\"`"),
        "{err}"
    );
}

#[test]
fn an_earlier_approval_needs_an_earlier_approved_call() {
    let err = error_of(&LONG.replace("decide = \"approve\"", "decide = \"reject\""));
    assert!(err.starts_with("s.toml:16:1: "), "{err}");
    assert!(
        err.contains("needs an earlier [[call]] of run_migration that the reviewer approves"),
        "{err}"
    );
}

#[test]
fn an_earlier_approval_exists_only_at_the_gateway_and_runs() {
    let err = error_of(&LONG.replace(
        "tier = \"gateway\"\ndecide = \"earlier-approval\"",
        "tier = \"agent\"\ndecide = \"earlier-approval\"",
    ));
    assert!(err.starts_with("s.toml:19:10: "), "{err}");
    assert!(err.contains("only exists at the gateway"), "{err}");
    let err = error_of(&LONG.replace("executed = true", "executed = false"));
    assert!(err.starts_with("s.toml:16:1: "), "{err}");
    assert!(err.contains("it runs (`executed = true`)"), "{err}");
}

#[test]
fn approvers_go_with_a_gateway_approval_only() {
    let keys = VALID.replace(
        "decide = \"reject\"",
        "decide = \"reject\"\napprovers = [\"dba-ann\", \"sre-sam\"]",
    );
    let e = error_of(&keys);
    assert!(e.contains("`approvers` go with"), "{e}");
}
