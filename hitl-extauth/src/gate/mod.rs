//! The gate itself: answers one `Check` (pass, deny, or park until decided), applies
//! reviewers' decisions, expires parks nobody decided, and closes every park exactly once —
//! recorded in the audit trail, counted in the metrics, announced on the event feed.
//!
//! The unit a reviewer decides is an approval request, one per action
//! ([`crate::approval_request`]); each `Check` is an attempt at it: it attaches to the open
//! request, uses an approval once, meets a recent rejection, or opens a new request. A held
//! attempt that times out leaves its request open for a later decision and a retry.
//!
//! Here: admitting a `Check` (classify, verify, refuse or park). `attempt`: one attempt at
//! an action. `decide`: a reviewer's decision. `waiting`: held attempts, their clock and
//! their cancellation. `record`: what is written and signed about an attempt.
//!
//! A parked `Check` costs little while it waits: its future holds only the receiving end of
//! its decision channel. Timeouts are kept by one sweeper task for all parks (every park has
//! the same timeout, so deadlines come due in parking order).

mod attempt;
mod decide;
mod eligible;
mod follow;
mod notice;
mod record;
mod waiting;

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
        DecideAnswer, DecideRequest, DecidedCall, Event, HistoryPage, HistoryQuery, Outcome,
        ParkedCall, RequestState, RequestView, UNNAMED_REVIEWER,
    },
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::{
    sync::{Notify, oneshot},
    time::Instant,
};

pub use record::requester;
pub use record::{DECISION_SUFFIX, EXPIRY_SUFFIX};
use record::{
    claims, ended, not_recorded, redact, redact_in_place, refused, refused_call, request_record,
};
use waiting::{Deadlines, Parking, REQUEST_SWEEP, TTL_REASON, Waiting, sweep, sweep_requests};

