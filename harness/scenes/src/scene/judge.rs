//! The judge: what a scene expects against what was observed, as checks and one row per
//! tool call. A pure function of the [`Observation`] — no processes, no clocks, no network —
//! so every rule is unit-tested on hand-made observations (`judge/tests.rs`).

use hitl_wire::{
    extauth::Outcome,
    mockdb::{AuditEntry, State, tools},
};
use serde_json::Value;

use super::{
    model::{ExpectedCall, HumanDecision, Scene, Tier},
    observation::{Observation, SeenCall, SeenPark},
    verdict::{CallRow, Decided, Verdict},
};

mod held;
mod unclaimed;

use unclaimed::Unclaimed;

/// Who the scene ran as, and on what.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    /// The chat user, whom the gate must have verified as the requester.
    pub user: &'a str,
    /// The agent runs on the scripted model: its wording and what it was told are checked.
    pub scripted: bool,
}

/// Judge `seen` against `scene`: the calls one by one, then what was left over, the
/// reviewer queue, the database, and (scripted model only) the words.
pub fn judge(scene: &Scene, seen: &Observation, standing: Standing<'_>) -> Verdict {
    let mut verdict = Verdict::default();
    verdict.calls = calls(scene, seen, standing.user, &mut verdict);
    for park in seen.parks.iter().filter(|p| p.unexpected) {
        verdict.check(
            false,
            format!(
                "the gateway parked {} {}, which the scene does not expect at the gateway",
                park.tool, park.args
            ),
        );
    }
    verdict.check(
        seen.still_pending == 0,
        format!(
            "the reviewer queue is empty at the end ({} left)",
            seen.still_pending
        ),
    );
    database(scene, &seen.state, &mut verdict);
    if standing.scripted {
        words(scene, seen, &mut verdict);
    }
    verdict
}

/// What one call went through, from the three sources.
struct Observed<'a> {
    /// None: gated by both tiers.
    tier: Option<Tier>,
    decision: Option<Decided>,
    ran: bool,
    park: Option<&'a SeenPark>,
    /// A call that passes on an earlier approval: what it passed on.
    earlier: Option<held::Earlier<'a>>,
    /// Who approved it, as mock-db-mcp's audit of its run names them.
    approved_by: Vec<String>,
}

/// Match what the agent called to what the scene expects, call by call.
fn calls(scene: &Scene, seen: &Observation, user: &str, verdict: &mut Verdict) -> Vec<CallRow> {
    let names = |it: &mut dyn Iterator<Item = &str>| it.collect::<Vec<_>>().join(", ");
    verdict.check(
        seen.calls.len() == scene.calls.len(),
        format!(
            "the agent made {} tool call(s) [{}]; the scene expects {} [{}]",
            seen.calls.len(),
            names(&mut seen.calls.iter().map(|c| c.tool.as_str())),
            scene.calls.len(),
            names(&mut scene.calls.iter().map(|c| c.tool.as_str())),
        ),
    );
    let executed = seen.executed();
    let mut parks = Unclaimed::new(&seen.parks);
    let mut audit = Unclaimed::new(&executed);
    let mut rows = Vec::new();
    for i in 0..seen.calls.len().max(scene.calls.len()) {
        let want = scene.calls.get(i);
        let Some(call) = seen.calls.get(i) else {
            let want = want.expect("one of the two exists");
            rows.push(never_called(want, verdict));
            continue;
        };
        let observed = observe(call, want, &seen.parks, &mut parks, &mut audit);
        rows.push(match want {
            Some(want) => expected_call(i, want, call, &observed, user, verdict),
            None => unexpected_call(call, &observed, verdict),
        });
    }
    for entry in audit.left() {
        verdict.check(
            false,
            format!(
                "{} {} reached the database, but the agent's stream never showed it",
                entry.tool, entry.args
            ),
        );
    }
    rows
}

