//! The gate itself: answers one `Check` (pass, deny, or park until decided), applies
//! reviewers' decisions, expires parks nobody decided, and closes every park exactly once —
//! recorded in the audit trail, counted in the metrics, announced on the event feed.
//!
//! The unit a reviewer decides is an approval request, one per action
//! ([`crate::approval_request`]); each `Check` is an attempt at it: it attaches to the open
//! request, uses an approval once, meets a recent rejection, or opens a new request. A held
//! attempt that times out leaves its request open for a later decision and a retry.
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
    action::{self, Action},
    approval::{self, Claims, Signer},
    extauth::{
        DecideRequest, DecidedCall, Event, HistoryPage, HistoryQuery, Outcome, ParkedCall,
        RequestState, RequestView, UNNAMED_REVIEWER,
    },
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::{
    sync::{Notify, oneshot},
    time::Instant,
};

use crate::{
    approval_request::{self as requests, Clocks, Met, NotOpen, Requests},
    audit::{Audit, AuditError, RequestWrite, Standing},
    classify::{self, AllowList, Classified, RpcRequest, TOOLS_CALL, ToolCall, Verdict},
    denials::{Denials, Refused},
    events::Events,
    metrics::{CheckVerdict, Metrics},
    park::{Capacity, Decision, Message, ParkingLot, Settled},
    request::Incoming,
    requester::{Verified, verify::Verifier},
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
pub const NO_VERIFIED_REQUESTER: &str = "no verified requester: a gated tool call must carry the requester's token (Authorization: Bearer <JWT>), which the gate verifies; identity headers such as x-user-id and claims in metadata_context are not proof";
/// How long a re-send of a rejected action gets the same rejection at once, without a new
/// card (the default of `REJECTION_HOLD_SEC`): long enough to absorb a client's automatic
/// retries, short enough that asking again later reaches a reviewer.
pub const REJECTION_HOLD: Duration =
    Duration::from_secs(hitl_wire::env::extauth::DEFAULT_REJECTION_HOLD_SEC);
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
    /// Verifies requester tokens; `None` only under the opt-out above.
    pub verifier: Option<Verifier>,
    /// Signs the approval token of every approved call; `None` only when running with
    /// `--insecure-no-approval-key`.
    pub signer: Option<Signer>,
    /// Whether reviewer names come from the admin token's holder. With the admin API open
    /// (`--insecure-open-admin`) anybody may claim any name: recorded as unverified.
    pub reviewer_verified: bool,
    /// How long approval requests and approvals last.
    pub clocks: Clocks,
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
    requests: Requests,
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
    /// An approved, unused request of the same action: use it (`call` is this attempt).
    Using {
        call: Arc<ParkedCall>,
        id: String,
        reviewer: String,
        reason: String,
    },
}

impl Gate {
    /// The gate, with its timeout sweeper running (needs a Tokio runtime), over the live
    /// approval requests `requests` read back from the audit store.
    pub fn start(settings: Settings, audit: Audit, requests: Vec<requests::Row>) -> Arc<Self> {
        let gate = Arc::new(Self {
            requests: Requests::new(
                settings.clocks,
                requests::Limits {
                    total: settings.capacity.total,
                    per_requester: settings.capacity.per_requester,
                },
                requests,
            ),
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

    /// Open approval requests, oldest first, as cards: with or without a caller waiting.
    pub fn pending(&self) -> Vec<Arc<ParkedCall>> {
        self.requests
            .cards(OffsetDateTime::now_utc())
            .into_iter()
            .map(Arc::new)
            .collect()
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
                    Admission::Using {
                        call,
                        id,
                        reviewer,
                        reason,
                    } => Box::pin(self.use_approval(call, id, reviewer, reason)).await,
                }
            },
        }
    }

