//! One conversation with the agent ([`Chat`]): it keeps the task and context between turns,
//! follows each turn's stream to its pause or end (catching up from `tasks/get` when the
//! stream ends early), and reports what happened as it happens. Every turn has a deadline.

use std::time::Duration;

use futures::StreamExt as _;

use super::{
    A2aError, Client, answer,
    hitl::{self, Activity, Pause},
    types::{self, Message, StreamEvent, Task, TaskState},
};

/// Longest one turn may take, its stream and any catch-up from `tasks/get` together: longer
/// than any park (hitl-extauth's `PARK_TIMEOUT_SEC` defaults to 10 min), so a call held at the
/// gateway is waited for, but not for ever.
pub const TURN_LIMIT: Duration = Duration::from_secs(15 * 60);

/// Something that happened during one turn, in order (for live transcripts).
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    State(TaskState),
    Activity(Activity),
    Paused(Pause),
    Said(String),
}

/// How one turn ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnOutcome {
    pub state: TaskState,
    /// Set when `state` is `input-required` and the pause is one we understand.
    pub pause: Option<Pause>,
    /// Tool calls and results reported during the turn.
    pub activities: Vec<Activity>,
    /// The agent's words during the turn (status messages and artifacts), joined.
    pub text: String,
    pub events: Vec<TurnEvent>,
}

/// One conversation with the agent: remembers the task and context between turns.
#[derive(Debug)]
pub struct Chat {
    client: Client,
    task_id: String,
    context_id: String,
    /// Agent messages already read, so a catch-up from `tasks/get` reports only news.
    seen: std::collections::HashSet<String>,
    /// When the last turn ended (see [`Chat::resume`]).
    turn_ended: Option<std::time::Instant>,
}

/// How long after a turn ends before the task may be resumed (see [`Chat::resume`]).
pub const RESUME_SETTLE: Duration = Duration::from_millis(500);