/// The tier, decision and execution of `call`, claiming the park and audit entry it explains.
/// A call the scene expects to pass on an earlier approval claims no park of its own (a card
/// for it is left over, and judged unexpected); a call whose decision is put off while held
/// claims no audit entry (its caller was denied; what ran is the retry's).
fn observe<'a>(
    call: &SeenCall,
    want: Option<&ExpectedCall>,
    all_parks: &'a [SeenPark],
    parks: &mut Unclaimed<'a, SeenPark>,
    audit: &mut Unclaimed<'_, &AuditEntry>,
) -> Observed<'a> {
    if want.is_some_and(|w| w.decision == Some(HumanDecision::EarlierApproval)) {
        return held::on_earlier_approval(call, all_parks, audit);
    }
    // Tier 2: a park of the same tool with the same arguments.
    let park = parks.claim(|p| p.tool == call.tool && p.args == call.args);
    let tier = match (&call.tier1, park) {
        (Some(_), Some(_)) => None,
        (Some(_), None) => Some(Tier::Agent),
        (None, Some(_)) => Some(Tier::Gateway),
        (None, None) => Some(Tier::None),
    };
    let decision = match (&call.tier1, park) {
        (Some(d), _) => Some(Decided::tier1(d)),
        (None, Some(p)) => Some(Decided::tier2(p.outcome)),
        (None, None) => None,
    };
    // Execution: the audit log for mutations, the tool result for reads.
    let mut approved_by = Vec::new();
    let ran = if want.is_some_and(|w| w.while_held.is_some()) {
        false
    } else if call.tool == tools::CLUSTER_DB_QUERY {
        call.result.as_ref().is_some_and(|r| !r.is_error)
    } else {
        let entry = audit.claim(|e| e.tool == call.tool && e.args == call.args);
        if let Some(entry) = entry {
            approved_by.clone_from(&entry.approved_by);
        }
        entry.is_some()
    };
    Observed {
        tier,
        decision,
        ran,
        park,
        earlier: None,
        approved_by,
    }
}

/// Several keys (the approval policy's k-of-n): each approval but the last was counted while
/// the call still waited, and the run's audit names every approver, in turn.
fn keys(tool: &str, want: &ExpectedCall, observed: &Observed<'_>, verdict: &mut Verdict) {
    let k = want.approvers.len();
    let counted = observed.park.map_or(0, |p| p.counted);
    verdict.check(
        counted + 1 == k,
        format!(
            "{tool}: the call still waited after each of the first {} approvals (it did after \
             {counted})",
            k - 1
        ),
    );
    if want.executed {
        verdict.check(
            observed.approved_by == want.approvers,
            format!(
                "{tool}: mock-db-mcp's audit names its approvers {:?} (found {:?})",
                want.approvers, observed.approved_by
            ),
        );
    }
}

fn never_called(want: &ExpectedCall, verdict: &mut Verdict) -> CallRow {
    verdict.check(
        false,
        format!(
            "the agent never called {} (scene line {})",
            want.tool, want.line
        ),
    );
    CallRow {
        tool: want.tool.clone(),
        expected_tier: Some(want.tier),
        observed_tier: None,
        expected_decision: want.decision.as_ref().map(Decided::wanted),
        observed_decision: None,
        expected_executed: Some(want.executed),
        executed: None,
    }
}

fn unexpected_call(call: &SeenCall, observed: &Observed<'_>, verdict: &mut Verdict) -> CallRow {
    verdict.check(
        false,
        format!(
            "the agent called {} {}, which the scene does not expect",
            call.tool, call.args
        ),
    );
    CallRow {
        tool: call.tool.clone(),
        expected_tier: None,
        observed_tier: observed.tier,
        expected_decision: None,
        observed_decision: observed.decision,
        expected_executed: None,
        executed: Some(observed.ran),
    }
}

fn expected_call(
    i: usize,
    want: &ExpectedCall,
    call: &SeenCall,
    observed: &Observed<'_>,
    user: &str,
    verdict: &mut Verdict,
) -> CallRow {
    let tool = &call.tool;
    verdict.check(
        *tool == want.tool,
        format!("call {} is {} (scene line {})", i + 1, want.tool, want.line),
    );
    tier(tool, want.tier, observed, verdict);
    if let Some(decision) = &want.decision {
        decision_taken(tool, decision, observed, verdict);
    }
    if let Some(park) = observed.park {
        gateway(tool, call, park, user, verdict);
    }
    if let (Some(held), Some(park)) = (want.while_held, observed.park) {
        held::put_off(tool, held, call, park, verdict);
    }
    if want.decision == Some(HumanDecision::EarlierApproval) {
        held::passed_on_earlier(tool, call, observed, verdict);
    }
    if !want.approvers.is_empty() {
        keys(tool, want, observed, verdict);
    }
    verdict.check(
        observed.ran == want.executed,
        if want.executed {
            format!("{tool} reached the database")
        } else {
            format!("{tool} did not reach the database")
        },
    );
    CallRow {
        tool: tool.clone(),
        expected_tier: Some(want.tier),
        observed_tier: observed.tier,
        expected_decision: want.decision.as_ref().map(Decided::wanted),
        observed_decision: observed.decision,
        expected_executed: Some(want.executed),
        executed: Some(observed.ran),
    }
}

