//! The gate itself: answers one `Check` (pass, deny, or park until decided), applies
//! reviewers' decisions, and closes every park exactly once — recorded in the audit trail,
//! counted in the metrics, announced on the event feed.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use envoy_types::ext_authz::v3::pb::CheckRequest;
use hitl_wire::extauth::{
    DecideRequest, DecidedCall, Event, HistoryPage, HistoryQuery, Outcome, ParkedCall,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::{
    audit::{Audit, AuditError, Standing},
    classify::{self, AllowList, TOOLS_CALL, ToolCall, Verdict},
    events::Events,
    metrics::{CheckVerdict, Metrics},
    park::{Decision, ParkingLot, Settled},
    request::Incoming,
};

/// Header values never shown to reviewers nor stored: credentials.
const REDACTED_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];
const REDACTED: &str = "[redacted]";

/// The reason on a call the gateway gave up on.
pub const ABANDONED_REASON: &str = "the gateway cancelled the check (the client hung up or the gateway timed out) before a decision";
/// Said to the caller when a reviewer rejects without giving a reason.
pub const NO_REASON_GIVEN: &str = "rejected by a reviewer (no reason given)";

/// What the gateway is told to do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Forward it; `approval_id` is the parked call whose approval lets it through.
    Allow { approval_id: Option<String> },
    /// Refuse it with a 403 carrying `reason` (and the parked-call id, if it was parked).
    Deny { reason: String, id: Option<String> },
}

impl Answer {
    fn deny(reason: impl Into<String>, id: Option<String>) -> Self {
        Answer::Deny {
            reason: reason.into(),
            id,
        }
    }
}

/// Why a `/decide` did not apply.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no parked call with id {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the decision was taken but could not be recorded ({0}); the call was denied")]
    NotRecorded(String),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Tunables of the gate.
#[derive(Debug, Clone)]
pub struct Settings {
    pub allow: AllowList,
    pub park_timeout: Duration,
    pub max_parked: usize,
}

/// The gate's shared state.
#[derive(Debug)]
pub struct Gate {
    settings: Settings,
    lot: ParkingLot,
    audit: Audit,
    events: Events,
    metrics: Metrics,
}

