//! Replaying one scene against a running lab: fresh state, then the chat user and the
//! reviewer at work side by side, then what the database and the model saw, then the judge.
//!
//! Each tier is observed from its own source, never inferred from another: tier 1 from the
//! agent's A2A stream ([`chat_user`](super::chat_user)), tier 2 from hitl-extauth's `/events`
//! ([`reviewer`](super::reviewer)), execution from mock-db-mcp's audit log, the database from
//! `/state`, what the model saw from the scripted model's log.

use std::time::{Duration, Instant};

use hitl_wire::{extauth::client::AdminClient, headers};

use super::{
    chat_user,
    judge::{self, Standing},
    model::Scene,
    model::WhileHeld,
    observation::Observation,
    report::SceneReport,
    reviewer::{self, Desk, RestartGate, Reviewer},
    transcript::{LiveSink, Recorder, Who},
    verdict::{Check, Verdict},
};
use hitl_lab::{agents::AgentKind, clients::Db, components::scripted_model, lab::LabState};
use hitl_manifests::ModelChoice;

pub use super::chat_user::chat_client;

/// Longest one request to the lab's services may take (the reset, the queue, the state, the
/// model's log; a decision).
pub const LAB_CALL_LIMIT: Duration = Duration::from_secs(30);

/// `fut`, a request to the lab about `what`, within [`LAB_CALL_LIMIT`].
pub async fn within<T, E>(what: &str, fut: impl Future<Output = Result<T, E>>) -> anyhow::Result<T>
where
    anyhow::Error: From<E>,
{
    match tokio::time::timeout(LAB_CALL_LIMIT, fut).await {
        Ok(result) => Ok(result?),
        Err(_) => anyhow::bail!("{what} did not answer within {LAB_CALL_LIMIT:?}"),
    }
}

/// How to run scenes.
#[derive(Clone)]
pub struct RunOptions {
    /// Which of the lab's agents the chat user talks to.
    pub agent: AgentKind,
    /// The model behind the agent: on the scripted model each scene's script is loaded and
    /// its wording checked.
    pub model: ModelChoice,
    /// The chat user (proven with a token from the lab's issuer; also sent as `x-user-id`).
    pub user: String,
    /// The platform reviewer deciding at the gateway.
    pub reviewer: String,
    /// Longest a single agent turn may take (a gateway park included).
    pub turn_timeout: Duration,
    /// Print transcript lines as they happen.
    pub live: Option<LiveSink>,
    /// How the lab kills and brings back its gate (scene 8); none: such scenes fail, saying so.
    pub restart_gate: Option<RestartGate>,
}

impl RunOptions {
    /// The agent runs on the scripted model.
    pub fn scripted(&self) -> bool {
        self.model == ModelChoice::Scripted
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("agent", &self.agent)
            .field("model", &self.model)
            .field("user", &self.user)
            .field("reviewer", &self.reviewer)
            .finish_non_exhaustive()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            agent: AgentKind::Declarative,
            model: ModelChoice::Scripted,
            user: "alice".into(),
            reviewer: "platform-reviewer".into(),
            turn_timeout: Duration::from_secs(180),
            live: None,
            restart_gate: None,
        }
    }
}

/// Replay `scene` against `lab`. Never panics on a misbehaving lab: every problem becomes a
/// failed check in the report.
pub async fn run(lab: &LabState, scene: &Scene, options: &RunOptions) -> SceneReport {
    let started = Instant::now();
    let rec = Recorder::new(options.live.clone());
    let verdict = match replay(lab, scene, options, &rec).await {
        Ok(seen) => judge::judge(
            scene,
            &seen,
            Standing {
                user: &options.user,
                scripted: options.scripted(),
            },
        ),
        Err(e) => Verdict {
            checks: vec![Check {
                passed: false,
                what: format!("the scene could not run to its end: {e:#}"),
            }],
            calls: Vec::new(),
        },
    };
    for failure in verdict.failures() {
        rec.say(Who::Check, format!("FAIL {}", failure.what));
    }
    SceneReport {
        id: scene.id,
        agent: options.agent,
        name: scene.name.clone(),
        file: scene.file.clone(),
        passed: verdict.checks.iter().all(|c| c.passed),
        duration_ms: started.elapsed().as_millis() as u64,
        checks: verdict.checks,
        calls: verdict.calls,
        transcript: rec.lines(),
    }
}

