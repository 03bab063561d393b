//! The chat user: says the scene's prompts to the agent over A2A, decides each tier-1 pause
//! as the scene says (a pause the scene does not expect is rejected), answers the agent's
//! questions, and records the tool calls and words the agent's stream reports.

use std::{collections::VecDeque, time::Duration};

use super::{
    model::{ExpectedCall, HumanDecision, Scene, Tier},
    observation::{SeenCall, ToolResult},
    reviewer::Reviewer,
    run::RunOptions,
    transcript::{Recorder, Who},
};
use crate::a2a::{
    A2aError, Chat, Client, TurnEvent, TurnOutcome,
    hitl::{self, Activity, ApprovalRequest, Decision, Pause, Question},
    types::TaskState,
};
use hitl_lab::{agents::AgentKind, lab::LabState};

/// What the chat user saw of the agent.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    /// The agent's tool calls (its `ask_user` questions aside), in order.
    pub calls: Vec<SeenCall>,
    /// The agent's words, joined.
    pub reply: String,
}

/// An A2A client for the lab's agent, as `user`: proven with a token from the lab's issuer
/// (`Authorization`), and claimed as `x-user-id` the way a chat front end would send it.
pub fn chat_client(lab: &LabState, agent: AgentKind, user: &str) -> anyhow::Result<Client> {
    let client = Client::new(lab.agent_url(agent)?).with_header(hitl_wire::headers::USER_ID, user);
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

/// Talk the scene through with the agent: every prompt, every pause, every question.
pub async fn converse(
    lab: &LabState,
    scene: &Scene,
    options: &RunOptions,
    rec: &Recorder,
    reviewer: &Reviewer,
) -> anyhow::Result<Conversation> {
    let mut user = ChatUser {
        chat: Chat::new(chat_client(lab, options.agent, &options.user)?),
        turn_timeout: options.turn_timeout,
        rec,
        expected: scene.calls.iter(),
        answers: scene.answers.iter().collect(),
        seen: Conversation::default(),
    };
    for (i, prompt) in scene.prompts.iter().enumerate() {
        if i > 0 {
            // "Try again." comes once the reviewer has decided what the scene puts off.
            reviewer.caught_up(options.turn_timeout).await?;
        }
        user.say(prompt).await?;
        reviewer.turn_ended();
    }
    if !user.answers.is_empty() {
        anyhow::bail!(
            "the agent never asked for {} of the scene's answers",
            user.answers.len()
        );
    }
    Ok(user.seen)
}

struct ChatUser<'a> {
    chat: Chat,
    turn_timeout: Duration,
    rec: &'a Recorder,
    /// The scene's calls not yet matched to a tier-1 pause.
    expected: std::slice::Iter<'a, ExpectedCall>,
    answers: VecDeque<&'a String>,
    seen: Conversation,
}

impl ChatUser<'_> {
    /// One prompt, followed through every pause until the agent's turn ends.
    async fn say(&mut self, prompt: &str) -> anyhow::Result<()> {
        self.rec.say(Who::User, prompt.to_owned());
        let live = live(self.rec);
        let mut outcome = turn(self.turn_timeout, self.chat.say(prompt, live)).await?;
        loop {
            self.seen.absorb(&outcome);
            outcome = match outcome.pause.take() {
                Some(Pause::Approval(requests)) => self.decide(&requests[0]).await?,
                Some(Pause::Question(question)) => self.answer(&question).await?,
                None => break,
            };
        }
        if outcome.state == TaskState::InputRequired {
            anyhow::bail!("the agent waits for input the harness does not understand");
        }
        Ok(())
    }

    /// A tier-1 pause: decided as the scene says, and verified by its effect.
    async fn decide(&mut self, request: &ApprovalRequest) -> anyhow::Result<TurnOutcome> {
        self.rec.say(
            Who::Tier1,
            format!(
                "the agent paused {} {} for the chat user's approval",
                request.tool, request.args
            ),
        );
        let want = self.expected.find(|c| c.tool == request.tool);
        let decision = tier1_decision(want, &request.tool);
        match &decision {
            Decision::Approve => self.rec.say(Who::ChatUser, "approves"),
            Decision::Reject { reason } => {
                self.rec.say(Who::ChatUser, format!("rejects: {reason}"))
            }
        }
        if let Some(call) = self
            .seen
            .calls
            .iter_mut()
            .rev()
            .find(|c| c.id == request.tool_call_id)
        {
            call.tier1 = Some(decision.clone());
        }
        let live = live(self.rec);
        match turn(
            self.turn_timeout,
            self.chat.decide(request, &decision, live),
        )
        .await
        {
            Err(TurnError::A2a(A2aError::DecisionNotTaken(e))) => anyhow::bail!("tier 1: {e}"),
            other => Ok(other?),
        }
    }

    /// An `ask_user` question: the scene's next answer.
    async fn answer(&mut self, question: &Question) -> anyhow::Result<TurnOutcome> {
        let asked: Vec<&str> = question
            .questions
            .iter()
            .map(|q| q.question.as_str())
            .collect();
        self.rec
            .say(Who::Agent, format!("asks: {}", asked.join(" / ")));
        let Some(answer) = self.answers.pop_front() else {
            anyhow::bail!(
                "the agent asked {asked:?}, but the scene has no answer left (add one to \
                 `answers`)"
            );
        };
        self.rec.say(Who::ChatUser, format!("answers: {answer}"));
        let live = live(self.rec);
        let answers = std::slice::from_ref(answer);
        Ok(turn(self.turn_timeout, self.chat.answer(answers, live)).await?)
    }
}

impl Conversation {
    /// The calls, results and words of one turn.
    fn absorb(&mut self, outcome: &TurnOutcome) {
        for activity in &outcome.activities {
            match activity {
                Activity::Call { id, tool, args } if tool != hitl::ASK_USER => {
                    // A call reported again is the same call until it has a result; an id
                    // seen on an answered call is a new call (ids may repeat across prompts).
                    if !self.calls.iter().any(|c| c.id == *id && c.result.is_none()) {
                        self.calls.push(SeenCall {
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
                    if let Some(call) = self.calls.iter_mut().rev().find(|c| c.id == *id) {
                        call.result = Some(ToolResult {
                            text: text.clone(),
                            is_error: *is_error,
                        });
                    }
                }
                Activity::Call { .. } => {}
            }
        }
        if !outcome.text.is_empty() {
            if !self.reply.is_empty() {
                self.reply.push('\n');
            }
            self.reply.push_str(&outcome.text);
        }
    }
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

/// One agent turn, within the scene's deadline for a turn.
async fn turn(
    limit: Duration,
    fut: impl Future<Output = Result<TurnOutcome, A2aError>>,
) -> Result<TurnOutcome, TurnError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(outcome) => Ok(outcome?),
        Err(_) => Err(TurnError::Timeout(limit)),
    }
}

/// Record the agent's activity as it happens.
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
