//! The gate itself: answers one `Check` (pass, deny, or park until decided), applies
//! reviewers' decisions, expires parks nobody decided, and closes every park exactly once —
//! recorded in the audit trail, counted in the metrics, announced on the event feed.
//!
//! A parked `Check` costs little while it waits: its future holds only the receiving end of
//! its decision channel. Timeouts are kept by one sweeper task for all parks (every park has
//! the same timeout, so deadlines come due in parking order).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use envoy_types::ext_authz::v3::pb::CheckRequest;
use hitl_wire::{
    approval::{self, Claims, Signer},
    extauth::{DecideRequest, DecidedCall, Event, HistoryPage, HistoryQuery, Outcome, ParkedCall},
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::{
    sync::{Notify, oneshot},
    time::Instant,
};

use crate::{
    audit::{Audit, AuditError, Standing},
    classify::{self, AllowList, Classified, RpcRequest, TOOLS_CALL, ToolCall, Verdict},
    denials::{Denials, Refused},
    events::Events,
    metrics::{CheckVerdict, Metrics},
    park::{Capacity, Decision, Message, ParkingLot, Settled},
    request::Incoming,
    requester::Verified,
};

/// Header values never shown to reviewers nor stored: credentials.
const REDACTED_HEADERS: [&str; 5] = [
    approval::HEADER,
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];
const REDACTED: &str = "[redacted]";

/// The reason on a call the gateway gave up on.
pub const ABANDONED_REASON: &str = "the gateway cancelled the check (the client hung up or the gateway timed out) before a decision";
/// Said to a caller whose `tools/call` carries no requester the gateway verified.
pub const NO_VERIFIED_REQUESTER: &str = "no verified requester: a gated tool call must carry the requester's token (Authorization: Bearer <JWT>), verified by the gateway; identity headers such as x-user-id are not proof";
/// Said to the caller when a reviewer rejects without giving a reason.
pub const NO_REASON_GIVEN: &str = "rejected by a reviewer (no reason given)";

/// What the gateway is told to do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Forward it; `approval_id` is the parked call whose approval lets it through, `token`
    /// the signed approval the backend verifies (absent when passed without review, or
    /// when running without a signing key).
    Allow {
        approval_id: Option<String>,
        token: Option<String>,
    },
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
    /// The decision itself is unusable (e.g. names no reviewer); nothing changed.
    #[error("{0}")]
    Invalid(String),
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
    /// Most calls parked at once: in all, and per requester.
    pub capacity: Capacity,
    /// Deny a `tools/call` that carries no verified requester (the default). With `false`
    /// such calls park with no requester, marked unverified.
    pub require_verified_requester: bool,
    /// Signs the approval token of every approved call; `None` only when running with
    /// `--insecure-no-approval-key`.
    pub signer: Option<Signer>,
    /// Whether reviewer names come from the admin token's holder. With the admin API open
    /// (`--insecure-open-admin`) anybody may claim any name: recorded as unverified.
    pub reviewer_verified: bool,
}

/// Longest reviewer name accepted.
pub const MAX_REVIEWER_BYTES: usize = 200;
/// Suffix on reviewer names nobody vouched for (open admin API).
pub const UNVERIFIED_SUFFIX: &str = " (unverified)";

/// Parks in deadline order, for the sweeper.
#[derive(Debug, Default)]
struct Deadlines {
    queue: Mutex<VecDeque<(Instant, String)>>,
    wake: Notify,
}

/// The gate's shared state.
#[derive(Debug)]
pub struct Gate {
    settings: Settings,
    lot: ParkingLot,
    audit: Audit,
    events: Events,
    metrics: Metrics,
    deadlines: Arc<Deadlines>,
    denials: Denials,
}

impl Drop for Gate {
    fn drop(&mut self) {
        // Let the sweeper notice the gate is gone.
        self.deadlines.wake.notify_one();
    }
}

/// What [`Gate::check_rpc`] hands back: the request's JSON-RPC id (if the classifier read
/// one) and the answer to come.
pub struct Checked<F> {
    pub rpc: Option<RpcRequest>,
    pub answer: F,
}

/// What [`Gate::admit`] made of a `Check`.
enum Admission<'g> {
    Answer(Answer),
    Parked(Parking<'g>),
}

