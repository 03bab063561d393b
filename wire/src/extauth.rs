//! hitl-extauth's admin API: its paths ([`paths`]), the JSON of `/pending`, `/decide/{id}`,
//! `/history`, `/events`, and the body of the 403 a rejected call gets back through the
//! gateway (or, in MCP terms, [`denial`]). The one client of that API is [`client`] (feature
//! `client`).
//!
//! A [`ParkedCall`]'s first fields (`id`, `receivedAt`, `method`, `path`, `headers`,
//! `rpcMethod`, `toolName`, `toolArgs`, `body`) are the contract's original ones and never
//! change (`docs/decisions.md`); the later ones bind, time and attribute the call.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[cfg(feature = "client")]
pub mod client;
pub mod denial;
#[cfg(feature = "openapi")]
pub mod openapi;

/// The admin API's paths; the ones with `{id}` are axum route patterns, filled in by the
/// functions of the same name.
pub mod paths {
    /// `GET`: the calls waiting for a reviewer ([`super::PendingList`]).
    pub const PENDING: &str = "/pending";
    /// `GET`: one pending call whole ([`super::ParkedCall`]).
    pub const PENDING_CALL: &str = "/pending/{id}";
    /// `POST` a [`super::DecideRequest`]: answers the [`super::DecidedCall`].
    pub const DECIDE: &str = "/decide/{id}";
    /// `GET` with a [`super::HistoryQuery`]: a [`super::HistoryPage`].
    pub const HISTORY: &str = "/history";
    /// `GET`: server-sent [`super::Event`]s, the pending calls first.
    pub const EVENTS: &str = "/events";
    /// `GET`: Prometheus text (open).
    pub const METRICS: &str = "/metrics";
    /// `GET`: `ok`, then one `warning: …` line per insecure setting (open).
    pub use crate::health::HEALTHZ;
    /// `GET`: `live` while the process serves (open).
    pub use crate::health::LIVEZ;
    /// `GET`: `ready` while the store commits and the keys are loaded, else 503 with the
    /// reason (open).
    pub use crate::health::READYZ;
    /// `GET`: the approval policy ([`crate::policy::PolicyView`]).
    pub const POLICY: &str = "/policy";
    /// `GET`: this API's OpenAPI 3.1 document (open; `super::openapi`, feature `openapi`).
    pub const OPENAPI: &str = "/openapi.json";

    /// [`PENDING_CALL`] for `id`.
    pub fn pending_call(id: &str) -> String {
        PENDING_CALL.replace("{id}", &encode_segment(id))
    }

    /// [`DECIDE`] for `id`.
    pub fn decide(id: &str) -> String {
        DECIDE.replace("{id}", &encode_segment(id))
    }

    /// Percent-encode one URL path segment (or query value). Dots are encoded too, so `..`
    /// cannot become a dot-segment that climbs out of `/decide/`.
    pub fn encode_segment(segment: &str) -> String {
        let mut out = String::with_capacity(segment.len());
        for byte in segment.bytes() {
            if byte.is_ascii_alphanumeric() || b"-_~".contains(&byte) {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn ids_cannot_escape_their_path_segment() {
            assert_eq!(encode_segment("3f2a-9b_1~"), "3f2a-9b_1~");
            assert_eq!(encode_segment("../history?x=1"), "%2E%2E%2Fhistory%3Fx%3D1");
            assert_eq!(encode_segment("é"), "%C3%A9");
            assert_eq!(decide("a/b"), "/decide/a%2Fb");
            assert_eq!(pending_call("x"), "/pending/x");
        }
    }
}

/// A `tools/call` held at the gateway until a reviewer decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ParkedCall {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// HTTP method of the gated request.
    pub method: String,
    /// Request path as the gateway saw it, e.g. `/privileged/mcp`.
    pub path: String,
    /// Request headers as forwarded by the gateway (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// JSON-RPC method, always `tools/call` for a parked call.
    pub rpc_method: String,
    pub tool_name: String,
    pub tool_args: serde_json::Value,
    /// The forwarded body, verbatim.
    pub body: String,
    // ---- binding, expiry and attribution ----
    /// Hex sha256 of `body`: the approval is bound to exactly these bytes.
    pub body_sha256: String,
    /// When an undecided park turns into a denial (`PARK_TIMEOUT_SEC`).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Who asked, **verified**: the requester claim of the token the gateway verified,
    /// normalised ([`crate::identity::Identity`]). `None` only when the gate runs with the
    /// explicit opt-out `REQUIRE_VERIFIED_REQUESTER=false` and the call carried no token.
    #[serde(default)]
    pub requester: Option<String>,
    /// Who the caller's own headers say asked (`x-user-id`, `x-forwarded-user`): shown as
    /// unverified, never used to decide anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_requester: Option<String>,
    /// Set only in a listing's copy (`/pending`, `/events`) of a call whose body is longer than
    /// [`PREVIEW_BYTES`]: the whole body's length in bytes. `body` then holds only its first
    /// bytes (cut at a character boundary) and `toolArgs` is `null`; `GET /pending/{id}` serves
    /// the whole call, and `/history` records are always whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_of_bytes: Option<usize>,
    /// On a card (`/pending`, `/events`): the approval request this call stands for — one per
    /// action, however many times it is sent ([`RequestView`]). `id` is then the request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestView>,
}

/// Where an approval request stands (issue #26): `open` until decided or `APPROVAL_TTL`
/// passes; `approved` until used once or `APPROVAL_WINDOW` passes; `rejected`, `expired`
/// and `used` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    Open,
    Approved,
    Rejected,
    Expired,
    Used,
}