    /// Everything about a `Check` that needs no waiting: classify, and park if it must.
    fn admit(&self, check: CheckRequest) -> (Admission<'_>, Option<RpcRequest>) {
        let mut incoming = match Incoming::try_from(check) {
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
        if !matches!(verdict, Verdict::Pass(_)) {
            // Who asked matters to a park and to a denial's record; a pass needs no signature
            // check (it is most of the traffic).
            incoming.verify(self.settings.verifier.as_ref());
        }
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
        self.attempt(incoming, tool, requester)
    }

    /// One attempt at an action: find what its approval request says (attach, use, repeat a
    /// rejection, or open one) — `incoming`'s body is UTF-8 and `requester` verified.
    fn attempt(
        &self,
        incoming: Incoming,
        tool: ToolCall,
        requester: Option<String>,
    ) -> Admission<'_> {
        let route = incoming
            .route
            .clone()
            .unwrap_or_else(|| incoming.path.clone());
        let mut call = self.parked_call(incoming, tool, requester);
        let arguments = crate::park::arguments(&call).into_owned();
        let (canonical, key) = match action::canonical(&arguments).and_then(|canonical| {
            let action = Action {
                requester: call.requester.as_deref(),
                route: &route,
                tool: &call.tool_name,
                arguments: &arguments,
            };
            Ok((canonical, action.key()?))
        }) {
            Ok(found) => found,
            Err(e) => return Admission::Answer(self.refuse(e.to_string(), &refused_call(&call))),
        };
        let now = call.received_at;
        let open = || self.request_row(&call, &key, &canonical);
        let (met, expiry) = self
            .requests
            .meet(&key, open, &call.id, call.expires_at, now);
        if let Some(expiry) = expiry {
            let _won = self.audit.transition(expiry, None);
        }
        let met = match met {
            Ok(met) => met,
            Err(full) => return Admission::Answer(self.refuse(full.0, &refused_call(&call))),
        };
        let request_id = match &met {
            Met::Open { id } | Met::Approved { id, .. } | Met::Rejected { id, .. } => id.clone(),
            Met::Nothing => call.id.clone(),
        };
        // The attempt knows its request (for its timeout's message).
        call.request = self
            .requests
            .card(&request_id)
            .and_then(|card| card.request)
            .or_else(|| {
                let mut view = self.request_row(&call, &key, &canonical).card.request?;
                view.id.clone_from(&request_id);
                Some(view)
            });
        let call = Arc::new(call);
        let (request_id, write) = match met {
            Met::Approved {
                id,
                reviewer,
                reason,
            } => {
                return Admission::Using {
                    call,
                    id,
                    reviewer,
                    reason,
                };
            }
            Met::Rejected { id, reason } => {
                return Admission::Answer(self.rejected_again(&call, id, reason));
            }
            Met::Open { id } => (id.clone(), RequestWrite::Attach(id)),
            Met::Nothing => (
                call.id.clone(),
                RequestWrite::Open(Box::new(self.request_row(&call, &key, &canonical))),
            ),
        };
        self.hold(call, request_id, write)
    }