impl Gate {
    /// The gate, with its timeout sweeper running (needs a Tokio runtime).
    pub fn start(settings: Settings, audit: Audit) -> Arc<Self> {
        let gate = Arc::new(Self {
            lot: ParkingLot::new(settings.capacity),
            settings,
            audit,
            events: Events::new(),
            metrics: Metrics::new(),
            deadlines: Arc::default(),
            denials: Denials::default(),
        });
        tokio::spawn(sweep(Arc::downgrade(&gate), Arc::clone(&gate.deadlines)));
        gate
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

    /// Answer one `Check`. For a parked call the returned future waits for the decision, the
    /// timeout, or being dropped (the gateway cancelled), whichever comes first.
    ///
    /// Classifying and parking happen right here, before the future: it then holds only what
    /// waiting needs, not the request (thousands of parked calls wait at once).
    pub fn check(&self, check: CheckRequest) -> impl Future<Output = Answer> + Send + '_ {
        self.check_rpc(check).answer
    }

    /// [`Gate::check`], also handing back the JSON-RPC request the classifier read from the
    /// body (for a denial that answers it): the one strict reading, never a second parse.
    pub fn check_rpc(
        &self,
        check: CheckRequest,
    ) -> Checked<impl Future<Output = Answer> + Send + '_> {
        let (admission, rpc) = self.admit(check);
        Checked {
            rpc,
            answer: async move {
                match admission {
                    Admission::Answer(answer) => answer,
                    Admission::Parked(parking) => parking.wait().await,
                }
            },
        }
    }

    /// Everything about a `Check` that needs no waiting: classify, and park if it must.
    fn admit(&self, check: CheckRequest) -> (Admission<'_>, Option<RpcRequest>) {
        let incoming = match Incoming::try_from(check) {
            Ok(incoming) => incoming,
            Err(e) => {
                let refused = Refused {
                    method: "?",
                    path: "?",
                    ..Refused::default()
                };
                return (
                    Admission::Answer(self.refuse(e.to_string(), &refused)),
                    None,
                );
            }
        };
        let Classified { verdict, rpc } =
            classify::classify_rpc(&incoming.frame(), &self.settings.allow);
        let answer = match verdict {
            Verdict::Pass(why) => {
                // The pass path logs nothing above debug: it is most of the traffic.
                tracing::debug!(method = %incoming.method, path = %incoming.path, ?why, "pass");
                self.metrics.checked(CheckVerdict::Pass);
                Answer::Allow {
                    approval_id: None,
                    token: None,
                }
            }
            Verdict::Deny(denial) => self.refuse(denial.to_string(), &refused(&incoming)),
            Verdict::Park(tool) => return (self.park(incoming, tool), rpc),
        };
        (Admission::Answer(answer), rpc)
    }

    /// Deny without review, and record it (bounded: see [`crate::denials`]).
    fn refuse(&self, reason: String, refused: &Refused<'_>) -> Answer {
        tracing::info!(method = %refused.method, path = %refused.path, %reason, "denied without review");
        self.metrics.checked(CheckVerdict::Deny);
        self.metrics.closed(Outcome::Denied, 1);
        self.denials
            .record(&self.audit, refused, &reason, |headers| {
                redact_in_place(headers)
            });
        Answer::deny(reason, None)
    }

    fn park(&self, incoming: Incoming, tool: ToolCall) -> Admission<'_> {
        let requester = match &incoming.verified {
            Verified::Requester(_) => requester(&incoming.verified),
            Verified::Invalid(reason) => {
                return Admission::Answer(self.refuse(reason.clone(), &refused(&incoming)));
            }
            Verified::Absent if self.settings.require_verified_requester => {
                return Admission::Answer(
                    self.refuse(NO_VERIFIED_REQUESTER.to_owned(), &refused(&incoming)),
                );
            }
            Verified::Absent => {
                tracing::warn!(
                    claimed = hitl_wire::headers::claimed_requester(&incoming.headers)
                        .as_deref()
                        .unwrap_or("-"),
                    "parking a call with NO verified requester (REQUIRE_VERIFIED_REQUESTER=false): \
                     separation of duties cannot be checked for it"
                );
                None
            }
        };
        if std::str::from_utf8(&incoming.body).is_err() {
            return Admission::Answer(
                self.refuse("body is not valid UTF-8".to_owned(), &refused(&incoming)),
            );
        }
        let call = Arc::new(self.parked_call(incoming, tool, requester));
        let mut committed = None;
        let parked = self.lot.park(Arc::clone(&call), |call| {
            committed = Some(self.audit.park(Arc::clone(call)));
        });
        let (decision, committed) = match (parked, committed) {
            (Ok(decision), Some(committed)) => (decision, committed),
            (Err(full), _) => {
                let refused = Refused {
                    method: &call.method,
                    path: &call.path,
                    headers: Some(&call.headers),
                    body: call.body.as_bytes(),
                    requester: call.requester.clone(),
                };
                return Admission::Answer(self.refuse(full.to_string(), &refused));
            }
            (Ok(_), None) => unreachable!("the lot runs before_visible on every park"),
        };
        Admission::Parked(Parking {
            committed,
            waiting: Waiting {
                gate: self,
                id: call.id.clone(),
                decision,
                settled: false,
            },
            call,
        })
    }

    /// The park's record is committed: let reviewers see it, start its clock, announce it.
    fn reveal(&self, call: &Arc<ParkedCall>) {
        let id = &call.id;
        self.lot.reveal(id);
        self.metrics.checked(CheckVerdict::Park);
        self.metrics.parked();
        self.expire_later(id);
        tracing::info!(
            %id, tool = %call.tool_name, requester = call.requester.as_deref().unwrap_or("-"),
            sha256 = %call.body_sha256, "parked"
        );
        self.events.publish(|| Event::Parked {
            call: call.preview().into_owned(),
        });
    }

    /// `incoming`'s body must be UTF-8 and `requester` its verified requester (both checked
    /// by [`Gate::park`]).
    fn parked_call(
        &self,
        incoming: Incoming,
        tool: ToolCall,
        requester: Option<String>,
    ) -> ParkedCall {
        let Incoming {
            method,
            path,
            headers,
            body,
            ..
        } = incoming;
        let claimed_requester = hitl_wire::headers::claimed_requester(&headers);
        let body = String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let received_at = OffsetDateTime::now_utc();
        ParkedCall {
            id: uuid::Uuid::new_v4().to_string(),
            received_at,
            method,
            path,
            headers: redact(headers),
            rpc_method: TOOLS_CALL.to_owned(),
            tool_name: tool.name,
            tool_args: crate::park::lean(&body, tool.arguments),
            body_sha256: hex::encode(Sha256::digest(body.as_bytes())),
            body,
            expires_at: received_at + self.settings.park_timeout,
            requester,
            claimed_requester,
            preview_of_bytes: None,
            request: None,
        }
    }

    /// Queue `id` for the sweeper, due one park timeout from now.
    fn expire_later(&self, id: &str) {
        let deadline = Instant::now() + self.settings.park_timeout;
        let mut queue = self
            .deadlines
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let was_empty = queue.is_empty();
        queue.push_back((deadline, id.to_owned()));
        drop(queue);
        if was_empty {
            self.deadlines.wake.notify_one();
        }
    }

    /// The park timed out: if it is still parked, close it as expired and deny it.
    fn expire(&self, id: &str) {
        let Some(slot) = self.lot.take(id) else {
            return; // decided or abandoned in the meantime
        };
        let secs = self.settings.park_timeout.as_secs();
        let reason = format!("park timed out after {secs} s with no decision from a reviewer");
        // Denying needs no commit; the record is queued before the answer goes out.
        let _committed = self.close(ended(&slot.call, Outcome::Expired, None, reason.clone()));
        // If the `Check` is gone, its guard finds this message and knows the park is closed.
        let _ = slot.decide.send(Message::Expired { reason });
    }

    /// Apply a reviewer's decision to a parked call.
    pub async fn decide(
        &self,
        id: &str,
        request: DecideRequest,
    ) -> Result<DecidedCall, DecideError> {
        let reviewer = self.reviewer(request.reviewer.as_deref())?;
        let Some(slot) = self.lot.take_visible(id) else {
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
        let record = ended(&slot.call, outcome, Some(reviewer), request.reason);
        let (done, finished) = oneshot::channel();
        let decision = Decision {
            record: record.clone(),
            done,
        };
        if let Err(Message::Decided(decision)) =
            slot.decide.send(Message::Decided(Box::new(decision)))
        {
            let record = decision.record;
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

    /// Record a reviewer's decision, then answer the gateway. An approval is only acted on
    /// once its record is committed.
    async fn settle(&self, id: String, decision: Decision) -> Answer {
        let Decision { record, done } = decision;
        let outcome = record.outcome;
        let reason = record.reason.clone();
        let committed = self.close(record.clone());
        let recorded = match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(AuditError::WriterGone.to_string()),
        };
        let token = match (outcome, &recorded, &self.settings.signer) {
            (Outcome::Approved, Ok(()), Some(signer)) => Some(signer.sign(&claims(&record))),
            _ => None,
        };
        let answer = match (outcome, &recorded) {
            (Outcome::Approved, Ok(())) => Answer::Allow {
                approval_id: Some(id),
                token,
            },
            (Outcome::Approved, Err(e)) => {
                tracing::error!(%id, error = %e, "approval not recorded; denying");
                Answer::deny(
                    format!("approved, but the approval could not be recorded ({e}); denied"),
                    Some(id),
                )
            }
            _ if reason.trim().is_empty() => Answer::deny(NO_REASON_GIVEN, Some(id)),
            _ => Answer::deny(reason, Some(id)),
        };
        let _ = done.send(match recorded {
            Ok(()) => Settled::Recorded,
            Err(e) => Settled::NotRecorded(e),
        });
        answer
    }

    /// The reviewer a decision names, as it will be recorded and signed. A decision must
    /// name one; the name is trusted because only the admin token's holder (hitl-ui, which
    /// asserts its signed-in reviewer) can decide — unless the admin API is open.
    fn reviewer(&self, named: Option<&str>) -> Result<String, DecideError> {
        let name = named.map(str::trim).unwrap_or_default();
        if name.is_empty() {
            return Err(DecideError::Invalid(
                "a decision must name its reviewer (\"reviewer\": \"…\"); nothing was decided"
                    .into(),
            ));
        }
        if name.len() > MAX_REVIEWER_BYTES || name.chars().any(char::is_control) {
            return Err(DecideError::Invalid(format!(
                "reviewer must be at most {MAX_REVIEWER_BYTES} bytes without control \
                 characters; nothing was decided"
            )));
        }
        Ok(if self.settings.reviewer_verified {
            name.to_owned()
        } else {
            format!("{name}{UNVERIFIED_SUFFIX}")
        })
    }

    /// End a parked call: queue its record, count it, announce it. Every slot taken out of
    /// the lot comes through here exactly once.
    fn close(&self, record: DecidedCall) -> oneshot::Receiver<Result<(), AuditError>> {
        tracing::info!(
            id = %record.call.id, outcome = record.outcome.as_str(), waited_ms = record.waited_ms,
            reviewer = record.reviewer.as_deref().unwrap_or("-"), "closed"
        );
        self.metrics.ended(record.outcome, record.waited_ms);
        let committed = self.audit.close(record.clone());
        self.events.publish(|| {
            // Events carry previews of large bodies, as `/pending` does.
            let record = match record.call.preview() {
                std::borrow::Cow::Borrowed(_) => record,
                std::borrow::Cow::Owned(call) => DecidedCall { call, ..record },
            };
            event_of(record)
        });
        committed
    }
}

/// The event that announces a closed call.
fn event_of(record: DecidedCall) -> Event {
    match record.outcome {
        Outcome::Expired => Event::Expired { record },
        Outcome::Abandoned => Event::Abandoned { record },
        Outcome::Approved | Outcome::Rejected | Outcome::Lost | Outcome::Denied => {
            Event::Decided { record }
        }
    }
}

/// The one task that expires parks: sleeps until the oldest deadline, expires what is due.
/// Ends when the gate is dropped.
async fn sweep(gate: Weak<Gate>, deadlines: Arc<Deadlines>) {
    loop {
        let next = deadlines
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .front()
            .map(|(deadline, _)| *deadline);
        match next {
            None => deadlines.wake.notified().await,
            Some(deadline) => tokio::time::sleep_until(deadline).await,
        }
        let Some(gate) = gate.upgrade() else {
            return;
        };
        let now = Instant::now();
        let due: Vec<String> = {
            let mut queue = deadlines
                .queue
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let n = queue
                .iter()
                .take_while(|(deadline, _)| *deadline <= now)
                .count();
            queue.drain(..n).map(|(_, id)| id).collect()
        };
        for id in due {
            gate.expire(&id);
        }
    }
}

/// A `Check` whose park is in the lot but not yet visible: its audit record is on its way to
/// disk. Nobody sees a park before it is committed, so a crash can never lose one that a
/// reviewer (or an `/events` subscriber) has seen. Dropped here, the park is abandoned as below.
struct Parking<'g> {
    committed: oneshot::Receiver<Result<(), AuditError>>,
    call: Arc<ParkedCall>,
    waiting: Waiting<'g>,
}

