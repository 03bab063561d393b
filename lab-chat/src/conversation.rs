//! One user's conversation with one agent: a worker that owns the A2A [`Chat`], takes the
//! user's messages, decisions and answers in order, and turns what the agent does into a
//! numbered log of [`Event`]s that every open browser tab of that user follows.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hitl_scenes::a2a::{
    Chat, Client, TurnEvent, TurnOutcome,
    hitl::{self, Activity, Decision, Pause},
    outcome::{CallOutcome, Readable},
    types::TaskState,
};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

/// What the page shows, in order. Serialised as JSON for the page's script.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The user said something.
    User { text: String },
    /// The agent said something: as said (`text`), and as a person reads it (a sentence,
    /// and rows as a table).
    Agent {
        text: String,
        #[serde(flatten)]
        readable: Readable,
    },
    /// The agent called a tool (shown as "calls …"; the page says "waiting…" if it is slow).
    Call {
        id: String,
        tool: String,
        args: Value,
    },
    /// The gate parked this call for a platform reviewer (its notification named this user,
    /// this tool and these arguments).
    Parked { id: String },
    /// A tool call ended: what happened to it, and the result as the agent reported it.
    Result {
        id: String,
        tool: String,
        text: String,
        is_error: bool,
        #[serde(flatten)]
        outcome: CallOutcome,
    },
    /// The agent waits for the user's approval of a tool call (tier 1).
    Approval {
        id: String,
        tool: String,
        args: Value,
        hint: String,
    },
    /// The agent asks the user (`ask_user`).
    Question { id: String, questions: Vec<Ask> },
    /// The user's decision on an approval, as sent.
    Decided {
        id: String,
        approved: bool,
        reason: String,
    },
    /// The user's answers to a question, as sent.
    Answered { id: String, answers: Vec<String> },
    /// The agent took the decision (verified by its effect).
    Taken { id: String },
    /// The agent works (or stopped working) on a turn.
    Busy { busy: bool },
    /// The task ended other than completed.
    Ended { state: String },
    /// Something went wrong; the conversation goes on.
    Error { text: String },
}

/// One question of an `ask_user` call.
#[derive(Debug, Clone, Serialize)]
pub struct Ask {
    pub question: String,
    pub choices: Vec<String>,
}

/// An event with its place in the log.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub seq: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// What the user can ask of the conversation.
#[derive(Debug)]
pub enum Command {
    Say(String),
    Decide { id: String, decision: Decision },
    Answer { id: String, answers: Vec<String> },
}

/// The shared log and the worker's inbox.
#[derive(Debug)]
pub struct Conversation {
    /// Unique to this conversation in this process, and across restarts.
    id: String,
    log: Mutex<Vec<Entry>>,
    tx: broadcast::Sender<Entry>,
    inbox: mpsc::Sender<Command>,
    /// Calls the agent made that have no result yet, and parks the gate announced that no
    /// call matched yet (its notification may come before the agent's report of the call).
    calls: Mutex<Calls>,
}

/// How long a park announced before the agent reported its call is kept for that call (a
/// park for a call this page never sees must not mark a later one).
const PARK_EARLY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Calls {
    open: Vec<(String, String, Value)>,
    parks: Vec<(String, Value, Instant)>,
}

impl Conversation {
    /// Start a conversation over `client`; `before_first` runs before the first message
    /// (e.g. loading the scripted model's chat script).
    pub fn start(
        client: Client,
        before_first: Option<hitl_lab::components::scripted_model::Control>,
    ) -> Arc<Self> {
        let (tx, _) = broadcast::channel(256);
        let (inbox, rx) = mpsc::channel(16);
        let conversation = Arc::new(Self {
            id: next_id(),
            log: Mutex::new(Vec::new()),
            tx,
            inbox,
            calls: Mutex::default(),
        });
        tokio::spawn(work(
            Arc::downgrade(&conversation),
            client,
            before_first,
            rx,
        ));
        conversation
    }

    /// Which conversation this is: a page that followed another one starts again.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Queue a command for the worker.
    pub async fn send(&self, command: Command) -> bool {
        self.inbox.send(command).await.is_ok()
    }

    /// Everything so far, and a receiver for what comes next (no gap between the two).
    pub fn follow(&self) -> (Vec<Entry>, broadcast::Receiver<Entry>) {
        let log = self.log.lock().expect("log lock");
        (log.clone(), self.tx.subscribe())
    }