impl Gate {
    pub fn new(settings: Settings, audit: Audit) -> Self {
        Self {
            lot: ParkingLot::new(settings.max_parked),
            settings,
            audit,
            events: Events::new(),
            metrics: Metrics::new(),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Calls waiting for a decision, oldest first.
    pub fn pending(&self) -> Vec<Arc<ParkedCall>> {
        self.lot.snapshot()
    }

    pub async fn history(&self, query: HistoryQuery) -> Result<HistoryPage, AuditError> {
        self.audit.history(query).await
    }

    /// Answer one `Check`. For a parked call this waits for the decision, the timeout, or the
    /// caller dropping the future (the gateway cancelled), whichever comes first.
    pub async fn check(&self, check: CheckRequest) -> Answer {
        let incoming = match Incoming::try_from(check) {
            Ok(incoming) => incoming,
            Err(e) => return self.refuse(e.to_string(), "?", "?"),
        };
        match classify::classify(&incoming.frame(), &self.settings.allow) {
            Verdict::Pass(why) => {
                tracing::debug!(method = %incoming.method, path = %incoming.path, ?why, "pass");
                self.metrics.checked(CheckVerdict::Pass);
                Answer::Allow { approval_id: None }
            }
            Verdict::Deny(denial) => {
                self.refuse(denial.to_string(), &incoming.method, &incoming.path)
            }
            Verdict::Park(tool) => self.park(incoming, tool).await,
        }
    }

    fn refuse(&self, reason: String, method: &str, path: &str) -> Answer {
        tracing::info!(%method, %path, %reason, "denied without review");
        self.metrics.checked(CheckVerdict::Deny);
        Answer::deny(reason, None)
    }

    async fn park(&self, incoming: Incoming, tool: ToolCall) -> Answer {
        let call = match self.parked_call(incoming, tool) {
            Ok(call) => Arc::new(call),
            Err(reason) => return self.refuse(reason, "POST", "?"),
        };
        let id = call.id.clone();
        let decision = match self
            .lot
            .park(Arc::clone(&call), |call| self.audit.park(Arc::clone(call)))
        {
            Ok(decision) => decision,
            Err(full) => return self.refuse(full.to_string(), &call.method, &call.path),
        };
        self.metrics.checked(CheckVerdict::Park);
        self.metrics.parked();
        tracing::info!(
            %id, tool = %call.tool_name, requester = call.requester.as_deref().unwrap_or("-"),
            sha256 = %call.body_sha256, "parked"
        );
        self.events.publish(|| Event::Parked {
            call: (*call).clone(),
        });
        drop(call);

        let mut waiting = Waiting {
            gate: self,
            id,
            decision,
            settled: false,
        };
        let timed_out =
            match tokio::time::timeout(self.settings.park_timeout, &mut waiting.decision).await {
                Ok(Ok(decision)) => return waiting.settle(decision).await,
                Ok(Err(_)) => None,
                Err(_elapsed) => Some(()),
            };
        if timed_out.is_some() {
            if let Some(slot) = self.lot.take(&waiting.id) {
                waiting.settled = true;
                let secs = self.settings.park_timeout.as_secs();
                let reason =
                    format!("park timed out after {secs} s with no decision from a reviewer");
                let record = ended(&slot.call, Outcome::Expired, None, reason.clone());
                // Denying needs no commit; the record is queued before the answer goes out.
                let _committed = self.close(record);
                return Answer::deny(reason, Some(waiting.id.clone()));
            }
            // A reviewer took the call just as the timer fired: the decision is on its way.
            if let Ok(decision) = (&mut waiting.decision).await {
                return waiting.settle(decision).await;
            }
        }
        // The sending side vanished without a decision (shutdown): fail closed.
        waiting.settled = true;
        Answer::deny(
            "hitl-extauth lost track of this call before a decision; denied",
            Some(waiting.id.clone()),
        )
    }

    fn parked_call(&self, incoming: Incoming, tool: ToolCall) -> Result<ParkedCall, String> {
        let Incoming {
            method,
            path,
            headers,
            body,
            ..
        } = incoming;
        let body = String::from_utf8(body).map_err(|_| "body is not valid UTF-8".to_owned())?;
        let received_at = OffsetDateTime::now_utc();
        let requester = hitl_wire::headers::IDENTITY
            .iter()
            .find_map(|name| headers.get(*name).filter(|v| !v.is_empty()).cloned());
        Ok(ParkedCall {
            id: uuid::Uuid::new_v4().to_string(),
            received_at,
            method,
            path,
            headers: redact(headers),
            rpc_method: TOOLS_CALL.to_owned(),
            tool_name: tool.name,
            tool_args: tool.arguments,
            body_sha256: hex::encode(Sha256::digest(body.as_bytes())),
            body,
            expires_at: received_at + self.settings.park_timeout,
            requester,
        })
    }

    /// Apply a reviewer's decision to a parked call.
    pub async fn decide(
        &self,
        id: &str,
        request: DecideRequest,
    ) -> Result<DecidedCall, DecideError> {
        let Some(slot) = self.lot.take(id) else {
            return Err(match self.audit.lookup(id).await? {
                None => DecideError::NotFound(id.to_owned()),
                Some(Standing::Pending) => {
                    DecideError::Conflict(format!("call {id} is already being closed"))
                }
                Some(Standing::Closed(outcome)) => DecideError::Conflict(format!(
                    "call {id} was already closed: {}",
                    outcome.as_str()
                )),
            });
        };
        let outcome = if request.approved {
            Outcome::Approved
        } else {
            Outcome::Rejected
        };
        let record = ended(&slot.call, outcome, request.reviewer, request.reason);
        let (done, finished) = oneshot::channel();
        let decision = Decision {
            record: record.clone(),
            done,
        };
        if let Err(Decision { record, .. }) = slot.decide.send(decision) {
            // The gateway gave up between our take and the send; its guard found nothing.
            let record = ended(
                &record.call,
                Outcome::Abandoned,
                None,
                ABANDONED_REASON.into(),
            );
            let _committed = self.close(record);
            return Err(abandoned_conflict(id));
        }
        match finished.await {
            Ok(Settled::NotRecorded(why)) => Err(DecideError::NotRecorded(why)),
            Ok(Settled::Abandoned) => Err(abandoned_conflict(id)),
            // `Err(_)`: the check was cancelled after it queued the record.
            Ok(Settled::Recorded) | Err(_) => Ok(record),
        }
    }

    /// End a parked call: queue its record, count it, announce it. Every taken slot goes
    /// through here (or [`Gate::close`]'s callers) exactly once.
    fn close(&self, record: DecidedCall) -> oneshot::Receiver<Result<(), AuditError>> {
        tracing::info!(
            id = %record.call.id, outcome = record.outcome.as_str(), waited_ms = record.waited_ms,
            reviewer = record.reviewer.as_deref().unwrap_or("-"), "closed"
        );
        self.metrics.ended(record.outcome, record.waited_ms);
        let committed = self.audit.close(record.clone());
        self.events.publish(|| match record.outcome {
            Outcome::Expired => Event::Expired { record },
            Outcome::Abandoned => Event::Abandoned { record },
            Outcome::Approved | Outcome::Rejected | Outcome::Lost => Event::Decided { record },
        });
        committed
    }
}

/// A `Check` waiting for its decision. Dropped unsettled means the gateway cancelled the
/// call: the park is closed as `abandoned` right there.
struct Waiting<'g> {
    gate: &'g Gate,
    id: String,
    decision: oneshot::Receiver<Decision>,
    settled: bool,
}

impl Waiting<'_> {
    /// Record a reviewer's decision, then answer the gateway. An approval is only acted on
    /// once its record is committed.
    async fn settle(mut self, decision: Decision) -> Answer {
        self.settled = true;
        let Decision { record, done } = decision;
        let outcome = record.outcome;
        let reason = record.reason.clone();
        let committed = self.gate.close(record);
        let recorded = match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(AuditError::WriterGone.to_string()),
        };
        let id = Some(self.id.clone());
        let answer = match (outcome, &recorded) {
            (Outcome::Approved, Ok(())) => Answer::Allow { approval_id: id },
            (Outcome::Approved, Err(e)) => {
                tracing::error!(id = %self.id, error = %e, "approval not recorded; denying");
                Answer::deny(
                    format!("approved, but the approval could not be recorded ({e}); denied"),
                    id,
                )
            }
            _ if reason.trim().is_empty() => Answer::deny(NO_REASON_GIVEN, id),
            _ => Answer::deny(reason, id),
        };
        let _ = done.send(match recorded {
            Ok(()) => Settled::Recorded,
            Err(e) => Settled::NotRecorded(e),
        });
        answer
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let gate = self.gate;
        if let Some(slot) = gate.lot.take(&self.id) {
            let _committed = gate.close(ended(
                &slot.call,
                Outcome::Abandoned,
                None,
                ABANDONED_REASON.into(),
            ));
            return;
        }
        // A reviewer took the call; if their decision already reached us, it can no longer be
        // carried out: close as abandoned and tell them.
        self.decision.close();
        if let Ok(Decision { record, done }) = self.decision.try_recv() {
            let _committed = gate.close(ended(
                &record.call,
                Outcome::Abandoned,
                None,
                ABANDONED_REASON.into(),
            ));
            let _ = done.send(Settled::Abandoned);
        }
    }
}

fn abandoned_conflict(id: &str) -> DecideError {
    DecideError::Conflict(format!(
        "the gateway gave up on call {id} before the decision arrived; it was closed as abandoned"
    ))
}

/// The finished record of `call`, ended now.
fn ended(
    call: &ParkedCall,
    outcome: Outcome,
    reviewer: Option<String>,
    reason: String,
) -> DecidedCall {
    let decided_at = OffsetDateTime::now_utc();
    DecidedCall {
        waited_ms: u64::try_from((decided_at - call.received_at).whole_milliseconds()).unwrap_or(0),
        call: call.clone(),
        outcome,
        reviewer,
        reason,
        decided_at,
    }
}

fn redact(mut headers: BTreeMap<String, String>) -> BTreeMap<String, String> {
    for name in REDACTED_HEADERS {
        if let Some(value) = headers.get_mut(name) {
            *value = REDACTED.to_owned();
        }
    }
    headers
}
