//! The platform reviewer: watches hitl-extauth's `/events` alongside the conversation,
//! decides each park as the scene says (in order; a park the scene does not expect is
//! rejected), and, once told the conversation is over, hands back every park it saw as soon as
//! the last one's closing event has arrived.

use std::{collections::VecDeque, time::Duration};

use futures::{Stream, StreamExt as _};
use hitl_wire::extauth::{DecideRequest, DecidedCall, Event, Outcome, ParkedCall};
use tokio::{
    sync::oneshot,
    task::JoinHandle,
    time::{Instant, sleep_until},
};

use super::{
    model::{HumanDecision, Scene, Tier},
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
}

/// Who reviews, for which scene, through which gate.
pub struct Desk {
    pub gate: AdminClient,
    pub reviewer: String,
    pub rec: Recorder,
    pub scene: u32,
}

impl Reviewer {
    /// Start reviewing `events` for `scene`.
    pub fn start(
        desk: Desk,
        scene: &Scene,
        events: impl Stream<Item = Result<Event, AdminError>> + Send + 'static,
    ) -> Self {
        let (over, told) = oneshot::channel();
        let work = Work {
            plan: plan(scene),
            parks: Vec::new(),
            desk,
        };
        Self {
            over: Some(over),
            task: Some(tokio::spawn(work.run(events, told))),
        }
    }

    /// The conversation is over: every park the reviewer saw, once each has closed (or
    /// `grace` has passed).
    pub async fn finish(mut self, grace: Duration) -> Vec<SeenPark> {
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

/// The scene's tier-2 decisions, in order, by tool.
fn plan(scene: &Scene) -> VecDeque<(String, HumanDecision)> {
    scene
        .calls
        .iter()
        .filter(|c| c.tier == Tier::Gateway)
        .filter_map(|c| c.decision.clone().map(|d| (c.tool.clone(), d)))
        .collect()
}

/// The reviewer's own state: nobody else reads it until it is handed back.
struct Work {
    desk: Desk,
    plan: VecDeque<(String, HumanDecision)>,
    parks: Vec<SeenPark>,
}

impl Work {
    async fn run(
        mut self,
        events: impl Stream<Item = Result<Event, AdminError>>,
        mut told: oneshot::Receiver<Duration>,
    ) -> Vec<SeenPark> {
        let mut events = std::pin::pin!(events);
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
                Some(Ok(event)) => self.on(event).await,
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
            return;
        }
        let Desk {
            gate,
            reviewer,
            rec,
            scene,
        } = &self.desk;
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
        let decision = match self.plan.front() {
            Some((tool, _)) if *tool == call.tool_name => self.plan.pop_front().map(|(_, d)| d),
            _ => None,
        };
        self.parks.push(SeenPark {
            id: call.id.clone(),
            tool: call.tool_name.clone(),
            args: call.tool_args.clone(),
            requester: call.requester.clone(),
            outcome: None,
            reason: String::new(),
            unexpected: decision.is_none(),
        });
        let decision = decision.unwrap_or_else(|| HumanDecision::Reject {
            reason: format!("hitl-lab: scene {scene} does not expect this call here"),
        });
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
                return;
            }
        };
        let request = DecideRequest {
            approved,
            reason,
            reviewer: Some(reviewer.clone()),
        };
        let decided = super::run::within("hitl-extauth /decide", gate.decide(&call.id, &request));
        if let Err(e) = decided.await {
            rec.say(Who::Check, format!("FAIL deciding {}: {e:#}", call.id));
        }
    }

    fn closed(&mut self, record: &DecidedCall) {
        if let Some(park) = self.parks.iter_mut().find(|p| p.id == record.call.id) {
            park.outcome = Some(record.outcome);
            park.reason = record.reason.clone();
        }
        let detail = match record.outcome {
            Outcome::Approved => "released the call upstream".to_owned(),
            other => format!("denied the call ({}): {}", other.as_str(), record.reason),
        };
        self.desk.rec.say(
            Who::Tier2,
            format!("the gateway {detail} after {} ms", record.waited_ms),
        );
    }
}