    fn push(&self, event: Event) {
        let mut log = self.log.lock().expect("log lock");
        let entry = Entry {
            seq: log.len() as u64,
            event,
        };
        log.push(entry.clone());
        let _ = self.tx.send(entry);
    }

    /// The gate parked a call to `tool` with `args` for this conversation's user: the open
    /// call it matches shows "waiting for a platform reviewer…". `false`: no open call here
    /// matches.
    pub fn parked(&self, tool: &str, args: &Value) -> bool {
        let mut calls = self.calls.lock().expect("calls lock");
        let Some(at) = calls
            .open
            .iter()
            .position(|(_, t, a)| t == tool && a == args)
        else {
            return false;
        };
        let (id, _, _) = calls.open.remove(at);
        drop(calls);
        self.push(Event::Parked { id });
        true
    }

    /// Keep a park that matched no open call for a call reported within [`PARK_EARLY`].
    pub fn stash(&self, tool: &str, args: Value) {
        let mut calls = self.calls.lock().expect("calls lock");
        calls.parks.retain(|(_, _, at)| at.elapsed() < PARK_EARLY);
        calls.parks.push((tool.to_owned(), args, Instant::now()));
    }

    fn called(&self, id: &str, tool: &str, args: &Value) {
        let mut calls = self.calls.lock().expect("calls lock");
        calls.parks.retain(|(_, _, at)| at.elapsed() < PARK_EARLY);
        match calls
            .parks
            .iter()
            .position(|(t, a, _)| t == tool && a == args)
        {
            Some(at) => {
                calls.parks.remove(at);
                drop(calls);
                self.push(Event::Parked { id: id.to_owned() });
            }
            None => calls
                .open
                .push((id.to_owned(), tool.to_owned(), args.clone())),
        }
    }

    fn ended(&self, id: &str) {
        let mut calls = self.calls.lock().expect("calls lock");
        calls.open.retain(|(open, _, _)| open != id);
    }

    /// A turn event, as the page shows it (`ask_user`'s own call and result are the question
    /// and the answer, not tool activity).
    fn on_turn(&self, event: &TurnEvent) {
        match event {
            TurnEvent::Activity(Activity::Call { id, tool, args }) if tool != hitl::ASK_USER => {
                self.push(Event::Call {
                    id: id.clone(),
                    tool: tool.clone(),
                    args: args.clone(),
                });
                self.called(id, tool, args);
            }
            TurnEvent::Activity(Activity::Result {
                id,
                tool,
                text,
                is_error,
            }) if tool != hitl::ASK_USER => {
                self.ended(id);
                self.push(Event::Result {
                    id: id.clone(),
                    tool: tool.clone(),
                    text: text.clone(),
                    is_error: *is_error,
                    outcome: CallOutcome::of(text, *is_error),
                })
            }
            TurnEvent::Said(text) => self.push(Event::Agent {
                text: text.clone(),
                readable: Readable::of(text),
            }),
            _ => {}
        }
    }

    fn on_outcome(&self, outcome: &TurnOutcome) {
        match &outcome.pause {
            Some(Pause::Approval(requests)) => {
                let request = &requests[0];
                self.push(Event::Approval {
                    id: request.tool_call_id.clone(),
                    tool: request.tool.clone(),
                    args: request.args.clone(),
                    hint: request.hint.clone(),
                });
            }
            Some(Pause::Question(question)) => self.push(Event::Question {
                id: question.tool_call_id.clone(),
                questions: question
                    .questions
                    .iter()
                    .map(|q| Ask {
                        question: q.question.clone(),
                        choices: q.choices.clone(),
                    })
                    .collect(),
            }),
            None => {}
        }
        if outcome.state.is_terminal() && outcome.state != TaskState::Completed {
            self.push(Event::Ended {
                state: format!("{:?}", outcome.state).to_lowercase(),
            });
        }
    }
}