/// Everything the scene's run leaves to observe.
async fn replay(
    lab: &LabState,
    scene: &Scene,
    options: &RunOptions,
    rec: &Recorder,
) -> anyhow::Result<Observation> {
    let db = lab.db();
    let gate = lab.gate_admin()?;
    let (baseline_seq, model) = fresh_state(lab, &db, &gate, scene, options).await?;

    // Tier 2 is observed on hitl-extauth's event stream, by a reviewer working alongside.
    let desk = Desk {
        gate: gate.clone(),
        reviewer: options.reviewer.clone(),
        rec: rec.clone(),
        scene: scene.id,
        restart_gate: options.restart_gate.clone(),
    };
    let events = within("hitl-extauth /events", gate.events()).await?;
    let reviewer = Reviewer::start(desk, scene, events);
    let options = &RunOptions {
        turn_timeout: turn_timeout(lab, scene, options.turn_timeout),
        ..options.clone()
    };
    let conversation = chat_user::converse(lab, scene, options, rec, &reviewer).await;
    let parks = reviewer.finish(reviewer::CLOSING_GRACE).await;
    let conversation = conversation?;

    let state = within("mock-db-mcp /state", db.state()).await?;
    let still_pending = within("hitl-extauth /pending", gate.pending()).await?;
    let model_log = match model {
        Some(model) => {
            let requests = within("the scripted model's log", model.requests()).await?;
            Some(serde_json::to_string(&requests)?)
        }
        None => None,
    };
    let seen = Observation {
        calls: conversation.calls,
        reply: conversation.reply,
        parks,
        state,
        baseline_seq,
        still_pending: still_pending.pending.len(),
        model_log,
    };
    record_database(&seen, rec);
    Ok(seen)
}

/// How long one agent turn may take: `base`, or, when the scene's reviewer waits for the
/// gate's hold to run out, that hold and a minute more.
fn turn_timeout(lab: &LabState, scene: &Scene, base: Duration) -> Duration {
    let waits_out = scene
        .calls
        .iter()
        .any(|c| c.while_held == Some(WhileHeld::HoldRunsOut));
    match lab.park_timeout_sec {
        Some(hold) if waits_out => base.max(Duration::from_secs(hold + 60)),
        _ => base,
    }
}

/// Seed data, an empty reviewer queue, the scene's script (scripted model only): the last
/// audit entry before the scene, and the scripted model's control.
async fn fresh_state(
    lab: &LabState,
    db: &Db,
    gate: &AdminClient,
    scene: &Scene,
    options: &RunOptions,
) -> anyhow::Result<(u64, Option<scripted_model::Control>)> {
    let baseline = within("mock-db-mcp /reset", db.reset()).await?;
    let baseline_seq = baseline.audit.last().map_or(0, |e| e.seq);
    let pending = within("hitl-extauth /pending", gate.pending())
        .await?
        .pending;
    anyhow::ensure!(
        pending.is_empty(),
        "the reviewer queue is not empty before the scene ({} open approval request(s)); decide \
         them in hitl-ui, or start a new lab run with an empty queue (`cargo xtask down`, then \
         `cargo xtask up --local`)",
        pending.len()
    );
    let model = match (&lab.urls.scripted_model, options.scripted()) {
        (Some(url), true) => {
            let control = scripted_model::Control::new(url);
            within("the scripted model", control.load(&scene.script)).await?;
            Some(control)
        }
        (None, true) => anyhow::bail!(
            "the lab's agent does not use the scripted model; run with the model it uses \
             (`--model …`) so the checks stay on gates and the database"
        ),
        _ => None,
    };
    Ok((baseline_seq, model))
}

/// What reached the database, in the transcript: refusals, then what ran.
fn record_database(seen: &Observation, rec: &Recorder) {
    for refused in seen.audit().filter(|e| !e.executed()) {
        rec.say(
            Who::Database,
            format!(
                "{} {} refused: {}",
                refused.tool, refused.args, refused.detail
            ),
        );
    }
    for entry in seen.executed() {
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
}
