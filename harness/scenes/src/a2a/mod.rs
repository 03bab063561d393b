//! A2A client for talking to the agent as the chat user: JSON-RPC `message/send` and
//! `message/stream` (v0.3 method names, which kagent 0.10 speaks), the agent card, and a
//! [`Chat`] that keeps the conversation's task and context and reads each turn's gates.

pub mod hitl;
pub mod types;

use std::{sync::Arc, time::Duration};

use futures::{Stream, StreamExt as _};
use serde_json::{Value, json};

use hitl::{Activity, Pause};
use hitl_lab::requester::{Issuer, bearer};
use types::{AgentCard, Message, StreamEvent, Task, TaskState};

/// Errors talking to an A2A agent.
#[derive(Debug, thiserror::Error)]
pub enum A2aError {
    #[error("could not reach the agent at {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the agent at {url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the agent answered JSON-RPC error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("could not read the agent's answer: {0}")]
    Decode(String),
    #[error("the agent's stream ended before the task paused or finished")]
    StreamEnded,
    #[error(
        "the agent's task {task} was still {state} after {waited:?} of polling (its stream had \
         ended); is the agent stuck? its log is in the lab's logs directory"
    )]
    StillRunning {
        task: String,
        state: String,
        waited: Duration,
    },
    #[error(transparent)]
    DecisionNotTaken(#[from] hitl::DecisionNotTaken),
}

/// How long a [`Chat`] polls a task whose stream ended before it paused or finished:
/// longer than any park (hitl-extauth's `PARK_TIMEOUT_SEC` defaults to 10 min), so a call held
/// at the gateway is waited for, but not for ever.
pub const CATCH_UP_LIMIT: Duration = Duration::from_secs(15 * 60);

/// A2A client for one agent.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
    /// Who the chat user is, proven: a fresh token for them on every request.
    requester: Option<(Arc<Issuer>, String)>,
}

impl Client {
    /// `url` is the agent's A2A endpoint (JSON-RPC is POSTed to it; the card is under it).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("reqwest client"),
            url: url.into().trim_end_matches('/').to_owned(),
            headers: Vec::new(),
            requester: None,
        }
    }

    /// Prove the chat user `user` on every request: `Authorization: Bearer <JWT>`, minted
    /// by `issuer` per request (kagent forwards it to the gateway, which verifies it).
    pub fn with_requester(mut self, issuer: Arc<Issuer>, user: impl Into<String>) -> Self {
        self.requester = Some((issuer, user.into()));
        self
    }

    /// Send this header with every request (e.g. `x-user-id`, `A2A-Extensions`).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET /.well-known/agent-card.json`.
    pub async fn card(&self) -> Result<AgentCard, A2aError> {
        let url = format!("{}/.well-known/agent-card.json", self.url);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|source| A2aError::Http {
                url: url.clone(),
                source,
            })?;
        let resp = check_status(&url, resp).await?;
        resp.json()
            .await
            .map_err(|e| A2aError::Decode(format!("agent card: {e}")))
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut req = self.http.post(&self.url).json(body);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some((issuer, user)) = &self.requester {
            match issuer.mint(user) {
                Ok(token) => req = req.header(hitl_wire::identity::TOKEN_HEADER, bearer(&token)),
                // Sent without a token: the gateway refuses the gated call and says why.
                Err(e) => tracing::error!(error = %e, %user, "minting the requester token failed"),
            }
        }
        req
    }

    /// One JSON-RPC call whose result is a task.
    async fn task_call(&self, method: &str, params: Value) -> Result<Task, A2aError> {
        let body = json!({
            "jsonrpc": "2.0",
            "id": uuid::Uuid::new_v4().to_string(),
            "method": method,
            "params": params,
        });
        let resp = self
            .post(&body)
            .send()
            .await
            .map_err(|source| A2aError::Http {
                url: self.url.clone(),
                source,
            })?;
        let resp = check_status(&self.url, resp).await?;
        let value: Value = resp
            .json()
            .await
            .map_err(|e| A2aError::Decode(e.to_string()))?;
        serde_json::from_value(rpc_result(value)?)
            .map_err(|e| A2aError::Decode(format!("{method} result: {e}")))
    }

    /// `message/send` (blocking): the task as it stands when the agent pauses or finishes.
    pub async fn send(&self, message: &Message) -> Result<Task, A2aError> {
        let params = json!({"message": message, "configuration": {"blocking": true}});
        self.task_call("message/send", params).await
    }

    /// `tasks/get`: the task as it stands now, with its history.
    pub async fn get_task(&self, task_id: &str) -> Result<Task, A2aError> {
        self.task_call("tasks/get", json!({"id": task_id})).await
    }

    /// `message/stream`: the agent's events as they happen.
    pub async fn stream(
        &self,
        message: &Message,
    ) -> Result<impl Stream<Item = Result<StreamEvent, A2aError>> + use<>, A2aError> {
        let body = json!({
            "jsonrpc": "2.0",
            "id": uuid::Uuid::new_v4().to_string(),
            "method": "message/stream",
            "params": {"message": message, "configuration": {"blocking": false}},
        });
        let resp = self
            .post(&body)
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|source| A2aError::Http {
                url: self.url.clone(),
                source,
            })?;
        let resp = check_status(&self.url, resp).await?;
        use eventsource_stream::Eventsource as _;
        Ok(resp.bytes_stream().eventsource().map(|event| {
            let event = event.map_err(|e| A2aError::Decode(format!("event stream: {e}")))?;
            let value: Value = serde_json::from_str(&event.data)
                .map_err(|e| A2aError::Decode(format!("stream event: {e}")))?;
            let result = rpc_result(value)?;
            serde_json::from_value(result)
                .map_err(|e| A2aError::Decode(format!("stream event: {e}")))
        }))
    }
}