/// The worker: one command at a time, so turns never overlap. Ends when the conversation is
/// dropped (a new chat replaces it).
async fn work(
    conversation: std::sync::Weak<Conversation>,
    client: Client,
    mut before_first: Option<hitl_lab::components::scripted_model::Control>,
    mut rx: mpsc::Receiver<Command>,
) {
    let mut chat = Chat::new(client);
    let mut pending: Option<Pause> = None;
    while let Some(command) = rx.recv().await {
        let Some(conv) = conversation.upgrade() else {
            return;
        };
        if let Some(model) = before_first.take()
            && let Err(e) = load_chat_script(&model).await
        {
            tracing::warn!("loading the scripted model's chat script: {e:#}");
        }
        conv.push(Event::Busy { busy: true });
        let result = match command {
            Command::Say(text) => {
                conv.push(Event::User { text: text.clone() });
                pending = None;
                chat.say(&text, |e| conv.on_turn(e)).await
            }
            Command::Decide { id, decision } => match pending.take() {
                Some(Pause::Approval(requests)) if requests[0].tool_call_id == id => {
                    let request = &requests[0];
                    conv.push(Event::Decided {
                        id: id.clone(),
                        approved: decision == Decision::Approve,
                        reason: match &decision {
                            Decision::Reject { reason } => reason.clone(),
                            Decision::Approve => String::new(),
                        },
                    });
                    let result = chat.decide(request, &decision, |e| conv.on_turn(e)).await;
                    if result.is_ok() {
                        conv.push(Event::Taken { id });
                    }
                    result
                }
                other => {
                    pending = other;
                    conv.push(Event::Error {
                        text: "That approval is no longer waiting for you.".into(),
                    });
                    conv.push(Event::Busy { busy: false });
                    continue;
                }
            },
            Command::Answer { id, answers } => match pending.take() {
                Some(Pause::Question(q)) if q.tool_call_id == id => {
                    conv.push(Event::Answered {
                        id,
                        answers: answers.clone(),
                    });
                    chat.answer(&answers, |e| conv.on_turn(e)).await
                }
                other => {
                    pending = other;
                    conv.push(Event::Error {
                        text: "That question is no longer waiting for you.".into(),
                    });
                    conv.push(Event::Busy { busy: false });
                    continue;
                }
            },
        };
        match result {
            Ok(outcome) => {
                conv.on_outcome(&outcome);
                pending = outcome.pause;
            }
            Err(e) => {
                tracing::warn!("turn failed: {e}");
                conv.push(Event::Error {
                    text: e.to_string(),
                });
            }
        }
        conv.push(Event::Busy { busy: false });
    }
}

async fn load_chat_script(
    model: &hitl_lab::components::scripted_model::Control,
) -> anyhow::Result<()> {
    model
        .load(&hitl_scenes::scene::parse::chat_script()?)
        .await?;
    Ok(())
}

/// A conversation id: this process's start time and a counter, so that neither a second
/// conversation nor a restarted lab-chat ever repeats one.
fn next_id() -> String {
    static STARTED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let started = STARTED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    });
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{started:x}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(conv: &Conversation) -> Vec<String> {
        conv.follow()
            .0
            .iter()
            .map(|e| serde_json::to_value(e).unwrap()["kind"].to_string())
            .collect()
    }

    fn call(id: &str, version: &str) -> TurnEvent {
        TurnEvent::Activity(Activity::Call {
            id: id.into(),
            tool: "run_migration".into(),
            args: serde_json::json!({ "version": version }),
        })
    }

    #[tokio::test]
    async fn a_park_marks_the_call_it_names_whichever_comes_first() {
        let conv = Conversation::start(Client::new("http://127.0.0.1:9"), None);
        let v3 = serde_json::json!({ "version": "v3" });
        conv.on_turn(&call("c1", "v3"));
        assert!(!conv.parked("run_migration", &serde_json::json!({ "version": "v4" })));
        assert!(conv.parked("run_migration", &v3));
        assert!(!conv.parked("run_migration", &v3), "only once");
        conv.stash("run_migration", v3);
        conv.on_turn(&call("c2", "v3"));
        assert_eq!(
            kinds(&conv),
            [r#""call""#, r#""parked""#, r#""call""#, r#""parked""#]
        );
    }

    #[tokio::test]
    async fn a_rejected_call_ends_as_rejected_not_ran() {
        let conv = Conversation::start(Client::new("http://127.0.0.1:9"), None);
        conv.on_turn(&TurnEvent::Activity(Activity::Result {
            id: "c1".into(),
            tool: "truncate_table".into(),
            text: "Tool call was rejected by user. Reason: audit".into(),
            is_error: false,
        }));
        let entry = serde_json::to_value(&conv.follow().0[0]).unwrap();
        assert_eq!(entry["outcome"], "rejected");
        assert_eq!(entry["reason"], "audit");
    }
}