use crate::{
    approval_request::{self as requests, Clocks, Met, NotOpen, Requests},
    classify::{self, AllowList, Classified, RpcRequest, TOOLS_CALL, ToolCall, Verdict},
    denials::{Denials, Refused},
    events::Events,
    metrics::{CheckVerdict, Metrics},
    notify::Notifier,
    park::{Capacity, Decision, Message, ParkingLot, Settled},
    request::Incoming,
    requester::{Verified, verify::Verifier},
    store::{Caps, Change, RequestWrite, Standing, Store, StoreError},
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
    /// The reviewer may not take this decision under the request's rule; nothing changed.
    #[error("{0}")]
    Forbidden(String),
    #[error("the decision was taken but could not be recorded ({0}); the call was denied")]
    NotRecorded(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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
    /// Where notifications go (`None`: nowhere).
    pub notify: Option<crate::notify::Receivers>,
    /// Who may approve what (`APPROVAL_POLICY_FILE`; without one, anybody, once).
    pub policy: Arc<hitl_wire::policy::Policy>,
    /// Verifies reviewers' ID tokens (`REVIEWER_JWKS_FILE`); `None`: decisions carry none.
    pub reviewers: Option<crate::reviewer::Tokens>,
}

/// The oldest pending calls as cards ([`Gate::pending_listed`]).
#[derive(Debug)]
pub struct Listing {
    pub calls: Vec<Arc<ParkedCall>>,
    /// More are open than were listed.
    pub more: bool,
}

/// How long `/readyz` waits for the store to commit.
pub const READY_LIMIT: Duration = Duration::from_secs(2);

/// Longest reviewer name accepted.
pub const MAX_REVIEWER_BYTES: usize = 200;
/// Suffix on reviewer names nobody vouched for (open admin API).
pub const UNVERIFIED_SUFFIX: &str = " (unverified)";

/// The gate's shared state.
#[derive(Debug)]
pub struct Gate {
    settings: Settings,
    lot: ParkingLot,
    audit: Store,
    events: Events,
    metrics: Metrics,
    deadlines: Arc<Deadlines>,
    denials: Denials,
    requests: Requests,
    notifier: Notifier,
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
    /// The approval policy the gate enforces.
    pub fn policy(&self) -> &hitl_wire::policy::Policy {
        &self.settings.policy
    }
}

impl Gate {
    /// The gate, with its timeout sweeper running (needs a Tokio runtime), over the live
    /// approval requests `requests` read back from the audit store.
    pub fn start(settings: Settings, audit: Store, requests: Vec<requests::Row>) -> Arc<Self> {
        Self::start_hot(settings, audit, requests, requests::HOT)
    }

    /// [`Gate::start`], keeping about `hot` approval requests in memory (the rest, open and
    /// idle, in the store alone).
    pub fn start_hot(
        settings: Settings,
        audit: Store,
        requests: Vec<requests::Row>,
        hot: usize,
    ) -> Arc<Self> {
        let metrics = Metrics::new();
        let notifier = Notifier::start(settings.notify.clone(), metrics.notifications());
        let gate = Arc::new(Self {
            notifier,
            requests: Requests::with_hot(
                settings.clocks,
                requests::Limits {
                    total: settings.capacity.total,
                    per_requester: settings.capacity.per_requester,
                },
                requests,
                hot,
            ),
            lot: ParkingLot::new(settings.capacity),
            settings,
            audit,
            events: Events::new(),
            metrics,
            deadlines: Arc::default(),
            denials: Denials::default(),
        });
        tokio::spawn(sweep(Arc::downgrade(&gate), Arc::clone(&gate.deadlines)));
        tokio::spawn(sweep_requests(Arc::downgrade(&gate), REQUEST_SWEEP));
        if let Some(changes) = gate.audit.changes() {
            tokio::spawn(follow::follow(Arc::downgrade(&gate), changes));
        }
        gate
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    /// How many approval requests the gate keeps in memory: live ones, and those whose clock
    /// ran out since the last sweep.
    pub fn requests_in_memory(&self) -> usize {
        self.requests.held()
    }

    /// Open approval requests, oldest first, as cards: with or without a caller waiting.
    pub fn pending(&self) -> Vec<Arc<ParkedCall>> {
        self.requests
            .cards(OffsetDateTime::now_utc())
            .into_iter()
            .map(Arc::new)
            .collect()
    }

    /// The oldest open approval requests, at most `listed`, oldest first, as cards: those the
    /// gate keeps in memory and, when some were left to the store, those read from it; and
    /// whether more are open. If the store cannot be read the gate lists what it holds (and
    /// says so in its log).
    pub async fn pending_listed(&self, listed: usize) -> Listing {
        let limited = |mut calls: Vec<Arc<ParkedCall>>| {
            let more = calls.len() > listed;
            calls.truncate(listed);
            Listing { calls, more }
        };
        if !self.requests.has_cold() {
            return limited(self.pending());
        }
        match self
            .audit
            .requests(
                requests::Which::Oldest(listed.saturating_add(1)),
                OffsetDateTime::now_utc(),
            )
            .await
        {
            Ok(rows) => limited(
                rows.iter()
                    .map(|row| {
                        Arc::new(
                            self.requests
                                .card(&row.id)
                                .unwrap_or_else(|| requests::card_of(row)),
                        )
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "listing open requests from the store failed; listing those in memory");
                // Some open requests are in the store alone: more than these wait.
                let listing = limited(self.pending());
                Listing {
                    more: true,
                    ..listing
                }
            }
        }
    }

    /// The card of open request `id`: from memory, or read from the store when the gate left
    /// it there (`Ok(None)`: not open).
    pub async fn pending_card(&self, id: &str) -> Result<Option<ParkedCall>, StoreError> {
        let now = OffsetDateTime::now_utc();
        if let Some(card) = self.requests.card(id) {
            // Open until its clock runs out, not until the next sweep notices.
            let open = card.request.as_ref().is_none_or(|r| now < r.open_until);
            return Ok(open.then_some(card));
        }
        if !self.requests.has_cold() {
            return Ok(None);
        }
        Ok(self
            .audit
            .request(id)
            .await?
            .filter(|row| row.state == RequestState::Open && now < row.open_until)
            .map(|row| requests::card_of(&row)))
    }

    /// Whether the gate can record what it decides now (its store commits): `/readyz`.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.audit.ready(READY_LIMIT).await
    }

    pub async fn history(&self, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
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
            answer: self.answer(admission),
        }
    }

    /// The answer an admission comes to.
    async fn answer(&self, admission: Admission<'_>) -> Answer {
        match admission {
            Admission::Answer(answer @ Answer::Allow { .. }) => answer,
            // A denial's record was queued as it was decided: answer once it is committed,
            // so no denial a caller saw is missing after a crash.
            Admission::Answer(denied) => {
                self.audit.flush().await;
                denied
            }
            Admission::Parked(parking) => parking.wait().await,
            Admission::Using {
                call,
                id,
                reviewer,
                reason,
            } => Box::pin(self.use_approval(call, id, reviewer, reason)).await,
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
        // Counted as a Check denied, never as a decision: nobody decided anything.
        self.metrics.checked(CheckVerdict::Deny);
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

    /// End an attempt: queue its record, count it. Every slot taken out of the lot comes
    /// through here exactly once.
    fn close(&self, record: DecidedCall) -> oneshot::Receiver<Result<(), StoreError>> {
        self.counted(&record, true);
        self.audit.close(record)
    }

    /// [`Gate::close`] for an attempt answered at once, never parked (a re-send meeting a
    /// held rejection, or using an approval): logged, but not a park that ended.
    fn close_unparked(&self, record: DecidedCall) -> oneshot::Receiver<Result<(), StoreError>> {
        self.counted(&record, false);
        self.audit.close(record)
    }

    /// Log and count the end of an attempt whose record is written some other way (with the
    /// transition that spent its approval). `parked`: it was parked (counted by
    /// [`Metrics::parked`](crate::metrics::Metrics::parked)), so its park ended too.
    fn counted(&self, record: &DecidedCall, parked: bool) {
        tracing::info!(
            id = %record.call.id, outcome = record.outcome.as_str(), waited_ms = record.waited_ms,
            reviewer = record.reviewer.as_deref().unwrap_or("-"), "closed"
        );
        if parked {
            self.metrics.ended(record.outcome, record.waited_ms);
        }
        // No event: events are about cards (requests), and an attempt's end is not one.
    }
}
