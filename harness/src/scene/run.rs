//! Replaying one scene against a running lab and checking every gate.
//!
//! Each tier is observed from its own source, never inferred from another: tier 1 from the
//! agent's A2A stream, tier 2 from hitl-extauth's `/events`, execution from mock-db-mcp's
//! audit log, the database from `/state`, what the model saw from the scripted model's log.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use hitl_wire::{
    extauth::{
        DecideRequest, Event, Outcome,
        client::{AdminClient, AdminError},
    },
    headers,
    mockdb::{AuditEntry, State, tools},
};
use serde::Serialize;
use serde_json::Value;

use super::{
    model::{ExpectedCall, HumanDecision, Scene, Tier},
    transcript::{Line, LiveSink, Recorder, Who},
};
use crate::{
    a2a::{
        A2aError, Chat, Client, TurnEvent, TurnOutcome,
        hitl::{self, Activity, Decision, Pause},
    },
    agents::AgentKind,
    clients::Db,
    components::scripted_model,
    lab::LabState,
};

/// How to run scenes.
#[derive(Clone)]
pub struct RunOptions {
    /// Which of the lab's agents the chat user talks to.
    pub agent: AgentKind,
    /// The agent runs on the scripted model: load each scene's script, check its wording.
    pub scripted: bool,
    /// The chat user (proven with a token from the lab's issuer; also sent as `x-user-id`).
    pub user: String,
    /// The platform reviewer deciding at the gateway.
    pub reviewer: String,
    /// Longest a single agent turn may take (a gateway park included).
    pub turn_timeout: Duration,
    /// Print transcript lines as they happen.
    pub live: Option<LiveSink>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("agent", &self.agent)
            .field("scripted", &self.scripted)
            .field("user", &self.user)
            .field("reviewer", &self.reviewer)
            .finish_non_exhaustive()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            agent: AgentKind::Declarative,
            scripted: true,
            user: "alice".into(),
            reviewer: "platform-reviewer".into(),
            turn_timeout: Duration::from_secs(180),
            live: None,
        }
    }
}

/// One check the harness made, passed or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub passed: bool,
    pub what: String,
}

/// One tool call as expected and as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRow {
    pub tool: String,
    pub expected_tier: Option<Tier>,
    pub observed_tier: Option<Tier>,
    pub expected_decision: Option<String>,
    pub observed_decision: Option<String>,
    pub expected_executed: Option<bool>,
    pub executed: Option<bool>,
}

/// The outcome of one scene.
#[derive(Debug, Clone, Serialize)]
pub struct SceneReport {
    pub id: u32,
    /// The agent the scene ran against.
    pub agent: AgentKind,
    pub name: String,
    pub file: String,
    pub passed: bool,
    pub duration_ms: u64,
    pub checks: Vec<Check>,
    pub calls: Vec<CallRow>,
    pub transcript: Vec<Line>,
}

