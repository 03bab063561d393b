//! The approval requests' rows in the store: the schema, the one conditional write per
//! transition, the attempt links, and the reading-back of live requests at start. Runs on
//! the store's writer, inside its transaction, on either engine (see [`crate::store`]).

use hitl_wire::{extauth::ParkedCall, policy::ApprovalView};
use time::OffsetDateTime;

use super::state::{self, State};
use crate::store::{
    StoreError,
    sql::{Tx, Value},
};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approval_requests (
    id           TEXT PRIMARY KEY,
    action_key   TEXT NOT NULL,
    state        TEXT NOT NULL,
    card         TEXT NOT NULL,   -- JSON: the ParkedCall reviewers see (canonical arguments)
    opened_ms    BIGINT NOT NULL,
    open_until_ms BIGINT NOT NULL, -- APPROVAL_TTL
    reviewer     TEXT,
    reason       TEXT,
    decided_ms   BIGINT,
    usable_until_ms BIGINT,       -- approved: APPROVAL_WINDOW; rejected: the hold
    used_by      TEXT,            -- the attempt that spent the approval
    ended_ms     BIGINT,
    approvals    TEXT            -- JSON: approvals so far, while fewer than the rule's k
);
-- Attach, don't duplicate: at most one live request per action.
CREATE UNIQUE INDEX IF NOT EXISTS approval_requests_live_action
    ON approval_requests (action_key) WHERE state IN ('open', 'approved');
-- One row per tools/call that asked for a request (its outcome is in parked_calls).
CREATE TABLE IF NOT EXISTS request_attempts (
    attempt_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    at_ms      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS request_attempts_by_request ON request_attempts (request_id);
";

/// Columns added since the first schema (SQLite adds what a database lacks).
pub const COLUMNS: [(&str, &str, &str); 1] = [("approval_requests", "approvals", "TEXT")];
/// PostgreSQL's migration 4: [`COLUMNS`].
pub const COLUMNS_SQL: &str =
    "ALTER TABLE approval_requests ADD COLUMN IF NOT EXISTS approvals TEXT;";

/// Unix milliseconds: the store's clock unit.
pub fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A request as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub action_key: String,
    pub state: State,
    pub card: ParkedCall,
    pub opened_at: OffsetDateTime,
    pub open_until: OffsetDateTime,
    pub reviewer: Option<String>,
    pub reason: String,
    pub decided_at: Option<OffsetDateTime>,
    pub usable_until: Option<OffsetDateTime>,
    pub attempts: u64,
    /// A call is held for it by another replica (as read; this replica knows its own).
    pub waiting: bool,
    /// Approvals counted so far (k-of-n), oldest first; the approving decision adds the last.
    pub approvals: Vec<ApprovalView>,
}

/// The approvals column written by a transition, on the condition that it still holds what
/// the decider read (so two reviewers counting at once never both count on the same list).
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    pub before: Vec<ApprovalView>,
    pub after: Vec<ApprovalView>,
}

/// The approvals column's text for `approvals` ("" for none).
pub fn approvals_text(approvals: &[ApprovalView]) -> String {
    if approvals.is_empty() {
        String::new()
    } else {
        serde_json::to_string(approvals).unwrap_or_default()
    }
}

/// One transition, written as one conditional update.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub id: String,
    pub from: State,
    pub to: State,
    pub at: OffsetDateTime,
    /// Set by a decision.
    pub reviewer: Option<String>,
    pub reason: Option<String>,
    pub usable_until: Option<OffsetDateTime>,
    /// Set by [`state::Step::Use`]: the attempt that spent the approval.
    pub used_by: Option<String>,
    /// Set by an approval ([`state::Step::Count`] or the approving one).
    pub count: Option<Count>,
}