impl RequestState {
    pub const ALL: [RequestState; 5] = [
        RequestState::Open,
        RequestState::Approved,
        RequestState::Rejected,
        RequestState::Expired,
        RequestState::Used,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Open => "open",
            RequestState::Approved => "approved",
            RequestState::Rejected => "rejected",
            RequestState::Expired => "expired",
            RequestState::Used => "used",
        }
    }
}

/// The approval request behind a card: the action it covers and its clocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    /// The request's id (a card's own id; an attempt's request).
    pub id: String,
    pub state: RequestState,
    /// [`crate::action::Action::key`]: equal keys, the same request.
    pub action_key: String,
    /// The arguments in RFC 8785 canonical form: what an approval covers.
    pub canonical_args: String,
    /// `tools/call`s that asked for this action so far (one per `Check`).
    pub attempts: u64,
    /// Whether a caller is being held for it right now (its hold ends at `expiresAt`).
    pub waiting: bool,
    /// When the request expires if nobody decides it (`APPROVAL_TTL`).
    #[serde(with = "time::serde::rfc3339")]
    pub open_until: OffsetDateTime,
    /// The policy rule that decides who may approve it, and how many must
    /// ([`crate::policy`]). Absent only on a request opened before the gate had policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<crate::policy::RuleView>,
    /// Approvals so far, while fewer than the rule's `approvals` (k) have approved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<crate::policy::ApprovalView>,
}

/// Body bytes a listing carries per parked call: one large call must not make every
/// `/pending`, every event and every reviewer's page carry its whole body (the gateway forwards
/// up to 64 KiB). Reviewers load the rest on demand.
pub const PREVIEW_BYTES: usize = 4096;

impl ParkedCall {
    /// This call as listings carry it: itself when its body fits [`PREVIEW_BYTES`], else a
    /// copy with the body cut there and no parsed arguments ([`ParkedCall::preview_of_bytes`]).
    pub fn preview(&self) -> std::borrow::Cow<'_, ParkedCall> {
        if self.body.len() <= PREVIEW_BYTES || self.preview_of_bytes.is_some() {
            return std::borrow::Cow::Borrowed(self);
        }
        std::borrow::Cow::Owned(ParkedCall {
            body: crate::text::prefix(&self.body, PREVIEW_BYTES).to_owned(),
            tool_args: serde_json::Value::Null,
            preview_of_bytes: Some(self.body.len()),
            headers: self.headers.clone(),
            id: self.id.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            rpc_method: self.rpc_method.clone(),
            tool_name: self.tool_name.clone(),
            body_sha256: self.body_sha256.clone(),
            requester: self.requester.clone(),
            claimed_requester: self.claimed_requester.clone(),
            received_at: self.received_at,
            expires_at: self.expires_at,
            request: self.request.clone(),
        })
    }
}

/// Most calls `GET /pending` lists (and `/events` starts with): the oldest. A queue longer
/// than a reviewer can read is not listed whole, and listing it would cost the gate memory in
/// proportion to the backlog; [`PendingList::more`] says others wait behind these.
pub const PENDING_LISTED: usize = 1_000;

/// Query string of `GET /pending`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct PendingQuery {
    /// Most calls to list, the oldest (default [`PENDING_LISTED`]; at least 1). Tools that
    /// must see every pending call ask for more; the gate holds at most `MAX_PARKED` open
    /// requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl PendingQuery {
    /// Up to `limit` of the oldest pending calls.
    pub fn up_to(limit: u32) -> Self {
        Self { limit: Some(limit) }
    }

    /// How many to list: `limit`, or [`PENDING_LISTED`] without one (`None`: 0, refused).
    pub fn listed(&self) -> Option<usize> {
        match self.limit {
            None => Some(PENDING_LISTED),
            Some(0) => None,
            Some(n) => usize::try_from(n).ok(),
        }
    }
}

/// `GET /pending`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingList {
    /// The oldest pending calls, oldest first: at most [`PendingQuery::limit`].
    pub pending: Vec<ParkedCall>,
    /// Whether more calls are pending than are listed (they are newer than every listed one).
    /// Absent from gates before the listing had a bound: read as `false`.
    #[serde(default)]
    pub more: bool,
}