    /// Hold attempt `call` of request `request_id` in the lot until it is answered, its park
    /// and `write` (its request opened or attached to) committed together.
    fn hold(
        &self,
        call: Arc<ParkedCall>,
        request_id: String,
        write: RequestWrite,
    ) -> Admission<'_> {
        let mut committed = None;
        let mut write = Some(write);
        let parked = self.lot.park(Arc::clone(&call), |call| {
            committed = Some(self.audit.park_for(Arc::clone(call), write.take()));
        });
        let (decision, committed) = match (parked, committed) {
            (Ok(decision), Some(committed)) => (decision, committed),
            (Err(full), _) => {
                self.attempt_ended(&request_id, &call.id, false);
                return Admission::Answer(self.refuse(full.to_string(), &refused_call(&call)));
            }
            (Ok(_), None) => unreachable!("the lot runs before_visible on every park"),
        };
        Admission::Parked(Parking {
            committed,
            waiting: Waiting {
                gate: self,
                id: call.id.clone(),
                request: request_id,
                decision,
                settled: false,
            },
            call,
        })
    }

    /// The stored row of the request `call` opens: its card shows the canonical arguments.
    fn request_row(&self, call: &ParkedCall, key: &str, canonical: &str) -> requests::Row {
        let open_until = call.received_at + self.settings.clocks.ttl;
        let shown = serde_json::from_str(canonical).unwrap_or(serde_json::Value::Null);
        requests::Row {
            id: call.id.clone(),
            action_key: key.to_owned(),
            state: RequestState::Open,
            card: ParkedCall {
                tool_args: crate::park::lean(&call.body, shown),
                request: Some(RequestView {
                    id: call.id.clone(),
                    state: RequestState::Open,
                    action_key: key.to_owned(),
                    canonical_args: canonical.to_owned(),
                    attempts: 1,
                    waiting: true,
                    open_until,
                }),
                ..call.clone()
            },
            opened_at: call.received_at,
            open_until,
            reviewer: None,
            reason: String::new(),
            decided_at: None,
            usable_until: None,
            attempts: 1,
        }
    }

    /// A re-send of an action rejected within [`REJECTION_HOLD`]: the same rejection, at once.
    fn rejected_again(&self, call: &ParkedCall, id: String, reason: String) -> Answer {
        let reason = if reason.trim().is_empty() {
            NO_REASON_GIVEN.to_owned()
        } else {
            reason
        };
        self.metrics.checked(CheckVerdict::Deny);
        let record = ended(call, Outcome::Rejected, None, reason.clone());
        let _committed = self.close(record);
        Answer::deny(reason, Some(id))
    }

    /// Use the approval of request `id` for attempt `call`: one conditional write decides
    /// which attempt gets it; this one passes only if it won and its record is committed.
    async fn use_approval(
        &self,
        call: Arc<ParkedCall>,
        id: String,
        reviewer: String,
        reason: String,
    ) -> Answer {
        self.metrics.checked(CheckVerdict::Park);
        let record = ended(&call, Outcome::Approved, Some(reviewer), reason);
        self.spend(&id, record, Some(call.id.clone())).await
    }

    /// Spend approval `id` on the attempt of `record` (`link`: not yet linked to it), record
    /// the attempt, and let it through with a token bound to its exact bytes — or deny.
    async fn spend(&self, id: &str, record: DecidedCall, link: Option<String>) -> Answer {
        let used = requests::use_by(id, &record.call.id, OffsetDateTime::now_utc());
        let won = self.audit.transition(used.clone(), link).await;
        match won {
            Ok(Ok(true)) => {
                self.requests.applied(&used);
            }
            Ok(Ok(false)) => {
                let reason = format!(
                    "the approval of request {id} was already used by another call; an approval \
                     lets one call through: send the call again to ask for a new one"
                );
                let _committed = self.close(DecidedCall {
                    outcome: Outcome::Denied,
                    reason: reason.clone(),
                    ..record
                });
                return Answer::deny(reason, Some(id.to_owned()));
            }
            Ok(Err(e)) => return not_recorded(id, &e.to_string()),
            Err(_) => return not_recorded(id, &AuditError::WriterGone.to_string()),
        }
        let committed = self.close(record.clone());
        match committed.await {
            Ok(Ok(())) => Answer::Allow {
                approval_id: Some(id.to_owned()),
                token: self
                    .settings
                    .signer
                    .as_ref()
                    .map(|signer| signer.sign(&claims(&record, id))),
            },
            Ok(Err(e)) => not_recorded(id, &e.to_string()),
            Err(_) => not_recorded(id, &AuditError::WriterGone.to_string()),
        }
    }

    /// Attempt `attempt` of request `id` is no longer held; `announce`: re-announce the card
    /// (its `waiting` flag changed).
    fn attempt_ended(&self, id: &str, attempt: &str, announce: bool) {
        self.requests.detach(id, attempt);
        if announce {
            self.announce(id);
        }
    }

    /// Publish request `id`'s card as it is now (if open).
    fn announce(&self, id: &str) {
        if let Some(card) = self.requests.card(id) {
            self.events.publish(|| Event::Parked {
                call: card.preview().into_owned(),
            });
        }
    }

    /// The park's record is committed: let reviewers see its request, start its clock,
    /// announce the request's card (new, or with one more attempt).
    fn reveal(&self, call: &Arc<ParkedCall>, request: &str) {
        let id = &call.id;
        self.lot.reveal(id);
        self.requests.reveal(request);
        self.metrics.checked(CheckVerdict::Park);
        self.metrics.parked();
        self.expire_later(id);
        tracing::info!(
            %id, tool = %call.tool_name, requester = call.requester.as_deref().unwrap_or("-"),
            sha256 = %call.body_sha256, "parked"
        );
        self.announce(request);
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

    /// The park timed out: if it is still parked, close the attempt as expired and deny it,
    /// telling the caller its approval request stays open.
    fn expire(&self, id: &str) {
        let Some(slot) = self.lot.take(id) else {
            return; // decided or abandoned in the meantime
        };
        let secs = self.settings.park_timeout.as_secs();
        let request_id = slot
            .call
            .request
            .as_ref()
            .map_or(id, |r| r.id.as_str())
            .to_owned();
        let open_until = self
            .requests
            .card(&request_id)
            .and_then(|card| card.request)
            .map(|r| r.open_until);
        let reason = match open_until {
            Some(until) => {
                let until = until
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                format!(
                    "park timed out after {secs} s with no decision from a reviewer; the approval \
                     request {request_id} stays open until {until}: once a reviewer approves it, \
                     send the same call again and it passes once"
                )
            }
            None => format!("park timed out after {secs} s with no decision from a reviewer"),
        };
        self.attempt_ended(&request_id, id, true);
        // Denying needs no commit; the record is queued before the answer goes out.
        let _committed = self.close(ended(&slot.call, Outcome::Expired, None, reason.clone()));
        // If the `Check` is gone, its guard finds this message and knows the park is closed.
        let _ = slot.decide.send(Message::Expired { reason });
    }

    /// Apply a reviewer's decision to an open approval request, whether or not a caller is
    /// held for it: one conditional write, then the held attempts (if any) are answered.
    pub async fn decide(
        &self,
        id: &str,
        request: DecideRequest,
    ) -> Result<DecidedCall, DecideError> {
        let reviewer = self.reviewer(id, request.reviewer.as_deref())?;
        let now = OffsetDateTime::now_utc();
        let Some(card) = self.requests.card(id) else {
            return Err(self.not_decidable(id, NotOpen::Unknown).await?);
        };
        let transition =
            match self
                .requests
                .decision(id, request.approved, &reviewer, &request.reason, now)
            {
                Ok(transition) => transition,
                Err((not_open, expiry)) => {
                    if let Some(expiry) = expiry {
                        let _won = self.audit.transition(*expiry, None);
                    }
                    return Err(self.not_decidable(id, not_open).await?);
                }
            };
        match self.audit.transition(transition.clone(), None).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                return Err(DecideError::Conflict(format!(
                    "call {id} was decided by someone else at the same moment"
                )));
            }
            Ok(Err(e)) => return Err(DecideError::NotRecorded(e.to_string())),
            Err(_) => return Err(DecideError::NotRecorded(AuditError::WriterGone.to_string())),
        }
        let outcome = if request.approved {
            Outcome::Approved
        } else {
            Outcome::Rejected
        };
        let record = DecidedCall {
            waited_ms: u64::try_from((now - card.received_at).whole_milliseconds()).unwrap_or(0),
            call: ParkedCall {
                request: None,
                ..card
            },
            outcome,
            reviewer: Some(reviewer.clone()),
            reason: request.reason.clone(),
            decided_at: now,
            count: 1,
        };
        tracing::info!(%id, outcome = outcome.as_str(), %reviewer, "request decided");
        self.events.publish(|| Event::Decided {
            record: DecidedCall {
                call: record.call.preview().into_owned(),
                ..record.clone()
            },
        });
        let waiters = self.requests.applied(&transition);
        if let Some(settled) = self.answer_held(&waiters, &record).await {
            settled?;
        }
        Ok(record)
    }

    /// Hand a decision to the attempts held for its request (newest first): an approval goes
    /// to the newest only (it lets one call through); a rejection to all. What became of the
    /// first, if any was held.
    async fn answer_held(
        &self,
        waiters: &[String],
        decided: &DecidedCall,
    ) -> Option<Result<(), DecideError>> {
        let mut first = None;
        for (n, attempt) in waiters.iter().enumerate() {
            let Some(slot) = self.lot.take(attempt) else {
                continue; // timed out or abandoned in the meantime
            };
            if decided.outcome == Outcome::Approved && first.is_some() {
                let reason = format!(
                    "the approval of request {} went to a newer send of the same call",
                    decided.call.id
                );
                let _committed =
                    self.close(ended(&slot.call, Outcome::Expired, None, reason.clone()));
                let _ = slot.decide.send(Message::Expired { reason });
                continue;
            }
            // The held attempt ends with its request's decision, at the decision's time.
            let record = DecidedCall {
                waited_ms: u64::try_from(
                    (decided.decided_at - slot.call.received_at).whole_milliseconds(),
                )
                .unwrap_or(0),
                decided_at: decided.decided_at,
                ..ended(
                    &slot.call,
                    decided.outcome,
                    decided.reviewer.clone(),
                    decided.reason.clone(),
                )
            };
            let (done, finished) = oneshot::channel();
            let decision = Decision { record, done };
            if let Err(Message::Decided(decision)) =
                slot.decide.send(Message::Decided(Box::new(decision)))
            {
                // The gateway gave up between our take and the send; its guard found nothing.
                let record = ended(
                    &decision.record.call,
                    Outcome::Abandoned,
                    None,
                    ABANDONED_REASON.into(),
                );
                let _committed = self.close(record);
                continue;
            }
            if first.is_none() {
                first = Some((n, finished));
            }
        }
        let (_, finished) = first?;
        Some(match finished.await {
            Ok(Settled::NotRecorded(why)) => Err(DecideError::NotRecorded(why)),
            Ok(Settled::Recorded | Settled::Abandoned) | Err(_) => Ok(()),
        })
    }

    /// Why `id` cannot be decided, as the reviewer is told.
    async fn not_decidable(&self, id: &str, not_open: NotOpen) -> Result<DecideError, DecideError> {
        Ok(match not_open {
            NotOpen::Was(state) => {
                DecideError::Conflict(format!("call {id} was already closed: {}", state.as_str()))
            }
            NotOpen::Unknown => match self.audit.lookup(id).await? {
                None => DecideError::NotFound(id.to_owned()),
                Some(Standing::Pending) => {
                    DecideError::Conflict(format!("call {id} is already being closed"))
                }
                Some(Standing::Closed(outcome)) => DecideError::Conflict(format!(
                    "call {id} was already closed: {}",
                    outcome.as_str()
                )),
            },
        })
    }

    /// Answer a held attempt of request `request` with its reviewer's decision: an approval
    /// is spent on it (one conditional write) and recorded before it passes; a rejection is
    /// recorded and denied with the reviewer's reason.
    async fn settle(&self, request: String, decision: Decision) -> Answer {
        let Decision { record, done } = decision;
        if record.outcome == Outcome::Approved {
            let answer = self.spend(&request, record, None).await;
            let _ = done.send(match &answer {
                Answer::Allow { .. } => Settled::Recorded,
                Answer::Deny { reason, .. } => Settled::NotRecorded(reason.clone()),
            });
            return answer;
        }
        let reason = record.reason.clone();
        let recorded = match self.close(record).await {
            Ok(Ok(())) => Settled::Recorded,
            Ok(Err(e)) => Settled::NotRecorded(e.to_string()),
            Err(_) => Settled::NotRecorded(AuditError::WriterGone.to_string()),
        };
        let _ = done.send(recorded);
        if reason.trim().is_empty() {
            Answer::deny(NO_REASON_GIVEN, Some(request))
        } else {
            Answer::deny(reason, Some(request))
        }
    }

    /// The reviewer a decision names, as it will be recorded and signed. A decision must
    /// name one; the name is trusted because only the admin token's holder (hitl-ui, which
    /// asserts its signed-in reviewer) can decide — unless the admin API is open. Open, a
    /// decision that names nobody (the seed's UI sends no name) is applied as
    /// [`UNNAMED_REVIEWER`], with a warning each time.
    fn reviewer(&self, id: &str, named: Option<&str>) -> Result<String, DecideError> {
        let name = named.map(str::trim).unwrap_or_default();
        if name.is_empty() && !self.settings.reviewer_verified {
            tracing::warn!(
                %id,
                reviewer = UNNAMED_REVIEWER,
                "INSECURE: a decision that names no reviewer, applied because the admin API is \
                 open ({}); recorded and signed as {UNNAMED_REVIEWER}",
                hitl_wire::env::extauth::INSECURE_OPEN_ADMIN
            );
            return Ok(UNNAMED_REVIEWER.to_owned());
        }
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

    /// End an attempt: queue its record, count it. Every slot taken out of the lot comes
    /// through here exactly once.
    fn close(&self, record: DecidedCall) -> oneshot::Receiver<Result<(), AuditError>> {
        tracing::info!(
            id = %record.call.id, outcome = record.outcome.as_str(), waited_ms = record.waited_ms,
            reviewer = record.reviewer.as_deref().unwrap_or("-"), "closed"
        );
        self.metrics.ended(record.outcome, record.waited_ms);
        // No event: events are about cards (requests), and an attempt's end is not one.
        self.audit.close(record)
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
                gate.reveal(&self.call, &self.waiting.request);
                self.waiting.wait().await
            }
            Err(e) => {
                // Never shown, never recorded: take it back quietly and fail closed.
                self.waiting.settled = true;
                gate.lot.take(&self.call.id);
                if self.waiting.request == self.call.id {
                    gate.requests.forget(&self.call.id);
                } else {
                    gate.attempt_ended(&self.waiting.request, &self.call.id, false);
                }
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
    /// The approval request this attempt is for.
    request: String,
    decision: oneshot::Receiver<Message>,
    settled: bool,
}

impl Waiting<'_> {
    async fn wait(mut self) -> Answer {
        let message = (&mut self.decision).await;
        self.settled = true;
        let request = std::mem::take(&mut self.request);
        match message {
            // Boxed: only a decided call pays for the recording future's state.
            Ok(Message::Decided(decision)) => Box::pin(self.gate.settle(request, *decision)).await,
            Ok(Message::Expired { reason }) => Answer::deny(reason, Some(request)),
            // The sending side vanished without a word (shutdown): fail closed.
            Err(_) => Answer::deny(
                "hitl-extauth lost track of this call before a decision; denied",
                Some(request),
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
            // The request stays open: its card now says nobody is waiting.
            gate.attempt_ended(&self.request, &self.id, true);
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

/// Deny an approved attempt whose use could not be recorded: fail closed.
fn not_recorded(id: &str, e: &str) -> Answer {
    tracing::error!(%id, error = %e, "approval not recorded; denying");
    Answer::deny(
        format!("approved, but the approval could not be recorded ({e}); denied"),
        Some(id.to_owned()),
    )
}

/// What an approval token asserts about an approved attempt of request `id`.
fn claims(record: &DecidedCall, id: &str) -> Claims {
    let iat = record.decided_at.unix_timestamp();
    Claims {
        id: id.to_owned(),
        sha256: record.call.body_sha256.clone(),
        tool: record.call.tool_name.clone(),
        requester: record.call.requester.clone(),
        reviewer: record.reviewer.clone().unwrap_or_default(),
        iat,
        exp: iat + approval::TTL_SECS,
    }
}

/// Who asked for a call, as far as the gate can prove it: the requester of the token it
/// verified ([`crate::requester`]); identity headers and stated claims never count.
pub fn requester(verified: &Verified) -> Option<String> {
    match verified {
        Verified::Requester(identity) => Some(identity.as_str().to_owned()),
        Verified::Absent | Verified::Invalid(_) => None,
    }
}

/// What a denial record keeps of an attempt.
fn refused_call(call: &ParkedCall) -> Refused<'_> {
    Refused {
        method: &call.method,
        path: &call.path,
        headers: Some(&call.headers),
        body: call.body.as_bytes(),
        requester: call.requester.clone(),
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