/// Insert a newly opened request (state `open`). Another replica may have opened a request
/// for the same action a moment earlier: then nothing is inserted and [`StoreError::Raced`]
/// names that request.
pub fn insert(tx: &mut dyn Tx, row: &Row) -> Result<(), StoreError> {
    let inserted = tx.execute(
        "INSERT INTO approval_requests \
         (id, action_key, state, card, opened_ms, open_until_ms, requester) \
         VALUES (?1, ?2, 'open', ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        &[
            Value::from(&row.id),
            Value::from(&row.action_key),
            Value::from(serde_json::to_string(&row.card).unwrap_or_default()),
            Value::from(ms(row.opened_at)),
            Value::from(ms(row.open_until)),
            Value::from(&row.card.requester),
        ],
    )?;
    if inserted == 0 {
        let other = tx.query_opt(
            "SELECT id FROM approval_requests WHERE action_key = ?1 \
             AND state IN ('open', 'approved')",
            &[Value::from(&row.action_key)],
        )?;
        return Err(StoreError::Raced(match other {
            Some(other) => other.text(0)?,
            None => row.id.clone(),
        }));
    }
    Ok(())
}

/// Record that `attempt_id` asked for `request_id`.
pub fn link(
    tx: &mut dyn Tx,
    request_id: &str,
    attempt_id: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO request_attempts (attempt_id, request_id, at_ms) VALUES (?1, ?2, ?3) \
         ON CONFLICT (attempt_id) DO NOTHING",
        &[
            Value::from(attempt_id),
            Value::from(request_id),
            Value::from(ms(at)),
        ],
    )?;
    Ok(())
}

/// Apply `t` if the request is still `t.from`: `true` if this write won.
pub fn apply(tx: &mut dyn Tx, t: &Transition) -> Result<bool, StoreError> {
    let ended = matches!(t.to, State::Rejected | State::Expired | State::Used).then(|| ms(t.at));
    let decided = matches!(t.to, State::Approved | State::Rejected).then(|| ms(t.at));
    let (before, after) = match &t.count {
        Some(c) => (approvals_text(&c.before), Some(approvals_text(&c.after))),
        // No condition on the approvals: compare the column with itself.
        None => (String::new(), None),
    };
    let changed = tx.execute(
        "UPDATE approval_requests SET state = ?3, reviewer = COALESCE(?4, reviewer), \
         reason = COALESCE(?5, reason), decided_ms = COALESCE(?6, decided_ms), \
         usable_until_ms = COALESCE(?7, usable_until_ms), used_by = COALESCE(?8, used_by), \
         ended_ms = COALESCE(?9, ended_ms), approvals = COALESCE(?11, approvals) \
         WHERE id = ?1 AND state = ?2 AND (?12 = 'any' OR COALESCE(approvals, '') = ?10)",
        &[
            Value::from(&t.id),
            Value::from(t.from.as_str()),
            Value::from(t.to.as_str()),
            Value::from(&t.reviewer),
            Value::from(&t.reason),
            Value::from(decided),
            Value::from(t.usable_until.map(ms)),
            Value::from(&t.used_by),
            Value::from(ended),
            Value::from(before),
            Value::from(after),
            Value::from(if t.count.is_some() { "counted" } else { "any" }),
        ],
    )?;
    Ok(changed == 1)
}

/// A request's columns, and whether a replica other than `?2` holds a call for it.
const SELECT: &str = "SELECT id, action_key, state, card, opened_ms, open_until_ms, reviewer, \
    reason, decided_ms, usable_until_ms, \
    (SELECT COUNT(*) FROM request_attempts a WHERE a.request_id = r.id), \
    CASE WHEN EXISTS (SELECT 1 FROM request_attempts a JOIN parked_calls p \
            ON p.id = a.attempt_id WHERE a.request_id = r.id AND p.outcome = 'pending' \
            AND (p.replica IS NULL OR p.replica <> ?2)) THEN 1 ELSE 0 END, \
    approvals FROM approval_requests r";

/// Request `id` as it stands, whatever its state (`replica`: the one reading).
pub fn one(tx: &mut dyn Tx, id: &str, replica: &str) -> Result<Option<Row>, StoreError> {
    let found = tx.query_opt(
        &format!("{SELECT} WHERE id = ?1"),
        &[Value::from(id), Value::from(replica)],
    )?;
    Ok(match found {
        Some(r) => read(&r)?,
        None => None,
    })
}

/// How many requests [`many`] reads with one statement.
pub const MANY: usize = 64;

