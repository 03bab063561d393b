//! The A2A reading is checked against the wire exchanges observed with the real kagent-adk
//! 0.10.4 (`tests/fixtures/kagent-adk-0.10.4-wire/`, provenance in `tests/fixtures/README.md`),
//! not against hand-written guesses.

use std::path::PathBuf;

use serde_json::Value;

use super::{
    answer::{self, DecisionNotTaken},
    hitl::{self, Activity, Decision, Pause},
    types::{Task, TaskState},
};

fn capture(name: &str) -> Value {
    let dir = std::env::var_os("HITL_LAB_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            hitl_lab::bins::workspace_root().join("tests/fixtures/kagent-adk-0.10.4-wire")
        });
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading wire capture {}: {e} (the captures live in tests/fixtures; set \
             HITL_LAB_REFERENCE_DIR if they are elsewhere)",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("capture is JSON")
}

fn task_of(name: &str) -> Task {
    let value = capture(name);
    serde_json::from_value(value["response"]["result"].clone()).expect("a task")
}

fn activities(task: &Task) -> Vec<Activity> {
    task.history.iter().flat_map(hitl::activities_of).collect()
}

fn approval(task: &Task) -> hitl::ApprovalRequest {
    let message = task.status.message.as_ref().expect("a status message");
    match hitl::pause_of(message) {
        Some(Pause::Approval(mut requests)) => requests.remove(0),
        other => panic!("expected an approval pause, got {other:?}"),
    }
}

#[test]
fn a_require_approval_pause_names_the_tool_and_its_arguments() {
    let task = task_of("01-01-approve-flow_initial-send.json");
    assert_eq!(task.status.state, TaskState::InputRequired);
    let request = approval(&task);
    assert_eq!(request.tool, "truncate_table");
    assert_eq!(request.tool_call_id, "call_trunc_001");
    assert_eq!(request.args, serde_json::json!({"table": "orders"}));
    assert!(request.confirmation_id.starts_with("adk-"));
    assert!(
        request.hint.contains("requires approval"),
        "{}",
        request.hint
    );
}

#[test]
fn the_tool_call_is_reported_but_the_confirmation_request_is_not_a_tool_call() {
    let task = task_of("01-01-approve-flow_initial-send.json");
    let calls: Vec<_> = activities(&task)
        .into_iter()
        .filter_map(|a| match a {
            Activity::Call { tool, .. } => Some(tool),
            _ => None,
        })
        .collect();
    assert_eq!(calls, ["truncate_table"]);
}

#[test]
fn an_approval_that_ran_the_tool_is_verified_as_taken() {
    let request = approval(&task_of("01-01-approve-flow_initial-send.json"));
    let after = task_of("02-01-approve-flow_approve-send.json");
    assert_eq!(after.status.state, TaskState::Completed);
    answer::check_decision_taken(&request, &Decision::Approve, &activities(&after), None)
        .expect("approval taken");
}

#[test]
fn a_rejection_reaches_the_tool_result_with_its_reason() {
    let request = approval(&task_of("13-07-batch_initial-send.json"));
    let after = task_of("14-07-batch_batch-reject.json");
    let reject = Decision::Reject {
        reason: "batch says no".into(),
    };
    let acts = activities(&after);
    answer::check_decision_taken(&request, &reject, &acts, None).expect("rejection taken");
    assert!(acts.iter().any(|a| matches!(a,
        Activity::Result { text, .. } if text.contains("Reason: batch says no"))));
}

#[test]
fn a_plain_text_yes_is_silently_dropped_and_we_notice() {
    let request = approval(&task_of("11-06-plain-text-yes_initial-send.json"));
    let after = task_of("12-06-plain-text-yes_text-yes.json");
    assert_eq!(after.status.state, TaskState::Completed);
    let err = answer::check_decision_taken(&request, &Decision::Approve, &activities(&after), None)
        .expect_err("a dropped decision must be caught");
    assert!(matches!(err, DecisionNotTaken::Dropped { .. }), "{err}");
}

#[test]
fn our_decision_messages_have_the_observed_shape() {
    let request = approval(&task_of("01-01-approve-flow_initial-send.json"));
    let sent = capture("06-03-reject-clean_reject-send.json");
    let observed = &sent["request"]["params"]["message"]["parts"][0]["data"];
    let reason = observed["rejection_reason"].as_str().unwrap().to_owned();
    let ours = answer::decision_message("t", "c", &request, &Decision::Reject { reason });
    let ours = serde_json::to_value(&ours).unwrap();
    assert_eq!(&ours["parts"][0]["data"], observed);
    assert_eq!(ours["taskId"], "t");
    assert_eq!(ours["contextId"], "c");
}

#[test]
fn a_decision_to_a_finished_task_is_a_json_rpc_error() {
    let value = capture("15-08-approve-completed-task.json");
    let err = super::client::rpc_result(value["response"].clone()).expect_err("an error");
    assert!(
        matches!(err, super::A2aError::Rpc { code: -32602, .. }),
        "{err}"
    );
}

/// kagent-langgraph reports a tool result as the tool message's text; the LangGraph agent
/// puts the MCP `CallToolResult` JSON there, so a denial still reads as an error.
#[test]
fn a_langgraph_tool_result_is_read_through_the_mcp_result_it_carries() {
    let response = |response: Value| super::types::Message {
        kind: "message".into(),
        message_id: "m".into(),
        role: super::types::Role::Agent,
        parts: vec![super::types::Part::Data {
            data: serde_json::json!({"id": "call_1", "name": "run_migration", "response": response}),
            metadata: Some(serde_json::json!({"kagent_type": "function_response"})),
        }],
        context_id: None,
        task_id: None,
        metadata: None,
    };
    let denied = r#"{"content": [{"type": "text", "text": "denied at the gateway: freeze"}], "isError": true}"#;
    assert_eq!(
        hitl::activities_of(&response(Value::String(denied.into()))),
        vec![Activity::Result {
            id: "call_1".into(),
            tool: "run_migration".into(),
            text: "denied at the gateway: freeze".into(),
            is_error: true,
        }]
    );
    let plain = "Tool call was rejected by user. Reason: no";
    assert_eq!(
        hitl::activities_of(&response(Value::String(plain.into()))),
        vec![Activity::Result {
            id: "call_1".into(),
            tool: "run_migration".into(),
            text: plain.into(),
            is_error: false,
        }]
    );
}