async fn check_status(url: &str, resp: reqwest::Response) -> Result<reqwest::Response, A2aError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    Err(A2aError::Status {
        url: url.to_owned(),
        status,
        body,
    })
}

fn rpc_result(mut value: Value) -> Result<Value, A2aError> {
    if let Some(error) = value.get("error") {
        return Err(A2aError::Rpc {
            code: error
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    value
        .get_mut("result")
        .map(Value::take)
        .ok_or_else(|| A2aError::Decode("JSON-RPC answer with neither result nor error".into()))
}

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
        let message = hitl::user_message("", &self.context_id, vec![types::Part::text(text)], None);
        self.turn(message, on_event).await
    }

    /// Answer a tier-1 approval request, and verify the agent took the decision.
    pub async fn decide(
        &mut self,
        request: &hitl::ApprovalRequest,
        decision: &hitl::Decision,
        on_event: impl FnMut(&TurnEvent),
    ) -> Result<TurnOutcome, A2aError> {
        let message = hitl::decision_message(&self.task_id, &self.context_id, request, decision);
        let outcome = self.turn(message, on_event).await?;
        hitl::check_decision_taken(
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
        let message = hitl::answer_message(&self.task_id, &self.context_id, answers);
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
        let mut stream = Box::pin(self.client.stream(&message).await?);
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
        while let Some(event) = stream.next().await {
            let (state, message, is_final) = match event? {
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
                        emit(&mut outcome, TurnEvent::Said(text));
                    }
                    (None, None, false)
                }
                StreamEvent::Message(message) => (None, Some(message), false),
            };
            if let Some(state) = state
                && state != outcome.state
            {
                outcome.state = state;
                emit(&mut outcome, TurnEvent::State(state));
            }
            if let Some(message) = message {
                self.read_message(message, &mut outcome, &mut emit);
            }
            if is_final {
                if outcome.state != TaskState::InputRequired {
                    outcome.pause = None;
                }
                return Ok(outcome);
            }
        }
        // a2a-sdk 0.3.x sometimes closes a resumed task's stream before its final event
        // (its queue is gone: `NoTaskQueue` in the agent's log) while the task goes on. Catch
        // up from `tasks/get` until the task pauses or ends.
        self.catch_up(outcome, &mut emit).await
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
    ) -> Result<TurnOutcome, A2aError> {
        if self.task_id.is_empty() {
            return Err(A2aError::StreamEnded);
        }
        let deadline = tokio::time::Instant::now() + CATCH_UP_LIMIT;
        loop {
            let task = self.client.get_task(&self.task_id).await?;
            self.absorb_task(task, &mut outcome, emit);
            if outcome.state.is_terminal() || outcome.state == TaskState::InputRequired {
                return Ok(outcome);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(A2aError::StillRunning {
                    task: self.task_id.clone(),
                    state: format!("{:?}", outcome.state),
                    waited: CATCH_UP_LIMIT,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn push_text(buf: &mut String, text: &str) {
    if !buf.is_empty() {
        buf.push('\n');
    }
    buf.push_str(text);
}

#[cfg(test)]
mod tests;