/// Requests `ids` (at most [`MANY`]) as they stand, in no particular order (`replica`: the
/// one reading). One round trip for a burst of changes.
pub fn many(tx: &mut dyn Tx, ids: &[String], replica: &str) -> Result<Vec<Row>, StoreError> {
    // Parameter 2 is the reader (in SELECT); the ids are 1 and 3 onwards, padded with "".
    let slots: Vec<String> = std::iter::once(1)
        .chain(3..=MANY + 1)
        .map(|n| format!("?{n}"))
        .collect();
    let mut values = vec![
        Value::from(ids.first().map_or("", String::as_str)),
        Value::from(replica),
    ];
    values.extend((1..MANY).map(|i| Value::from(ids.get(i).map_or("", String::as_str))));
    let rows = tx.query(
        &format!("{SELECT} WHERE id IN ({})", slots.join(", ")),
        &values,
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.extend(read(&r)?);
    }
    Ok(out)
}

/// Which requests to read ([`select`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Open within their TTL, oldest first, at most this many: the cards listed.
    Oldest(usize),
    /// Open past their TTL, not yet expired (at most 500): the expiries to write.
    Due,
}

/// The requests `which` at `now` (`replica`: the one reading).
pub fn select(
    tx: &mut dyn Tx,
    which: Which,
    now: OffsetDateTime,
    replica: &str,
) -> Result<Vec<Row>, StoreError> {
    let filter = match which {
        Which::Oldest(n) => format!(
            "WHERE state = 'open' AND open_until_ms > ?1 ORDER BY opened_ms, id LIMIT {}",
            i64::try_from(n).unwrap_or(i64::MAX)
        ),
        Which::Due => {
            "WHERE state = 'open' AND open_until_ms <= ?1 ORDER BY open_until_ms, id LIMIT 500"
                .to_owned()
        }
    };
    let rows = tx.query(
        &format!("{SELECT} {filter}"),
        &[Value::from(ms(now)), Value::from(replica)],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.extend(read(&r)?);
    }
    Ok(out)
}

/// One row of [`SELECT`]; `None` (logged) if it cannot be read.
fn read(r: &crate::store::sql::Row) -> Result<Option<Row>, StoreError> {
    let id = r.text(0)?;
    let state = state::parse(&r.text(2)?);
    let card = serde_json::from_str::<ParkedCall>(&r.text(3)?).ok();
    let (Some(state), Some(card)) = (state, card) else {
        tracing::error!(%id, "approval request row unreadable; left alone");
        return Ok(None);
    };
    Ok(Some(Row {
        action_key: r.text(1)?,
        state,
        card,
        opened_at: from_ms(r.int(4)?),
        open_until: from_ms(r.int(5)?),
        reviewer: r.opt_text(6)?,
        reason: r.opt_text(7)?.unwrap_or_default(),
        decided_at: r.opt_int(8)?.map(from_ms),
        usable_until: r.opt_int(9)?.map(from_ms),
        attempts: u64::try_from(r.int(10)?).unwrap_or(0),
        waiting: r.int(11)? != 0,
        approvals: r
            .opt_text(12)?
            .filter(|t| !t.is_empty())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
        id,
    }))
}

/// Requests that may still matter at `now`: open within their TTL, approved within their
/// window, rejected within their hold. Open and approved ones whose clock ran out while the
/// gate was down are expired here first (the same conditional write as ever).
pub fn live(tx: &mut dyn Tx, now: OffsetDateTime, replica: &str) -> Result<Vec<Row>, StoreError> {
    let now_ms = Value::from(ms(now));
    tx.execute(
        "UPDATE approval_requests SET state = 'expired', ended_ms = ?1 \
         WHERE (state = 'open' AND open_until_ms <= ?1) \
            OR (state = 'approved' AND usable_until_ms <= ?1)",
        std::slice::from_ref(&now_ms),
    )?;
    let rows = tx.query(
        &format!(
            "{SELECT} WHERE state IN ('open', 'approved') \
             OR (state = 'rejected' AND usable_until_ms > ?1) ORDER BY opened_ms, id"
        ),
        &[now_ms, Value::from(replica)],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.extend(read(&r)?);
    }
    Ok(out)
}