impl Parking<'_> {
    async fn wait(mut self) -> Answer {
        let recorded = match (&mut self.committed).await {
            Ok(result) => result,
            Err(_) => Err(AuditError::WriterGone),
        };
        let gate = self.waiting.gate;
        match recorded {
            Ok(()) => {
                gate.reveal(&self.call);
                self.waiting.wait().await
            }
            Err(e) => {
                // Never shown, never recorded: take it back quietly and fail closed.
                self.waiting.settled = true;
                gate.lot.take(&self.call.id);
                tracing::error!(id = %self.call.id, error = %e, "park not recorded; denying");
                gate.metrics.checked(CheckVerdict::Deny);
                Answer::deny(
                    format!("the call could not be recorded for review ({e}); denied"),
                    None,
                )
            }
        }
    }
}

/// A `Check` waiting for its park to end. Dropped unsettled means the gateway cancelled the
/// call: the park is closed as `abandoned` right there.
struct Waiting<'g> {
    gate: &'g Gate,
    id: String,
    decision: oneshot::Receiver<Message>,
    settled: bool,
}

impl Waiting<'_> {
    async fn wait(mut self) -> Answer {
        let message = (&mut self.decision).await;
        self.settled = true;
        let id = std::mem::take(&mut self.id);
        match message {
            // Boxed: only a decided call pays for the recording future's state.
            Ok(Message::Decided(decision)) => Box::pin(self.gate.settle(id, *decision)).await,
            Ok(Message::Expired { reason }) => Answer::deny(reason, Some(id)),
            // The sending side vanished without a word (shutdown): fail closed.
            Err(_) => Answer::deny(
                "hitl-extauth lost track of this call before a decision; denied",
                Some(id),
            ),
        }
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
        // Someone else took the call. A reviewer's decision that already reached us can no
        // longer be carried out: close as abandoned and tell them. (An expiry is closed.)
        self.decision.close();
        if let Ok(Message::Decided(decision)) = self.decision.try_recv() {
            let Decision { record, done } = *decision;
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
        count: 1,
    }
}

