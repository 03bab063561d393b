//! One `[[call]]` of a scene: what the agent must call, which tier gates it, what the human
//! there decides (and when), and whether it runs — checked for sense, errors located.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::{LAB_TOOLS, line_col};
use crate::scene::model::{ExpectedCall, HumanDecision, Tier, WhileHeld};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCall {
    pub(super) tool: Spanned<String>,
    pub(super) tier: Tier,
    pub(super) decide: Option<Spanned<String>>,
    pub(super) reason: Option<String>,
    pub(super) while_held: Option<Spanned<String>>,
    pub(super) executed: bool,
    #[serde(default)]
    pub(super) approvers: Vec<String>,
}

type Located = (Option<Range<usize>>, String);

pub(super) fn to_call(
    raw: RawCall,
    text: &str,
    span: Range<usize>,
) -> Result<ExpectedCall, Located> {
    let tool_span = raw.tool.span();
    let tool = raw.tool.into_inner();
    if !LAB_TOOLS.contains(&tool.as_str()) {
        return Err((
            Some(tool_span),
            format!(
                "unknown tool `{tool}`; the lab's tools are {}",
                LAB_TOOLS.join(", ")
            ),
        ));
    }
    let decide_span = raw.decide.as_ref().map(Spanned::span);
    let decide = raw.decide.map(Spanned::into_inner);
    let decision = decision(
        raw.tier,
        decide.as_deref(),
        raw.reason.as_deref(),
        decide_span,
    )?;
    let while_held = while_held(raw.while_held, raw.tier, decision.as_ref(), raw.executed)?;
    if raw.reason.is_some() && !matches!(decision, Some(HumanDecision::Reject { .. })) {
        return Err((None, "`reason` goes with `decide = \"reject\"` only".into()));
    }
    let denied = matches!(
        decision,
        Some(HumanDecision::Reject { .. } | HumanDecision::Timeout)
    );
    if denied && raw.executed {
        return Err((
            None,
            "`executed = true` contradicts the decision: a rejected or timed-out call never runs"
                .into(),
        ));
    }
    if decision == Some(HumanDecision::EarlierApproval) && !raw.executed {
        return Err((
            None,
            "`decide = \"earlier-approval\"` says the call passes on an approval: it runs \
             (`executed = true`)"
                .into(),
        ));
    }
    if !raw.approvers.is_empty()
        && (decision != Some(HumanDecision::Approve) || raw.tier != Tier::Gateway)
    {
        return Err((
            None,
            "`approvers` go with `tier = \"gateway\"` and `decide = \"approve\"`: the \
             reviewers who approve in turn"
                .into(),
        ));
    }
    Ok(ExpectedCall {
        approvers: raw.approvers,
        tool,
        tier: raw.tier,
        decision,
        while_held,
        executed: raw.executed,
        line: line_col(text, span.start).0,
    })
}

/// What `decide` says the human at `tier` does (`reason` goes with a rejection).
fn decision(
    tier: Tier,
    decide: Option<&str>,
    reason: Option<&str>,
    decide_span: Option<Range<usize>>,
) -> Result<Option<HumanDecision>, Located> {
    Ok(match (tier, decide) {
        (Tier::None, None) => None,
        (Tier::None, Some(_)) => {
            return Err((
                decide_span,
                "`decide` is set but `tier = \"none\"`: nobody decides on an ungated call".into(),
            ));
        }
        (tier, None) => {
            return Err((
                None,
                format!(
                    "`tier = \"{}\"` needs `decide`: what {} does (approve, reject{})",
                    tier.as_str(),
                    tier.decider(),
                    if tier == Tier::Gateway {
                        ", timeout, earlier-approval"
                    } else {
                        ""
                    }
                ),
            ));
        }
        (_, Some("approve")) => Some(HumanDecision::Approve),
        (_, Some("reject")) => Some(HumanDecision::Reject {
            reason: reason.unwrap_or_default().to_owned(),
        }),
        (Tier::Gateway, Some("timeout")) => Some(HumanDecision::Timeout),
        (Tier::Gateway, Some(EARLIER_APPROVAL)) => Some(HumanDecision::EarlierApproval),
        (Tier::Agent, Some("timeout")) => {
            return Err((
                decide_span,
                "`decide = \"timeout\"` only exists at the gateway; the agent waits for the chat \
                 user forever"
                    .into(),
            ));
        }
        (Tier::Agent, Some(EARLIER_APPROVAL)) => {
            return Err((
                decide_span,
                "`decide = \"earlier-approval\"` only exists at the gateway; the agent asks the \
                 chat user for every call"
                    .into(),
            ));
        }
        (_, Some(other)) => {
            return Err((
                decide_span,
                format!(
                    "unknown decision `{other}`: use approve, reject, timeout or earlier-approval"
                ),
            ));
        }
    })
}

/// The decision of a call that passes on an earlier call's approval.
const EARLIER_APPROVAL: &str = "earlier-approval";

/// `while_held`: only on a tier-2 call the reviewer approves or rejects, which then cannot
/// have run (its caller is denied when the hold ends or the gate dies; a retry runs).
fn while_held(
    raw: Option<Spanned<String>>,
    tier: Tier,
    decision: Option<&HumanDecision>,
    executed: bool,
) -> Result<Option<WhileHeld>, Located> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let span = raw.span();
    let held = match raw.into_inner().as_str() {
        "hold-runs-out" => WhileHeld::HoldRunsOut,
        "gate-restarts" => WhileHeld::GateRestarts,
        other => {
            return Err((
                Some(span),
                format!("unknown `while_held = \"{other}\"`: use hold-runs-out or gate-restarts"),
            ));
        }
    };
    if tier != Tier::Gateway
        || !matches!(
            decision,
            Some(HumanDecision::Approve | HumanDecision::Reject { .. })
        )
    {
        return Err((
            Some(span),
            "`while_held` goes with `tier = \"gateway\"` and `decide = \"approve\"` or \
             `\"reject\"`: it says what happens before the reviewer decides a held call"
                .into(),
        ));
    }
    if executed {
        return Err((
            None,
            format!(
                "`executed = true` contradicts `while_held = \"{}\"`: the held call is denied \
                 before the reviewer decides; a retry (`decide = \"earlier-approval\"`) runs",
                held.as_str()
            ),
        ));
    }
    Ok(Some(held))
}

/// A call that passes on an earlier approval needs an earlier call of its tool that the
/// reviewer approves.
pub(super) fn earlier_approval_has_one(
    before: &[ExpectedCall],
    call: &ExpectedCall,
) -> Result<(), String> {
    if call.decision != Some(HumanDecision::EarlierApproval)
        || before.iter().any(|c| {
            c.tool == call.tool
                && c.tier == Tier::Gateway
                && c.decision == Some(HumanDecision::Approve)
        })
    {
        return Ok(());
    }
    Err(format!(
        "`decide = \"earlier-approval\"` needs an earlier [[call]] of {} that the reviewer \
         approves at the gateway",
        call.tool
    ))
}
