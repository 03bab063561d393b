//! A2A client for talking to the agent as the chat user: the transport ([`client`]:
//! JSON-RPC `message/send` and `message/stream`, v0.3 method names, which kagent 0.10 speaks,
//! and the agent card), a [`Chat`] that keeps the conversation's task and context and follows
//! each turn within a deadline, the agent's gates read ([`hitl`]) and answered
//! ([`answer`]), and what became of each call, made readable ([`outcome`]).

pub mod answer;
pub mod chat;
pub mod client;
pub mod hitl;
pub mod outcome;
pub mod types;

use std::time::Duration;

pub use chat::{Chat, RESUME_SETTLE, TURN_LIMIT, TurnEvent, TurnOutcome};
pub use client::Client;

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
        "the agent's task {task} was still {state} after {waited:?}; is the agent stuck? its log \
         is in the lab's logs directory"
    )]
    StillRunning {
        task: String,
        state: String,
        waited: Duration,
    },
    #[error(transparent)]
    DecisionNotTaken(#[from] answer::DecisionNotTaken),
}

#[cfg(test)]
mod tests;