impl SceneReport {
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// A tool call the agent made, as seen on its A2A stream.
#[derive(Debug, Clone)]
struct SeenCall {
    id: String,
    tool: String,
    args: Value,
    /// The chat user's decision, if the agent paused the call (tier 1).
    tier1: Option<Decision>,
    result: Option<(String, bool)>,
}

/// A call parked at the gateway, as seen on `/events`.
#[derive(Debug, Clone)]
struct SeenPark {
    id: String,
    tool: String,
    args: Value,
    requester: Option<String>,
    outcome: Option<Outcome>,
    reason: String,
    /// The scene did not expect this park (the reviewer rejected it).
    unexpected: bool,
}

/// Replay `scene` against `lab`. Never panics on a misbehaving lab: every problem becomes a
/// failed check in the report.
pub async fn run(lab: &LabState, scene: &Scene, options: &RunOptions) -> SceneReport {
    let started = Instant::now();
    let rec = Recorder::new(options.live.clone());
    let mut checks = Vec::new();
    let calls = match replay(lab, scene, options, &rec, &mut checks).await {
        Ok(calls) => calls,
        Err(e) => {
            let what = format!("the scene could not run to its end: {e:#}");
            rec.say(Who::Check, format!("FAIL {what}"));
            checks.push(Check {
                passed: false,
                what,
            });
            Vec::new()
        }
    };
    SceneReport {
        id: scene.id,
        agent: options.agent,
        name: scene.name.clone(),
        file: scene.file.clone(),
        passed: checks.iter().all(|c| c.passed),
        duration_ms: started.elapsed().as_millis() as u64,
        checks,
        calls,
        transcript: rec.lines(),
    }
}

async fn replay(
    lab: &LabState,
    scene: &Scene,
    options: &RunOptions,
    rec: &Recorder,
    checks: &mut Vec<Check>,
) -> anyhow::Result<Vec<CallRow>> {
    let db = Db::new(&lab.urls.mock_db);
    let gate = lab.gate_admin()?;

    // Fresh state: seed data, empty reviewer queue, the scene's script.
    let baseline = db.reset().await?;
    let baseline_seq = baseline.audit.last().map_or(0, |e| e.seq);
    let pending = gate.pending().await?.pending;
    anyhow::ensure!(
        pending.is_empty(),
        "the reviewer queue is not empty before the scene ({} parked call(s)); decide them in \
         hitl-ui or restart the lab",
        pending.len()
    );
    let model = match (&lab.urls.scripted_model, options.scripted) {
        (Some(url), true) => {
            let control = scripted_model::Control::new(url);
            control.load(&scene.script).await?;
            Some(control)
        }
        (None, true) => anyhow::bail!(
            "the lab's agent does not use the scripted model; run with the model it uses \
             (`--model …`) so the checks stay on gates and the database"
        ),
        _ => None,
    };

    // Tier 2 is observed on hitl-extauth's event stream, by a reviewer working alongside.
    let events = gate.events().await?;
    let parks: Arc<Mutex<Vec<SeenPark>>> = Arc::default();
    let plan: VecDeque<(String, HumanDecision)> = scene
        .calls
        .iter()
        .filter(|c| c.tier == Tier::Gateway)
        .filter_map(|c| c.decision.clone().map(|d| (c.tool.clone(), d)))
        .collect();
    let reviewer = tokio::spawn(review(
        gate.clone(),
        events,
        plan,
        options.reviewer.clone(),
        rec.clone(),
        parks.clone(),
        scene.id,
    ));

    let conversation = converse(lab, scene, options, rec).await;
    // Every park ends before the agent's call returns; give the last events a moment to land.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline
        && parks
            .lock()
            .expect("parks")
            .iter()
            .any(|p| p.outcome.is_none())
    {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    reviewer.abort();
    let (seen, reply) = conversation?;
    let parks = parks.lock().expect("parks").clone();

    let state = db.state().await?;
    let executed: Vec<&AuditEntry> = state
        .audit
        .iter()
        .filter(|e| e.seq > baseline_seq && e.tool != tools::RESET && e.executed())
        .collect();
    for refused in state
        .audit
        .iter()
        .filter(|e| e.seq > baseline_seq && !e.executed())
    {
        rec.say(
            Who::Database,
            format!(
                "{} {} refused: {}",
                refused.tool, refused.args, refused.detail
            ),
        );
    }
    for entry in &executed {
        let who = entry
            .caller
            .get(headers::USER_ID)
            .map(|u| format!(" for {u}"))
            .unwrap_or_default();
        rec.say(
            Who::Database,
            format!("{} {} ran{who}: {}", entry.tool, entry.args, entry.detail),
        );
    }

    let mut check = |passed: bool, what: String| {
        if !passed {
            rec.say(Who::Check, format!("FAIL {what}"));
        }
        checks.push(Check { passed, what });
    };
    let rows = check_calls(scene, &seen, &parks, &executed, &options.user, &mut check);

    for park in parks.iter().filter(|p| p.unexpected) {
        check(
            false,
            format!(
                "the gateway parked {} {}, which the scene does not expect at the gateway",
                park.tool, park.args
            ),
        );
    }
    let still = gate.pending().await?.pending;
    check(
        still.is_empty(),
        format!(
            "the reviewer queue is empty at the end ({} left)",
            still.len()
        ),
    );
    check_state(scene, &state, &mut check);
    if options.scripted {
        for text in &scene.expect.reply_contains {
            check(
                reply.contains(text.as_str()),
                format!("the agent's reply contains {text:?}"),
            );
        }
        if let Some(model) = model {
            let seen_by_model = model.requests().await?;
            let all = serde_json::to_string(&seen_by_model)?;
            for text in &scene.expect.model_saw {
                let escaped = serde_json::to_string(text)?;
                let escaped = escaped.trim_matches('"');
                check(
                    all.contains(escaped),
                    format!("the model was told {text:?}"),
                );
            }
        }
    }
    Ok(rows)
}

/// An A2A client for the lab's agent, as `user`: proven with a token from the lab's issuer
/// (`Authorization`), and claimed as `x-user-id` the way a chat front end would send it.
pub fn chat_client(lab: &LabState, agent: AgentKind, user: &str) -> anyhow::Result<Client> {
    let client = Client::new(lab.agent_url(agent)?).with_header(headers::USER_ID, user);
    Ok(match lab.requester_issuer()? {
        Some(issuer) => client.with_requester(std::sync::Arc::new(issuer), user),
        None => {
            tracing::warn!(
                "the lab has no requester key: the chat user's calls carry no proof, and the \
                 gate refuses every gated call"
            );
            client
        }
    })
}

/// The chat user's side: the prompts, tier-1 decisions and answers, as the scene says.
async fn converse(
    lab: &LabState,
    scene: &Scene,
    options: &RunOptions,
    rec: &Recorder,
) -> anyhow::Result<(Vec<SeenCall>, String)> {
    let client = chat_client(lab, options.agent, &options.user)?;
    let mut chat = Chat::new(client);
    let mut seen: Vec<SeenCall> = Vec::new();
    let mut reply = String::new();
    let mut answers: VecDeque<&String> = scene.answers.iter().collect();
    let mut expected = scene.calls.iter();

    for prompt in &scene.prompts {
        rec.say(Who::User, prompt.clone());
        let mut outcome = turn(options, chat.say(prompt, live(rec))).await?;
        loop {
            absorb(&outcome, &mut seen, &mut reply);
            match outcome.pause.take() {
                Some(Pause::Approval(requests)) => {
                    let request = &requests[0];
                    rec.say(
                        Who::Tier1,
                        format!(
                            "the agent paused {} {} for the chat user's approval",
                            request.tool, request.args
                        ),
                    );
                    let want = expected.find(|c| c.tool == request.tool);
                    let decision = tier1_decision(want, &request.tool);
                    match &decision {
                        Decision::Approve => rec.say(Who::ChatUser, "approves"),
                        Decision::Reject { reason } => {
                            rec.say(Who::ChatUser, format!("rejects: {reason}"))
                        }
                    }
                    if let Some(call) = seen.iter_mut().rev().find(|c| c.id == request.tool_call_id)
                    {
                        call.tier1 = Some(decision.clone());
                    }
                    outcome = match turn(options, chat.decide(request, &decision, live(rec))).await
                    {
                        Err(TurnError::A2a(A2aError::DecisionNotTaken(e))) => {
                            anyhow::bail!("tier 1: {e}")
                        }
                        other => other?,
                    };
                }
                Some(Pause::Question(question)) => {
                    let asked: Vec<&str> = question
                        .questions
                        .iter()
                        .map(|q| q.question.as_str())
                        .collect();
                    rec.say(Who::Agent, format!("asks: {}", asked.join(" / ")));
                    let Some(answer) = answers.pop_front() else {
                        anyhow::bail!(
                            "the agent asked {asked:?}, but the scene has no answer left (add \
                             one to `answers`)"
                        );
                    };
                    rec.say(Who::ChatUser, format!("answers: {answer}"));
                    outcome = turn(
                        options,
                        chat.answer(std::slice::from_ref(answer), live(rec)),
                    )
                    .await?;
                }
                None => break,
            }
        }
        if outcome.state == crate::a2a::types::TaskState::InputRequired {
            anyhow::bail!("the agent waits for input the harness does not understand");
        }
    }
    if !answers.is_empty() {
        anyhow::bail!(
            "the agent never asked for {} of the scene's answers",
            answers.len()
        );
    }
    Ok((seen, reply))
}

/// What the chat user decides for a tier-1 pause: what the scene says, or — for a pause the
/// scene does not expect at tier 1 — a rejection, so nothing unexpected runs.
fn tier1_decision(want: Option<&ExpectedCall>, tool: &str) -> Decision {
    match want {
        Some(ExpectedCall {
            tier: Tier::Agent,
            decision: Some(HumanDecision::Approve),
            ..
        }) => Decision::Approve,
        Some(ExpectedCall {
            tier: Tier::Agent,
            decision: Some(HumanDecision::Reject { reason }),
            ..
        }) => Decision::Reject {
            reason: reason.clone(),
        },
        _ => Decision::Reject {
            reason: format!("hitl-lab: the scene does not expect {tool} to pause at tier 1"),
        },
    }
}

#[derive(Debug, thiserror::Error)]
enum TurnError {
    #[error(transparent)]
    A2a(#[from] A2aError),
    #[error("the agent did not finish its turn within {0:?}")]
    Timeout(Duration),
}

async fn turn(
    options: &RunOptions,
    fut: impl Future<Output = Result<TurnOutcome, A2aError>>,
) -> Result<TurnOutcome, TurnError> {
    match tokio::time::timeout(options.turn_timeout, fut).await {
        Ok(outcome) => Ok(outcome?),
        Err(_) => Err(TurnError::Timeout(options.turn_timeout)),
    }
}

/// Print the agent's activity as it happens.
fn live(rec: &Recorder) -> impl FnMut(&TurnEvent) + use<> {
    let rec = rec.clone();
    move |event| match event {
        TurnEvent::Activity(Activity::Call { tool, args, .. }) => {
            rec.say(Who::Agent, format!("calls {tool} {args}"))
        }
        TurnEvent::Activity(Activity::Result {
            tool,
            text,
            is_error,
            ..
        }) => rec.say(
            Who::Agent,
            format!(
                "{tool} {}: {}",
                if *is_error { "failed" } else { "returned" },
                one_line(text, 240)
            ),
        ),
        TurnEvent::Said(text) => rec.say(Who::Agent, format!("says: {}", one_line(text, 400))),
        TurnEvent::State(_) | TurnEvent::Paused(_) => {}
    }
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}

fn absorb(outcome: &TurnOutcome, seen: &mut Vec<SeenCall>, reply: &mut String) {
    for activity in &outcome.activities {
        match activity {
            Activity::Call { id, tool, args } if tool != hitl::ASK_USER => {
                if !seen.iter().any(|c| c.id == *id) {
                    seen.push(SeenCall {
                        id: id.clone(),
                        tool: tool.clone(),
                        args: args.clone(),
                        tier1: None,
                        result: None,
                    });
                }
            }
            Activity::Result {
                id, text, is_error, ..
            } => {
                if let Some(call) = seen.iter_mut().find(|c| c.id == *id) {
                    call.result = Some((text.clone(), *is_error));
                }
            }
            Activity::Call { .. } => {}
        }
    }
    if !outcome.text.is_empty() {
        if !reply.is_empty() {
            reply.push('\n');
        }
        reply.push_str(&outcome.text);
    }
}

/// The platform reviewer: decides each park as the scene says, in order, and records what
/// the gateway reports.
async fn review(
    gate: AdminClient,
    events: impl futures::Stream<Item = Result<Event, AdminError>>,
    mut plan: VecDeque<(String, HumanDecision)>,
    reviewer: String,
    rec: Recorder,
    parks: Arc<Mutex<Vec<SeenPark>>>,
    scene: u32,
) {
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                rec.say(Who::Check, format!("FAIL hitl-extauth event stream: {e:#}"));
                return;
            }
        };
        match event {
            Event::Parked { call } => {
                if parks.lock().expect("parks").iter().any(|p| p.id == call.id) {
                    continue;
                }
                rec.say(
                    Who::Tier2,
                    format!(
                        "the gateway parked {} {} from {} (request sha256 {})",
                        call.tool_name,
                        call.tool_args,
                        match (&call.requester, &call.claimed_requester) {
                            (Some(verified), _) => format!("{verified} (verified)"),
                            (None, Some(claimed)) => format!("{claimed} (UNVERIFIED)"),
                            (None, None) => "an unverified caller".to_owned(),
                        },
                        call.body_sha256
                    ),
                );
                let decision = match plan.front() {
                    Some((tool, _)) if *tool == call.tool_name => plan.pop_front().map(|(_, d)| d),
                    _ => None,
                };
                parks.lock().expect("parks").push(SeenPark {
                    id: call.id.clone(),
                    tool: call.tool_name.clone(),
                    args: call.tool_args.clone(),
                    requester: call.requester.clone(),
                    outcome: None,
                    reason: String::new(),
                    unexpected: decision.is_none(),
                });
                let request = match decision {
                    Some(HumanDecision::Approve) => {
                        rec.say(Who::Reviewer, format!("{reviewer} approves"));
                        DecideRequest {
                            approved: true,
                            reason: String::new(),
                            reviewer: Some(reviewer.clone()),
                        }
                    }
                    Some(HumanDecision::Reject { reason }) => {
                        rec.say(Who::Reviewer, format!("{reviewer} rejects: {reason}"));
                        DecideRequest {
                            approved: false,
                            reason,
                            reviewer: Some(reviewer.clone()),
                        }
                    }
                    Some(HumanDecision::Timeout) => {
                        rec.say(Who::Reviewer, "nobody decides; the park will time out");
                        continue;
                    }
                    None => {
                        let reason =
                            format!("hitl-lab: scene {scene} does not expect this call here");
                        rec.say(Who::Reviewer, format!("{reviewer} rejects: {reason}"));
                        DecideRequest {
                            approved: false,
                            reason,
                            reviewer: Some(reviewer.clone()),
                        }
                    }
                };
                if let Err(e) = gate.decide(&call.id, &request).await {
                    rec.say(Who::Check, format!("FAIL deciding {}: {e:#}", call.id));
                }
            }
            Event::Decided { record } | Event::Expired { record } | Event::Abandoned { record } => {
                let mut parks = parks.lock().expect("parks");
                if let Some(park) = parks.iter_mut().find(|p| p.id == record.call.id) {
                    park.outcome = Some(record.outcome);
                    park.reason = record.reason.clone();
                }
                drop(parks);
                let detail = match record.outcome {
                    Outcome::Approved => "released the call upstream".to_owned(),
                    other => format!("denied the call ({}): {}", other.as_str(), record.reason),
                };
                rec.say(
                    Who::Tier2,
                    format!("the gateway {detail} after {} ms", record.waited_ms),
                );
            }
        }
    }
}

