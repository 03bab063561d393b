//! The scene model: what a scene file says (prompts, the scripted model's turns, the humans'
//! decisions at each gate, and what must be true afterwards), already validated.

use std::collections::BTreeMap;

use hitl_wire::model::Script;

/// Which gate stops a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Not gated anywhere.
    None,
    /// Tier 1: kagent `requireApproval`, decided by the chat user.
    Agent,
    /// Tier 2: parked at the gateway, decided by a platform reviewer.
    Gateway,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::None => "none",
            Tier::Agent => "agent",
            Tier::Gateway => "gateway",
        }
    }

    /// Who decides at this tier, in words.
    pub fn decider(self) -> &'static str {
        match self {
            Tier::None => "nobody",
            Tier::Agent => "the chat user",
            Tier::Gateway => "the platform reviewer",
        }
    }
}

/// What the human at the gate does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HumanDecision {
    Approve,
    Reject {
        reason: String,
    },
    /// Tier 2 only: nobody decides; the park times out and the call is denied.
    Timeout,
    /// Tier 2 only: nobody decides this call; it passes at once on the approval an earlier
    /// call of the same action got (no second card).
    EarlierApproval,
}

impl HumanDecision {
    pub fn as_str(&self) -> &'static str {
        match self {
            HumanDecision::Approve => "approve",
            HumanDecision::Reject { .. } => "reject",
            HumanDecision::Timeout => "timeout",
            HumanDecision::EarlierApproval => "earlier-approval",
        }
    }
}

/// What happens while a tier-2 call is held, before the reviewer decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhileHeld {
    /// The reviewer waits until the gate's hold runs out (`PARK_TIMEOUT_SEC`: the caller is
    /// told the request stays open) and only then decides.
    HoldRunsOut,
    /// hitl-extauth is killed (`kill -9`) while the call is held and the lab brings it back
    /// on the same store; the reviewer decides the card that is still there.
    GateRestarts,
}

impl WhileHeld {
    pub fn as_str(self) -> &'static str {
        match self {
            WhileHeld::HoldRunsOut => "hold-runs-out",
            WhileHeld::GateRestarts => "gate-restarts",
        }
    }
}

/// One tool call the scene expects the agent to make, in order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpectedCall {
    pub tool: String,
    pub tier: Tier,
    /// The human's decision (absent for `tier = none`).
    pub decision: Option<HumanDecision>,
    /// What happens while the call is held before the reviewer decides (default: nothing,
    /// the reviewer decides at once).
    pub while_held: Option<WhileHeld>,
    /// Whether the call must reach the database.
    pub executed: bool,
    /// Tier 2 approvals by these reviewers, in turn (the approval policy's k-of-n): the call
    /// must still wait after each but the last. Empty: the desk's own reviewer, once.
    pub approvers: Vec<String>,
    /// 1-based line in the scene file, for messages.
    pub line: usize,
}

/// What must hold when the conversation is over.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Expectations {
    pub schema_version: Option<String>,
    pub row_counts: BTreeMap<String, u64>,
    /// Text the agent's replies must contain (checked with the scripted model only).
    pub reply_contains: Vec<String>,
    /// Text that must have reached the model (scripted model only), e.g. a rejection reason.
    pub model_saw: Vec<String>,
}

/// A parsed, validated scene.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scene {
    /// Scene number, as the workshop runbook (`docs/workshop.md`) numbers them.
    pub id: u32,
    pub name: String,
    pub summary: String,
    /// The file it came from (relative to the workspace when possible).
    pub file: String,
    /// What the chat user says, in order (each a new message in the same conversation).
    pub prompts: Vec<String>,
    /// The scripted model's turns.
    pub script: Script,
    pub calls: Vec<ExpectedCall>,
    /// Answers to the agent's `ask_user` questions, in order.
    pub answers: Vec<String>,
    pub expect: Expectations,
}
