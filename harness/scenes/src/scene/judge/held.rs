//! The judge's rules for the calls of an approval that outlives its request: a call held
//! until its hold ran out or its gate restarted, decided only then, and the retry that passes
//! at once on that approval. Each is checked from more than one source: the gate's `/events`
//! (what the reviewer saw), its `/pending` (how the card was listed), the agent's stream
//! (what the caller was told) and mock-db-mcp's audit (what ran, under which approval).

use hitl_wire::{extauth::Outcome, mockdb::AuditEntry};

use super::{Observed, Unclaimed};
use crate::scene::{
    model::{Tier, WhileHeld},
    observation::{Listed, SeenCall, SeenPark},
    verdict::{Decided, Verdict},
};

/// What a call that passes on an earlier approval passed on.
pub(super) struct Earlier<'a> {
    /// The approved card of the same action (none: there was none).
    card: Option<&'a SeenPark>,
    /// Cards `/events` showed for this action, over the whole scene.
    cards: usize,
    /// The approval mock-db-mcp ran it under.
    approval: Option<String>,
    /// How many times mock-db-mcp ran this action during the scene.
    runs: usize,
}

/// A call the scene expects to pass on an earlier approval: no card of its own; it ran
/// under the approval of the earlier card of the same action.
pub(super) fn on_earlier_approval<'a>(
    call: &SeenCall,
    parks: &'a [SeenPark],
    audit: &mut Unclaimed<'_, &AuditEntry>,
) -> Observed<'a> {
    let same = |p: &&SeenPark| p.tool == call.tool && p.args == call.args;
    let card = parks
        .iter()
        .filter(same)
        .find(|p| p.outcome == Some(Outcome::Approved));
    let runs = audit
        .all()
        .iter()
        .filter(|e| e.tool == call.tool && e.args == call.args)
        .count();
    let action = |e: &&AuditEntry| e.tool == call.tool && e.args == call.args;
    let entry = audit
        .claim(|e| action(e) && card.is_some_and(|c| e.approval_id.as_deref() == Some(&c.id)))
        .or_else(|| audit.claim(action));
    let approval = entry.and_then(|e| e.approval_id.clone());
    let on_it = card.is_some_and(|c| approval.as_deref() == Some(&c.id));
    let (tier, decision) = match (&call.tier1, card) {
        (Some(d), Some(_)) => (None, Some(Decided::tier1(d))),
        (Some(d), None) => (Some(Tier::Agent), Some(Decided::tier1(d))),
        (None, Some(_)) if on_it => (Some(Tier::Gateway), Some(Decided::EarlierApproval)),
        (None, Some(_)) => (Some(Tier::Gateway), Some(Decided::Undecided)),
        (None, None) => (Some(Tier::None), None),
    };
    Observed {
        approved_by: Vec::new(),
        tier,
        decision,
        ran: entry.is_some(),
        park: None,
        earlier: Some(Earlier {
            card,
            cards: parks.iter().filter(same).count(),
            approval,
            runs,
        }),
    }
}

/// A held call whose decision was put off: what happened while it was held, from `/events`
/// and `/pending`, and what its caller was told.
pub(super) fn put_off(
    tool: &str,
    held: WhileHeld,
    call: &SeenCall,
    park: &SeenPark,
    verdict: &mut Verdict,
) {
    match held {
        WhileHeld::HoldRunsOut => {
            verdict.check(
                park.hold_ended,
                format!(
                    "{tool}: the gate's /events showed its hold run out (the card again, no \
                     caller waiting) before the reviewer decided"
                ),
            );
            let denied = call.result.as_ref().filter(|r| r.is_error);
            verdict.check(
                denied.is_some_and(|r| {
                    r.text.contains(&park.id) && r.text.contains("send the same call again")
                }),
                format!(
                    "{tool}: the caller was told, as an error, that approval request {} stays \
                     open and to send the same call again once approved",
                    park.id
                ),
            );
        }
        WhileHeld::GateRestarts => {
            verdict.check(
                park.came_back,
                format!("{tool}: the restarted gate's /events still showed the card"),
            );
            // Each agent words a broken tool call its own way (kagent: a result holding
            // "error"; LangGraph: "Tool call failed"); none is a success.
            let failed = call.result.as_ref().is_none_or(|r| {
                let text = r.text.to_lowercase();
                r.is_error || text.contains("error") || text.contains("failed")
            });
            verdict.check(
                failed,
                format!(
                    "{tool}: the held call failed closed when its gate died (the agent got an \
                     error, not a result)"
                ),
            );
        }
    }
    verdict.check(
        park.listed_before_decision == Some(Listed::NotWaiting),
        format!(
            "{tool}: /pending listed the card, open with no caller waiting, when the reviewer \
             decided it (found: {})",
            match park.listed_before_decision {
                None => "not looked up",
                Some(Listed::Absent) => "not listed",
                Some(Listed::Waiting) => "a caller waiting",
                Some(Listed::NotWaiting) => "no caller waiting",
            }
        ),
    );
}

/// A retry that passes on the earlier approval: at once (no card of its own on `/events`),
/// under that approval (mock-db-mcp's audit), exactly once.
pub(super) fn passed_on_earlier(
    tool: &str,
    call: &SeenCall,
    observed: &Observed<'_>,
    verdict: &mut Verdict,
) {
    let Some(earlier) = &observed.earlier else {
        return;
    };
    verdict.check(
        earlier.card.is_some(),
        format!("{tool}: the gate's /events showed an earlier card of the same action approved"),
    );
    verdict.check(
        earlier.cards == 1,
        format!(
            "{tool}: one card for the action: the retry opened none of its own on /events \
             ({} card(s))",
            earlier.cards
        ),
    );
    if let Some(card) = earlier.card {
        verdict.check(
            earlier.approval.as_deref() == Some(&card.id),
            format!(
                "{tool}: mock-db-mcp ran it under the earlier approval {} (it ran under {})",
                card.id,
                earlier.approval.as_deref().unwrap_or("none")
            ),
        );
    }
    verdict.check(
        earlier.runs == 1,
        format!(
            "{tool} {} ran exactly once (mock-db-mcp's audit: {})",
            call.args, earlier.runs
        ),
    );
    verdict.check(
        call.result.as_ref().is_some_and(|r| !r.is_error),
        format!("{tool}: the retry's result reached the agent, not an error"),
    );
}

#[cfg(test)]
mod tests;