/// `POST /decide/{id}` body. `reviewer` is required: the admin API's credential holder
/// (hitl-ui) asserts which signed-in reviewer decided. Only with the admin API open
/// (`INSECURE_OPEN_ADMIN`, the seed's UI, which names nobody) may it be left out: the
/// decision is then recorded and signed as [`UNNAMED_REVIEWER`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    pub approved: bool,
    #[serde(default)]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    /// The reviewer's OpenID Connect ID token, as hitl-ui received it from the identity
    /// provider at sign-in. The gate verifies it (`REVIEWER_JWKS_FILE`, issuer, audience,
    /// expiry) and takes the reviewer's name and groups from it, not from `reviewer`.
    #[serde(default, rename = "idToken", skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// What `POST /decide/{id}` answers: `200` the decision that ended the request, or `202` the
/// card of a request whose rule needs more approvals than it has.
#[derive(Debug, Clone, PartialEq)]
pub enum DecideAnswer {
    Decided(Box<DecidedCall>),
    Counted(Box<ParkedCall>),
}

/// The reviewer recorded (in `/history` and in the approval token) for a decision that named
/// none, which only an open admin API (`INSECURE_OPEN_ADMIN`) accepts.
pub const UNNAMED_REVIEWER: &str = "(unnamed, unverified)";

/// How a park ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Approved,
    Rejected,
    /// `PARK_TIMEOUT_SEC` passed with no decision: denied.
    Expired,
    /// The gateway cancelled the Check (client hung up, gateway timeout).
    Abandoned,
    /// Pending when the process stopped; closed on the next start.
    Lost,
    /// Refused without review (malformed, forged, unparseable, over a limit): never parked.
    Denied,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Approved,
        Outcome::Rejected,
        Outcome::Expired,
        Outcome::Abandoned,
        Outcome::Lost,
        Outcome::Denied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Rejected => "rejected",
            Outcome::Expired => "expired",
            Outcome::Abandoned => "abandoned",
            Outcome::Lost => "lost",
            Outcome::Denied => "denied",
        }
    }
}

/// A park that has ended: `POST /decide` answers with one, `/history` lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DecidedCall {
    #[serde(flatten)]
    pub call: ParkedCall,
    pub outcome: Outcome,
    #[serde(default)]
    pub reviewer: Option<String>,
    #[serde(default)]
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
    /// Milliseconds between park and end.
    pub waited_ms: u64,
    /// How many identical requests this record stands for: identical denials in a short
    /// window are coalesced into one row (`decidedAt` is then the last one's time).
    #[serde(default = "one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

/// `GET /history?limit=&before=&outcome=&tool=`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    pub items: Vec<DecidedCall>,
    /// Pass as `before=` to get the next (older) page; absent on the last page.
    #[serde(default)]
    pub next_before: Option<String>,
}

/// One server-sent event on `GET /events` (`event:` is the variant name, `data:` this JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    Parked { call: ParkedCall },
    Decided { record: DecidedCall },
    Expired { record: DecidedCall },
    Abandoned { record: DecidedCall },
}

impl Event {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Parked { .. } => "parked",
            Event::Decided { .. } => "decided",
            Event::Expired { .. } => "expired",
            Event::Abandoned { .. } => "abandoned",
        }
    }

    /// Id of the parked call this event is about.
    pub fn call_id(&self) -> &str {
        match self {
            Event::Parked { call } => &call.id,
            Event::Decided { record } | Event::Expired { record } | Event::Abandoned { record } => {
                &record.call.id
            }
        }
    }
}

/// JSON body of the 403 the gateway returns for a denied call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenyBody {
    pub approved: bool,
    pub reason: String,
    /// Parked-call id; absent when the call was refused without parking (fail-closed).
    #[serde(default)]
    pub id: Option<String>,
}

/// Error body of every admin API 4xx/5xx.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    pub error: String,
}

/// Query string of `GET /history` (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct HistoryQuery {
    /// Page size; the server caps it (default 50, at most 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Opaque cursor from [`HistoryPage::next_before`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Exact tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
}

impl HistoryQuery {
    /// The newest `limit` records, unfiltered.
    pub fn latest(limit: u32) -> Self {
        Self {
            limit: Some(limit),
            ..Self::default()
        }
    }

    /// The newest records that ended as `outcome`.
    pub fn outcome(outcome: Outcome) -> Self {
        Self {
            outcome: Some(outcome),
            ..Self::default()
        }
    }
}

/// Header hitl-extauth sets on an approved request on its way upstream: the parked-call id
/// whose approval let it through (any client-supplied value is replaced or removed).
pub const APPROVAL_ID_HEADER: &str = "x-hitl-approval-id";
