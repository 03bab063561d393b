//! The platform reviewer: watches hitl-extauth's `/events` alongside the conversation,
//! decides each park as the scene says (in order; a park the scene does not expect is
//! rejected), and, once told the conversation is over, hands back every park it saw as soon as
//! the last one's closing event has arrived. A decision the scene puts off until the hold ran
//! out or the gate restarted ([`WhileHeld`]) is taken in [`held`].

mod held;
mod keys;

use std::{collections::VecDeque, pin::Pin, time::Duration};

use futures::{Stream, StreamExt as _};
use hitl_wire::extauth::{DecideRequest, DecidedCall, Event, Outcome, ParkedCall};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
    time::{Instant, sleep_until},
};

use super::{
    model::{HumanDecision, Scene, Tier, WhileHeld},
    observation::SeenPark,
    transcript::{Recorder, Who},
};
use hitl_wire::extauth::client::{AdminClient, AdminError};

/// How long the closing events of parks still open may take once the conversation is over
/// (every park ends before the agent's call returns; its event may land a moment later).
pub const CLOSING_GRACE: Duration = Duration::from_secs(3);

/// The reviewer at work (stopped when dropped).
pub struct Reviewer {
    over: Option<oneshot::Sender<Duration>>,
    task: Option<JoinHandle<Vec<SeenPark>>>,
    /// Decisions the scene puts off (after the hold, after a restart) not yet taken.
    put_off: watch::Receiver<usize>,
    /// The chat user's turns that have ended.
    turns: watch::Sender<usize>,
}

/// Kills hitl-extauth (`kill -9`) and has the lab bring it back on the same store; returns
/// once it answers again.
pub type RestartGate = std::sync::Arc<
    dyn Fn() -> futures::future::BoxFuture<'static, anyhow::Result<()>> + Send + Sync,
>;

/// Who reviews, for which scene, through which gate.
pub struct Desk {
    pub gate: AdminClient,
    pub reviewer: String,
    pub rec: Recorder,
    pub scene: u32,
    /// How the lab restarts its gate (scenes with `while_held = "gate-restarts"`).
    pub restart_gate: Option<RestartGate>,
}

/// The event stream the reviewer reads (a new one after the gate restarts).
type Events = Pin<Box<dyn Stream<Item = Result<Event, AdminError>> + Send>>;

impl Reviewer {
    /// Start reviewing `events` for `scene`.
    pub fn start(
        desk: Desk,
        scene: &Scene,
        events: impl Stream<Item = Result<Event, AdminError>> + Send + 'static,
    ) -> Self {
        let (over, told) = oneshot::channel();
        let plan = plan(scene);
        let (put_off_tx, put_off) =
            watch::channel(plan.iter().filter(|p| p.while_held.is_some()).count());
        let (turns, turns_rx) = watch::channel(0);
        let work = Work {
            plan,
            parks: Vec::new(),
            desk,
            held: None,
            put_off: put_off_tx,
            turns: turns_rx,
            closing: None,
            resubscribe: false,
            resubscribed: false,
        };
        Self {
            over: Some(over),
            task: Some(tokio::spawn(work.run(Box::pin(events), told))),
            put_off,
            turns,
        }
    }

    /// The chat user's turn (a prompt and all that followed) has ended: what the reviewer
    /// puts off until the held call's turn is over may go on.
    pub fn turn_ended(&self) {
        self.turns.send_modify(|n| *n += 1);
    }

    /// Wait (at most `limit`) until every decision the scene puts off has been taken: the
    /// chat user asks again only after the reviewer approved.
    pub async fn caught_up(&self, limit: Duration) -> anyhow::Result<()> {
        let mut put_off = self.put_off.clone();
        match tokio::time::timeout(limit, put_off.wait_for(|n| *n == 0)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => anyhow::bail!("the reviewer stopped before taking its decisions"),
            Err(_) => anyhow::bail!(
                "the reviewer had not taken the decision the scene puts off (after the hold \
                 ran out, after the gate restarted) within {limit:?}"
            ),
        }
    }

