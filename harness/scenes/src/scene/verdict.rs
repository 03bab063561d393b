//! The verdict on a scene as the reports carry it: each check made, and one row per tool
//! call with its tier, decision and execution, expected and observed.

use serde::Serialize;

use super::model::{HumanDecision, Tier};
use crate::a2a::hitl::Decision;
use hitl_wire::extauth::Outcome;

/// One check the harness made, passed or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub passed: bool,
    pub what: String,
}

/// A decision as the reports name it: what the scene asks of a human, or how a gate closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decided {
    Approve,
    Reject,
    /// Nobody decided; the park expired.
    Timeout,
    Abandoned,
    Lost,
    Denied,
    /// Parked, and no closing event arrived.
    Undecided,
    /// Passed at once on an earlier call's approval (no card of its own).
    #[serde(rename = "earlier-approval")]
    EarlierApproval,
}

impl Decided {
    pub fn as_str(self) -> &'static str {
        match self {
            Decided::Approve => "approve",
            Decided::Reject => "reject",
            Decided::Timeout => "timeout",
            Decided::Abandoned => "abandoned",
            Decided::Lost => "lost",
            Decided::Denied => "denied",
            Decided::Undecided => "undecided",
            Decided::EarlierApproval => "earlier-approval",
        }
    }

    /// What the scene asks the human to do.
    pub fn wanted(decision: &HumanDecision) -> Self {
        match decision {
            HumanDecision::Approve => Decided::Approve,
            HumanDecision::Reject { .. } => Decided::Reject,
            HumanDecision::Timeout => Decided::Timeout,
            HumanDecision::EarlierApproval => Decided::EarlierApproval,
        }
    }

    /// What the chat user decided at tier 1.
    pub fn tier1(decision: &Decision) -> Self {
        match decision {
            Decision::Approve => Decided::Approve,
            Decision::Reject { .. } => Decided::Reject,
        }
    }

    /// How the gateway closed a park (none yet: undecided).
    pub fn tier2(outcome: Option<Outcome>) -> Self {
        match outcome {
            Some(Outcome::Approved) => Decided::Approve,
            Some(Outcome::Rejected) => Decided::Reject,
            Some(Outcome::Expired) => Decided::Timeout,
            Some(Outcome::Abandoned) => Decided::Abandoned,
            Some(Outcome::Lost) => Decided::Lost,
            Some(Outcome::Denied) => Decided::Denied,
            None => Decided::Undecided,
        }
    }
}

/// One tool call as expected and as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRow {
    pub tool: String,
    pub expected_tier: Option<Tier>,
    pub observed_tier: Option<Tier>,
    pub expected_decision: Option<Decided>,
    pub observed_decision: Option<Decided>,
    pub expected_executed: Option<bool>,
    pub executed: Option<bool>,
}

/// The verdict on one scene.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// In the order they were made.
    pub checks: Vec<Check>,
    pub calls: Vec<CallRow>,
}

impl Verdict {
    pub(super) fn check(&mut self, passed: bool, what: String) {
        self.checks.push(Check { passed, what });
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}
