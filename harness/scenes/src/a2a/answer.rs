//! The chat user's side of a pause: the messages that answer a tier-1 approval or an
//! `ask_user` question, in the dialect the pause came in, and the check that the agent took
//! the decision. The engine silently drops a decision it cannot parse, so
//! [`check_decision_taken`] verifies every decision by its effect.

use serde_json::{Value, json};

use super::{
    hitl::{Activity, ApprovalRequest, Decision, Dialect, Pause},
    types::{Message, Part, Role},
};

/// The user message that answers a tier-1 approval request.
pub fn decision_message(
    task_id: &str,
    context_id: &str,
    request: &ApprovalRequest,
    decision: &Decision,
) -> Message {
    let mut data = match decision {
        Decision::Approve => json!({"decision_type": "approve"}),
        Decision::Reject { reason } => {
            json!({"decision_type": "reject", "rejection_reason": reason})
        }
    };
    let metadata = (request.dialect == Dialect::HitlV1).then(|| {
        let (verdict, reason) = match decision {
            Decision::Approve => ("approve", None),
            Decision::Reject { reason } => ("reject", Some(reason.clone())),
        };
        let mut response = json!({
            "decisions": {request.tool_call_id.clone(): verdict},
        });
        if let Some(reason) = reason {
            response["rejection_reasons"] = json!({request.tool_call_id.clone(): reason});
        }
        json!({"tool_approval_response": response})
    });
    if request.dialect == Dialect::HitlV1 {
        // Also state it per tool call, as kagent's batch form does: unambiguous either way.
        data["decisions"] = json!({request.tool_call_id.clone(): match decision {
            Decision::Approve => "approve",
            Decision::Reject { .. } => "reject",
        }});
    }
    user_message(task_id, context_id, vec![Part::data(data)], metadata)
}

/// The user message that answers an `ask_user` question (one answer per question).
pub fn answer_message(task_id: &str, context_id: &str, answers: &[String]) -> Message {
    let answers: Vec<Value> = answers.iter().map(|a| json!({"answer": [a]})).collect();
    let data = json!({"decision_type": "approve", "ask_user_answers": answers});
    user_message(task_id, context_id, vec![Part::data(data)], None)
}

/// A new user message, optionally continuing a task.
pub fn user_message(
    task_id: &str,
    context_id: &str,
    parts: Vec<Part>,
    metadata: Option<Value>,
) -> Message {
    Message {
        kind: "message".into(),
        message_id: uuid::Uuid::new_v4().to_string(),
        role: Role::User,
        parts,
        context_id: (!context_id.is_empty()).then(|| context_id.to_owned()),
        task_id: (!task_id.is_empty()).then(|| task_id.to_owned()),
        metadata,
    }
}

/// Why a decision was not taken by the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionNotTaken {
    #[error(
        "the agent dropped the decision on {tool} ({id}): the task ended without running or \
         rejecting the call"
    )]
    Dropped { tool: String, id: String },
    #[error("the agent still waits for a decision on {tool} ({id}) after it was sent")]
    StillPending { tool: String, id: String },
    #[error("the agent ran {tool} ({id}) although it was rejected")]
    RanAfterReject { tool: String, id: String },
    #[error("the agent answered the approval of {tool} ({id}) with a rejection: {text}")]
    RejectedAfterApprove {
        tool: String,
        id: String,
        text: String,
    },
}

/// Text kagent puts in the tool result of a rejected call.
pub const REJECTED_MARKER: &str = "rejected by user";

/// Check, from what the agent reported after the decision, that it took the decision: a
/// tool result for the call must follow, and match the decision.
pub fn check_decision_taken(
    request: &ApprovalRequest,
    decision: &Decision,
    after: &[Activity],
    still_paused_on: Option<&Pause>,
) -> Result<(), DecisionNotTaken> {
    let tool = request.tool.clone();
    let id = request.tool_call_id.clone();
    let result = after.iter().find_map(|a| match a {
        Activity::Result { id: rid, text, .. } if *rid == request.tool_call_id => {
            Some(text.as_str())
        }
        _ => None,
    });
    match (decision, result) {
        (Decision::Approve, Some(text)) if text.contains(REJECTED_MARKER) => {
            Err(DecisionNotTaken::RejectedAfterApprove {
                tool,
                id,
                text: text.to_owned(),
            })
        }
        (Decision::Reject { .. }, Some(text)) if !text.contains(REJECTED_MARKER) => {
            Err(DecisionNotTaken::RanAfterReject { tool, id })
        }
        (_, Some(_)) => Ok(()),
        (_, None) => match still_paused_on {
            Some(Pause::Approval(reqs)) if reqs.iter().any(|r| r.tool_call_id == id) => {
                Err(DecisionNotTaken::StillPending { tool, id })
            }
            _ => Err(DecisionNotTaken::Dropped { tool, id }),
        },
    }
}