/// What an approval token asserts about an approved record.
fn claims(record: &DecidedCall) -> Claims {
    let iat = record.decided_at.unix_timestamp();
    Claims {
        id: record.call.id.clone(),
        sha256: record.call.body_sha256.clone(),
        tool: record.call.tool_name.clone(),
        requester: record.call.requester.clone(),
        reviewer: record.reviewer.clone().unwrap_or_default(),
        iat,
        exp: iat + approval::TTL_SECS,
    }
}

/// Who asked for a call, as far as the gate can prove it: the requester of the token the
/// gateway verified ([`crate::requester`]); identity headers never count.
pub fn requester(verified: &Verified) -> Option<String> {
    match verified {
        Verified::Requester(identity) => Some(identity.as_str().to_owned()),
        Verified::Absent | Verified::Invalid(_) => None,
    }
}

/// What a denial record keeps of `incoming`.
fn refused(incoming: &Incoming) -> Refused<'_> {
    Refused {
        method: &incoming.method,
        path: &incoming.path,
        headers: Some(&incoming.headers),
        body: &incoming.body,
        requester: requester(&incoming.verified),
    }
}

fn redact_in_place(headers: &mut BTreeMap<String, String>) {
    for name in REDACTED_HEADERS {
        if let Some(value) = headers.get_mut(name) {
            *value = REDACTED.to_owned();
        }
    }
}

fn redact(mut headers: BTreeMap<String, String>) -> BTreeMap<String, String> {
    redact_in_place(&mut headers);
    headers
}