fn decision_name(d: &HumanDecision) -> String {
    d.as_str().to_owned()
}

fn tier1_name(d: &Decision) -> String {
    match d {
        Decision::Approve => "approve".into(),
        Decision::Reject { .. } => "reject".into(),
    }
}

fn outcome_name(o: Option<Outcome>) -> String {
    match o {
        Some(Outcome::Approved) => "approve".into(),
        Some(Outcome::Rejected) => "reject".into(),
        Some(Outcome::Expired) => "timeout".into(),
        Some(other) => other.as_str().into(),
        None => "undecided".into(),
    }
}

/// Match what the agent called to what the scene expects, call by call.
fn check_calls(
    scene: &Scene,
    seen: &[SeenCall],
    parks: &[SeenPark],
    executed: &[&AuditEntry],
    user: &str,
    check: &mut impl FnMut(bool, String),
) -> Vec<CallRow> {
    let names = |it: &mut dyn Iterator<Item = &str>| it.collect::<Vec<_>>().join(", ");
    check(
        seen.len() == scene.calls.len(),
        format!(
            "the agent made {} tool call(s) [{}]; the scene expects {} [{}]",
            seen.len(),
            names(&mut seen.iter().map(|c| c.tool.as_str())),
            scene.calls.len(),
            names(&mut scene.calls.iter().map(|c| c.tool.as_str())),
        ),
    );
    let mut used_parks = vec![false; parks.len()];
    let mut used_audit = vec![false; executed.len()];
    let mut rows = Vec::new();
    for i in 0..seen.len().max(scene.calls.len()) {
        let want = scene.calls.get(i);
        let Some(call) = seen.get(i) else {
            let want = want.expect("one of the two exists");
            check(
                false,
                format!(
                    "the agent never called {} (scene line {})",
                    want.tool, want.line
                ),
            );
            rows.push(CallRow {
                tool: want.tool.clone(),
                expected_tier: Some(want.tier),
                observed_tier: None,
                expected_decision: want.decision.as_ref().map(decision_name),
                observed_decision: None,
                expected_executed: Some(want.executed),
                executed: None,
            });
            continue;
        };

        // Tier 2: a park of the same tool with the same arguments.
        let park = parks
            .iter()
            .enumerate()
            .find(|(j, p)| !used_parks[*j] && p.tool == call.tool && p.args == call.args);
        if let Some((j, _)) = park {
            used_parks[j] = true;
        }
        let park = park.map(|(_, p)| p);
        let observed_tier = match (&call.tier1, park) {
            (Some(_), Some(_)) => None, // both: reported below
            (Some(_), None) => Some(Tier::Agent),
            (None, Some(_)) => Some(Tier::Gateway),
            (None, None) => Some(Tier::None),
        };
        let observed_decision = match (&call.tier1, park) {
            (Some(d), _) => Some(tier1_name(d)),
            (None, Some(p)) => Some(outcome_name(p.outcome)),
            _ => None,
        };

        // Execution: the audit log for mutations, the tool result for reads.
        let ran = if call.tool == tools::CLUSTER_DB_QUERY {
            matches!(call.result, Some((_, false)))
        } else {
            let hit = executed
                .iter()
                .enumerate()
                .find(|(k, e)| !used_audit[*k] && e.tool == call.tool && e.args == call.args);
            if let Some((k, _)) = hit {
                used_audit[k] = true;
            }
            hit.is_some()
        };

        let Some(want) = want else {
            check(
                false,
                format!(
                    "the agent called {} {}, which the scene does not expect",
                    call.tool, call.args
                ),
            );
            rows.push(CallRow {
                tool: call.tool.clone(),
                expected_tier: None,
                observed_tier,
                expected_decision: None,
                observed_decision,
                expected_executed: None,
                executed: Some(ran),
            });
            continue;
        };
        let tool = &call.tool;
        check(
            *tool == want.tool,
            format!("call {} is {} (scene line {})", i + 1, want.tool, want.line),
        );
        match observed_tier {
            None => check(
                false,
                format!(
                    "{tool} was gated twice (agent and gateway); the scene expects {}",
                    want.tier.as_str()
                ),
            ),
            Some(t) if t == want.tier => check(
                true,
                format!("{tool} was gated by tier {}", want.tier.as_str()),
            ),
            Some(Tier::None) if ran => check(
                false,
                format!(
                    "{tool} executed without {} {} approval",
                    if want.tier == Tier::Agent { "an" } else { "a" },
                    want.tier.as_str()
                ),
            ),
            Some(t) => check(
                false,
                format!(
                    "{tool} was gated by tier {}, the scene expects tier {}",
                    t.as_str(),
                    want.tier.as_str()
                ),
            ),
        }
        if let Some(decision) = &want.decision {
            check(
                observed_decision.as_deref() == Some(decision.as_str()),
                format!(
                    "{tool}: the decision was {} (observed {})",
                    decision.as_str(),
                    observed_decision.as_deref().unwrap_or("none")
                ),
            );
            if let (HumanDecision::Reject { reason }, Some(park)) = (decision, park) {
                check(
                    park.reason == *reason,
                    format!("{tool}: the gateway recorded the reviewer's reason verbatim"),
                );
            }
        }
        if let Some(park) = park {
            check(
                park.requester
                    .as_deref()
                    .is_some_and(|r| hitl_wire::identity::same_person(r, user)),
                format!(
                    "{tool}: the gate's requester is {user}, verified from the chat user's token \
                     (got {})",
                    park.requester.as_deref().unwrap_or("none")
                ),
            );
            if matches!(park.outcome, Some(Outcome::Rejected | Outcome::Expired)) {
                let reached = call
                    .result
                    .as_ref()
                    .is_some_and(|(text, is_error)| *is_error && text.contains(&park.reason));
                check(
                    reached,
                    format!(
                        "{tool}: the gateway's denial reached the agent as an error with its reason"
                    ),
                );
            }
        }
        check(
            ran == want.executed,
            if want.executed {
                format!("{tool} reached the database")
            } else {
                format!("{tool} did not reach the database")
            },
        );
        rows.push(CallRow {
            tool: tool.clone(),
            expected_tier: Some(want.tier),
            observed_tier,
            expected_decision: want.decision.as_ref().map(decision_name),
            observed_decision,
            expected_executed: Some(want.executed),
            executed: Some(ran),
        });
    }
    for (k, entry) in executed.iter().enumerate() {
        if !used_audit[k] {
            check(
                false,
                format!(
                    "{} {} reached the database, but the agent's stream never showed it",
                    entry.tool, entry.args
                ),
            );
        }
    }
    rows
}

fn check_state(scene: &Scene, state: &State, check: &mut impl FnMut(bool, String)) {
    if let Some(version) = &scene.expect.schema_version {
        check(
            state.schema_version == *version,
            format!("the schema is {version} (it is {})", state.schema_version),
        );
    }
    for (table, want) in &scene.expect.row_counts {
        let got = state.row_counts.get(table);
        check(
            got == Some(want),
            format!(
                "{table} has {want} row(s) (it has {})",
                got.map_or("no such table".to_owned(), u64::to_string)
            ),
        );
    }
}
