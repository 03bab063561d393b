//! What one scene's run left to observe, each tier from its own source: the agent's A2A
//! stream (calls, results, words), hitl-extauth's `/events` (parks), mock-db-mcp's `/state`
//! (audit, schema, rows), the scripted model's log. Gathered by the chat user, the reviewer
//! and the runner; read by the judge.

use hitl_wire::{
    extauth::Outcome,
    mockdb::{AuditEntry, State, tools},
};
use serde_json::Value;

use crate::a2a::hitl::Decision;

/// A tool's answer, as the agent's stream reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    pub text: String,
    pub is_error: bool,
}

/// A tool call the agent made, as seen on its A2A stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenCall {
    pub id: String,
    pub tool: String,
    pub args: Value,
    /// The chat user's decision, if the agent paused the call (tier 1).
    pub tier1: Option<Decision>,
    pub result: Option<ToolResult>,
}

/// A call parked at the gateway, as seen on `/events`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenPark {
    pub id: String,
    pub tool: String,
    pub args: Value,
    /// The requester the gate verified.
    pub requester: Option<String>,
    /// How it closed (none: no closing event arrived).
    pub outcome: Option<Outcome>,
    pub reason: String,
    /// The scene did not expect this park (the reviewer rejected it).
    pub unexpected: bool,
    /// `/events` re-announced the card with no caller waiting (the hold ran out) before the
    /// reviewer decided it.
    pub hold_ended: bool,
    /// The gate was killed while this call was held, and the card was on the restarted
    /// gate's `/events` (its first events: the open cards).
    pub came_back: bool,
    /// How `/pending` listed the card when the reviewer decided it after a hold that ran out
    /// or a restart (none: decided at once).
    pub listed_before_decision: Option<Listed>,
    /// Approvals the gate counted while the call still waited for more (k-of-n), in turn.
    pub counted: usize,
}

/// How `/pending` listed a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// Not listed.
    Absent,
    /// Listed, a caller held for it now.
    Waiting,
    /// Listed, open, no caller waiting: decidable, a retry attaches to it.
    NotWaiting,
}

/// Everything observed during one scene, each tier from its own source.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The agent's tool calls, from its A2A stream, in order.
    pub calls: Vec<SeenCall>,
    /// The agent's words, from its A2A stream.
    pub reply: String,
    /// The gateway's parks, from hitl-extauth's `/events`.
    pub parks: Vec<SeenPark>,
    /// mock-db-mcp's `/state` at the end.
    pub state: State,
    /// The last audit entry before the scene began.
    pub baseline_seq: u64,
    /// Calls still in the reviewer queue at the end.
    pub still_pending: usize,
    /// Everything that reached the scripted model (its request log as JSON), when it runs.
    pub model_log: Option<String>,
}

impl Observation {
    /// mock-db-mcp's audit entries written during the scene.
    pub fn audit(&self) -> impl Iterator<Item = &AuditEntry> {
        self.state
            .audit
            .iter()
            .filter(|e| e.seq > self.baseline_seq)
    }

    /// The calls that ran in the database during the scene (the scene's own reset aside).
    pub fn executed(&self) -> Vec<&AuditEntry> {
        self.audit()
            .filter(|e| e.tool != tools::RESET && e.executed())
            .collect()
    }
}