/// The call was stopped by the tier the scene names, and by no other.
fn tier(tool: &str, want: Tier, observed: &Observed<'_>, verdict: &mut Verdict) {
    match observed.tier {
        None => verdict.check(
            false,
            format!(
                "{tool} was gated twice (agent and gateway); the scene expects {}",
                want.as_str()
            ),
        ),
        Some(t) if t == want => {
            verdict.check(true, format!("{tool} was gated by tier {}", want.as_str()))
        }
        Some(Tier::None) if observed.ran => verdict.check(
            false,
            format!(
                "{tool} executed without {} {} approval",
                if want == Tier::Agent { "an" } else { "a" },
                want.as_str()
            ),
        ),
        Some(t) => verdict.check(
            false,
            format!(
                "{tool} was gated by tier {}, the scene expects tier {}",
                t.as_str(),
                want.as_str()
            ),
        ),
    }
}

/// The human's decision is the one the scene names, with its reason kept verbatim.
fn decision_taken(
    tool: &str,
    decision: &HumanDecision,
    observed: &Observed<'_>,
    verdict: &mut Verdict,
) {
    let wanted = Decided::wanted(decision);
    verdict.check(
        observed.decision == Some(wanted),
        format!(
            "{tool}: the decision was {} (observed {})",
            wanted.as_str(),
            observed.decision.map_or("none", Decided::as_str)
        ),
    );
    if let (HumanDecision::Reject { reason }, Some(park)) = (decision, observed.park) {
        verdict.check(
            park.reason == *reason,
            format!("{tool}: the gateway recorded the reviewer's reason verbatim"),
        );
    }
}

/// A parked call: the gate verified the chat user, and a denial reached the agent.
fn gateway(tool: &str, call: &SeenCall, park: &SeenPark, user: &str, verdict: &mut Verdict) {
    verdict.check(
        park.requester
            .as_deref()
            .is_some_and(|r| hitl_wire::identity::same_person(r, user)),
        format!(
            "{tool}: the gate's requester is {user}, verified from the chat user's token (got {})",
            park.requester.as_deref().unwrap_or("none")
        ),
    );
    if matches!(park.outcome, Some(Outcome::Rejected | Outcome::Expired)) {
        let reached = call
            .result
            .as_ref()
            .is_some_and(|r| r.is_error && r.text.contains(&park.reason));
        verdict.check(
            reached,
            format!("{tool}: the gateway's denial reached the agent as an error with its reason"),
        );
    }
}

/// The schema version and row counts the scene expects.
fn database(scene: &Scene, state: &State, verdict: &mut Verdict) {
    if let Some(version) = &scene.expect.schema_version {
        verdict.check(
            state.schema_version == *version,
            format!("the schema is {version} (it is {})", state.schema_version),
        );
    }
    for (table, want) in &scene.expect.row_counts {
        let got = state.row_counts.get(table);
        verdict.check(
            got == Some(want),
            format!(
                "{table} has {want} row(s) (it has {})",
                got.map_or("no such table".to_owned(), u64::to_string)
            ),
        );
    }
}

/// The agent's reply and what reached the model (scripted model only).
fn words(scene: &Scene, seen: &Observation, verdict: &mut Verdict) {
    for text in &scene.expect.reply_contains {
        verdict.check(
            seen.reply.contains(text.as_str()),
            format!("the agent's reply contains {text:?}"),
        );
    }
    let Some(log) = &seen.model_log else {
        return;
    };
    for text in &scene.expect.model_saw {
        // The log is JSON: look for the text as JSON writes it.
        let escaped = Value::String(text.clone()).to_string();
        verdict.check(
            log.contains(escaped.trim_matches('"')),
            format!("the model was told {text:?}"),
        );
    }
}

#[cfg(test)]
mod tests;