    /// The conversation is over: every park the reviewer saw, once each has closed (or
    /// `grace` has passed).
    pub async fn finish(mut self, grace: Duration) -> Vec<SeenPark> {
        // No turn is on any more: nothing put off waits for one to end.
        self.turns.send_modify(|n| *n = usize::MAX);
        if let Some(over) = self.over.take() {
            let _ = over.send(grace);
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

impl Drop for Reviewer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// One tier-2 decision the scene asks of the reviewer.
#[derive(Debug, Clone)]
struct Planned {
    tool: String,
    decision: HumanDecision,
    while_held: Option<WhileHeld>,
    /// Reviewers who approve in turn (k-of-n); empty: the desk's own, once.
    approvers: Vec<String>,
}

/// The scene's tier-2 decisions, in order, by tool (a call that passes on an earlier
/// approval is nobody's to decide: a card for it is unexpected).
fn plan(scene: &Scene) -> VecDeque<Planned> {
    scene
        .calls
        .iter()
        .filter(|c| c.tier == Tier::Gateway)
        .filter(|c| c.decision != Some(HumanDecision::EarlierApproval))
        .filter_map(|c| {
            Some(Planned {
                tool: c.tool.clone(),
                decision: c.decision.clone()?,
                while_held: c.while_held,
                approvers: c.approvers.clone(),
            })
        })
        .collect()
}

/// The reviewer's own state: nobody else reads it until it is handed back.
struct Work {
    desk: Desk,
    plan: VecDeque<Planned>,
    parks: Vec<SeenPark>,
    /// The park whose decision is put off, what it will be, and until what; and how many of
    /// the chat user's turns had ended when it was parked.
    held: Option<(String, HumanDecision, WhileHeld, usize)>,
    /// Decisions put off and not yet taken (one counts as taken once `/events` shows it).
    put_off: watch::Sender<usize>,
    /// The chat user's turns that have ended.
    turns: watch::Receiver<usize>,
    /// A put-off decision taken, its closing event not yet seen.
    closing: Option<String>,
    /// The gate restarted: read a new event stream.
    resubscribe: bool,
    /// Reading the restarted gate's event stream.
    resubscribed: bool,
}

impl Work {
    async fn run(
        mut self,
        mut events: Events,
        mut told: oneshot::Receiver<Duration>,
    ) -> Vec<SeenPark> {
        let mut deadline: Option<Instant> = None;
        loop {
            if deadline.is_some() && self.parks.iter().all(|p| p.outcome.is_some()) {
                break;
            }
            let until_deadline = async {
                match deadline {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                grace = &mut told, if deadline.is_none() => {
                    deadline = Some(Instant::now() + grace.unwrap_or_default());
                    continue;
                }
                () = until_deadline => break,
                event = events.next() => event,
            };
            match event {
                Some(Ok(event)) => {
                    self.on(event).await;
                    if std::mem::take(&mut self.resubscribe) {
                        match self.events_again().await {
                            Some(again) => events = again,
                            None => break,
                        }
                    }
                }
                Some(Err(e)) => {
                    let rec = &self.desk.rec;
                    rec.say(Who::Check, format!("FAIL hitl-extauth event stream: {e:#}"));
                    break;
                }
                None => break,
            }
        }
        self.parks
    }

    async fn on(&mut self, event: Event) {
        match event {
            Event::Parked { call } => self.parked(call).await,
            Event::Decided { record } | Event::Expired { record } | Event::Abandoned { record } => {
                self.closed(&record)
            }
        }
    }

    async fn parked(&mut self, call: ParkedCall) {
        if self.parks.iter().any(|p| p.id == call.id) {
            self.announced_again(&call).await;
            return;
        }
        let scene = self.desk.scene;
        let rec = &self.desk.rec;
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
        let planned = match self.plan.front() {
            Some(planned) if planned.tool == call.tool_name => self.plan.pop_front(),
            _ => None,
        };
        self.parks.push(SeenPark {
            id: call.id.clone(),
            tool: call.tool_name.clone(),
            args: call.tool_args.clone(),
            requester: call.requester.clone(),
            outcome: None,
            reason: String::new(),
            unexpected: planned.is_none(),
            hold_ended: false,
            came_back: false,
            listed_before_decision: None,
            counted: 0,
        });
        let decision = match planned {
            Some(Planned {
                decision,
                while_held: Some(while_held),
                ..
            }) => return self.put_off(&call.id, decision, while_held).await,
            Some(Planned { approvers, .. }) if !approvers.is_empty() => {
                return self.keys(&call.id, &approvers).await;
            }
            Some(planned) => planned.decision,
            None => HumanDecision::Reject {
                reason: format!("hitl-lab: scene {scene} does not expect this call here"),
            },
        };
        self.decide(&call.id, decision).await;
    }

    /// Take `decision` on card `id` now; whether the gate took it.
    async fn decide(&self, id: &str, decision: HumanDecision) -> bool {
        let Desk {
            gate,
            reviewer,
            rec,
            ..
        } = &self.desk;
        let (approved, reason) = match decision {
            HumanDecision::Approve => {
                rec.say(Who::Reviewer, format!("{reviewer} approves"));
                (true, String::new())
            }
            HumanDecision::Reject { reason } => {
                rec.say(Who::Reviewer, format!("{reviewer} rejects: {reason}"));
                (false, reason)
            }
            HumanDecision::Timeout => {
                rec.say(Who::Reviewer, "nobody decides; the park will time out");
                return true;
            }
            HumanDecision::EarlierApproval => return true,
        };
        let request = DecideRequest {
            id_token: None,
            approved,
            reason,
            reviewer: Some(reviewer.clone()),
        };
        let decided = super::run::within("hitl-extauth /decide", gate.decide(id, &request));
        if let Err(e) = decided.await {
            rec.say(Who::Check, format!("FAIL deciding {id}: {e:#}"));
            return false;
        }
        true
    }

    fn closed(&mut self, record: &DecidedCall) {
        let mut nobody_held = false;
        if let Some(park) = self.parks.iter_mut().find(|p| p.id == record.call.id) {
            park.outcome = Some(record.outcome);
            park.reason = record.reason.clone();
            nobody_held = park.hold_ended || park.came_back;
        }
        let waited = record.waited_ms;
        self.desk.rec.say(
            Who::Tier2,
            match record.outcome {
                Outcome::Approved if nobody_held => format!(
                    "the gateway recorded the approval after {waited} ms; nobody is held for \
                     it: the same call sent again passes once"
                ),
                Outcome::Approved => {
                    format!("the gateway released the call upstream after {waited} ms")
                }
                other => format!(
                    "the gateway denied the call ({}): {} after {waited} ms",
                    other.as_str(),
                    record.reason
                ),
            },
        );
        // A put-off decision counts as taken once it shows here (the chat user goes on).
        if self.closing.as_deref() == Some(record.call.id.as_str()) {
            self.closing = None;
            self.put_off.send_modify(|n| *n = n.saturating_sub(1));
        }
    }
}