impl Chat {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            task_id: String::new(),
            context_id: String::new(),
            seen: Default::default(),
            turn_ended: None,
        }
    }

    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    pub fn context_id(&self) -> &str {
        &self.context_id
    }

    /// Send a text message (a new task within the same context, or the same task if it waits
    /// for input) and follow the turn to its pause or end.
    pub async fn say(
        &mut self,
        text: &str,
        on_event: impl FnMut(&TurnEvent),
    ) -> Result<TurnOutcome, A2aError> {
        let message =
            answer::user_message("", &self.context_id, vec![types::Part::text(text)], None);
        self.turn(message, on_event).await
    }

    /// Answer a tier-1 approval request, and verify the agent took the decision.
    pub async fn decide(
        &mut self,
        request: &hitl::ApprovalRequest,
        decision: &hitl::Decision,
        on_event: impl FnMut(&TurnEvent),
    ) -> Result<TurnOutcome, A2aError> {
        let message = answer::decision_message(&self.task_id, &self.context_id, request, decision);
        let outcome = self.turn(message, on_event).await?;
        answer::check_decision_taken(
            request,
            decision,
            &outcome.activities,
            outcome.pause.as_ref(),
        )?;
        Ok(outcome)
    }

    /// Answer an `ask_user` question.
    pub async fn answer(
        &mut self,
        answers: &[String],
        on_event: impl FnMut(&TurnEvent),
    ) -> Result<TurnOutcome, A2aError> {
        let message = answer::answer_message(&self.task_id, &self.context_id, answers);
        self.resume(message, on_event).await
    }

    /// Resume a paused task. a2a-sdk 0.3.x cleans up a request's event queue only after
    /// the agent's run for it has fully finished (kagent still closes its MCP sessions after
    /// it reports `input-required`); a resume that arrives before then shares that queue and
    /// loses it mid-turn (`NoTaskQueue` in the agent's log), after which the task never
    /// reports its end. A human never answers that fast; a harness must wait the same.
    async fn resume(
        &mut self,
        message: Message,
        on_event: impl FnMut(&TurnEvent),
    ) -> Result<TurnOutcome, A2aError> {
        if let Some(ended) = self.turn_ended {
            let ready = ended + RESUME_SETTLE;
            tokio::time::sleep_until(ready.into()).await;
        }
        self.turn(message, on_event).await
    }

    /// Everything new in a task snapshot: its messages, artifacts and state.
    fn absorb_task(
        &mut self,
        task: Task,
        outcome: &mut TurnOutcome,
        emit: &mut impl FnMut(&mut TurnOutcome, TurnEvent),
    ) {
        self.task_id = task.id.clone();
        self.context_id = task.context_id.clone();
        let state = task.status.state;
        for message in task.history.into_iter().chain(task.status.message) {
            self.read_message(message, outcome, emit);
        }
        for artifact in task.artifacts {
            for part in artifact.parts {
                if let types::Part::Text { text, .. } = part
                    && !outcome.text.contains(&text)
                {
                    push_text(&mut outcome.text, &text);
                    emit(outcome, TurnEvent::Said(text));
                }
            }
        }
        if state != outcome.state {
            outcome.state = state;
            emit(outcome, TurnEvent::State(state));
        }
        if state != TaskState::InputRequired {
            outcome.pause = None;
        }
    }

    async fn turn(
        &mut self,
        message: Message,
        on_event: impl FnMut(&TurnEvent),
    ) -> Result<TurnOutcome, A2aError> {
        let outcome = self.follow(message, on_event).await;
        self.turn_ended = Some(std::time::Instant::now());
        outcome
    }

    async fn follow(
        &mut self,
        message: Message,
        mut on_event: impl FnMut(&TurnEvent),
    ) -> Result<TurnOutcome, A2aError> {
        let deadline = tokio::time::Instant::now() + TURN_LIMIT;
        let mut outcome = TurnOutcome {
            state: TaskState::Submitted,
            pause: None,
            activities: Vec::new(),
            text: String::new(),
            events: Vec::new(),
        };
        let mut emit = |outcome: &mut TurnOutcome, event: TurnEvent| {
            on_event(&event);
            outcome.events.push(event);
        };
        let stream = tokio::time::timeout_at(deadline, self.client.stream(&message)).await;
        let Ok(stream) = stream else {
            return Err(self.still_running(&outcome));
        };
        let mut stream = Box::pin(stream?);
        loop {
            let Ok(event) = tokio::time::timeout_at(deadline, stream.next()).await else {
                return Err(self.still_running(&outcome));
            };
            let Some(event) = event else {
                break;
            };
            if self.read_event(event?, &mut outcome, &mut emit) {
                if outcome.state != TaskState::InputRequired {
                    outcome.pause = None;
                }
                return Ok(outcome);
            }
        }
        // a2a-sdk 0.3.x sometimes closes a resumed task's stream before its final event
        // (its queue is gone: `NoTaskQueue` in the agent's log) while the task goes on. Catch
        // up from `tasks/get` until the task pauses or ends.
        self.catch_up(outcome, &mut emit, deadline).await
    }

    /// One event of the turn's stream; true when it is the turn's last.
    fn read_event(
        &mut self,
        event: StreamEvent,
        outcome: &mut TurnOutcome,
        emit: &mut impl FnMut(&mut TurnOutcome, TurnEvent),
    ) -> bool {
        let (state, message, is_final) = match event {
            StreamEvent::Task(task) => {
                self.task_id = task.id.clone();
                self.context_id = task.context_id.clone();
                let terminal = task.status.state.is_terminal()
                    || task.status.state == TaskState::InputRequired;
                (Some(task.status.state), task.status.message, terminal)
            }
            StreamEvent::StatusUpdate {
                task_id,
                context_id,
                status,
                is_final,
            } => {
                self.task_id = task_id;
                self.context_id = context_id;
                (Some(status.state), status.message, is_final)
            }
            StreamEvent::ArtifactUpdate { artifact, .. } => {
                let text = artifact
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        types::Part::Text { text, .. } => Some(text.clone()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                // The final answer repeats as an artifact; keep it once.
                if !text.is_empty() && !outcome.text.contains(&text) {
                    push_text(&mut outcome.text, &text);
                    emit(outcome, TurnEvent::Said(text));
                }
                (None, None, false)
            }
            StreamEvent::Message(message) => (None, Some(message), false),
        };
        if let Some(state) = state
            && state != outcome.state
        {
            outcome.state = state;
            emit(outcome, TurnEvent::State(state));
        }
        if let Some(message) = message {
            self.read_message(message, outcome, emit);
        }
        is_final
    }

    /// One agent message: its tool activity, its pause, its words (each reported once).
    fn read_message(
        &mut self,
        message: Message,
        outcome: &mut TurnOutcome,
        emit: &mut impl FnMut(&mut TurnOutcome, TurnEvent),
    ) {
        // The stream repeats the user's own messages; only the agent's are news.
        if message.role != types::Role::Agent || !self.seen.insert(message.message_id.clone()) {
            return;
        }
        for activity in hitl::activities_of(&message) {
            outcome.activities.push(activity.clone());
            emit(outcome, TurnEvent::Activity(activity));
        }
        if let Some(pause) = hitl::pause_of(&message) {
            outcome.pause = Some(pause.clone());
            emit(outcome, TurnEvent::Paused(pause));
        }
        let text = hitl::text_of(&message);
        if !text.is_empty() && !outcome.text.contains(&text) {
            push_text(&mut outcome.text, &text);
            emit(outcome, TurnEvent::Said(text));
        }
    }

    async fn catch_up(
        &mut self,
        mut outcome: TurnOutcome,
        emit: &mut impl FnMut(&mut TurnOutcome, TurnEvent),
        deadline: tokio::time::Instant,
    ) -> Result<TurnOutcome, A2aError> {
        if self.task_id.is_empty() {
            return Err(A2aError::StreamEnded);
        }
        loop {
            let task = tokio::time::timeout_at(deadline, self.client.get_task(&self.task_id));
            let Ok(task) = task.await else {
                return Err(self.still_running(&outcome));
            };
            let task = task?;
            self.absorb_task(task, &mut outcome, emit);
            if outcome.state.is_terminal() || outcome.state == TaskState::InputRequired {
                return Ok(outcome);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.still_running(&outcome));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The turn ran out of time.
    fn still_running(&self, outcome: &TurnOutcome) -> A2aError {
        A2aError::StillRunning {
            task: self.task_id.clone(),
            state: format!("{:?}", outcome.state),
            waited: TURN_LIMIT,
        }
    }
}

fn push_text(buf: &mut String, text: &str) {
    if !buf.is_empty() {
        buf.push('\n');
    }
    buf.push_str(text);
}
