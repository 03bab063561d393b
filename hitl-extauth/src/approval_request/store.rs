//! The approval requests' rows in the audit database: the schema, the one conditional write
//! per transition, the attempt links, and the reading-back of live requests at start. Runs
//! on the audit writer's thread, inside its transaction (see [`crate::audit`]).

use hitl_wire::extauth::ParkedCall;
use rusqlite::{Connection, Transaction, params};
use time::OffsetDateTime;

use super::state::{self, State};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approval_requests (
    id           TEXT PRIMARY KEY,
    action_key   TEXT NOT NULL,
    state        TEXT NOT NULL,
    card         TEXT NOT NULL,   -- JSON: the ParkedCall reviewers see (canonical arguments)
    opened_ms    INTEGER NOT NULL,
    open_until_ms INTEGER NOT NULL, -- APPROVAL_TTL
    reviewer     TEXT,
    reason       TEXT,
    decided_ms   INTEGER,
    usable_until_ms INTEGER,      -- approved: APPROVAL_WINDOW; rejected: the hold
    used_by      TEXT,            -- the attempt that spent the approval
    ended_ms     INTEGER
);
-- Attach, don't duplicate: at most one live request per action.
CREATE UNIQUE INDEX IF NOT EXISTS approval_requests_live_action
    ON approval_requests (action_key) WHERE state IN ('open', 'approved');
-- One row per tools/call that asked for a request (its outcome is in parked_calls).
CREATE TABLE IF NOT EXISTS request_attempts (
    attempt_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    at_ms      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS request_attempts_by_request ON request_attempts (request_id);
";

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
}

/// Insert a newly opened request (state `open`).
pub fn insert(tx: &Transaction<'_>, row: &Row) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO approval_requests (id, action_key, state, card, opened_ms, open_until_ms) \
         VALUES (?1, ?2, 'open', ?3, ?4, ?5)",
        params![
            row.id,
            row.action_key,
            serde_json::to_string(&row.card).unwrap_or_default(),
            ms(row.opened_at),
            ms(row.open_until),
        ],
    )?;
    Ok(())
}

/// Record that `attempt_id` asked for `request_id`.
pub fn link(
    tx: &Transaction<'_>,
    request_id: &str,
    attempt_id: &str,
    at: OffsetDateTime,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO request_attempts (attempt_id, request_id, at_ms) VALUES (?1, ?2, ?3) \
         ON CONFLICT (attempt_id) DO NOTHING",
        params![attempt_id, request_id, ms(at)],
    )?;
    Ok(())
}

/// Apply `t` if the request is still `t.from`: `true` if this write won.
pub fn apply(tx: &Transaction<'_>, t: &Transition) -> rusqlite::Result<bool> {
    let ended = matches!(t.to, State::Rejected | State::Expired | State::Used).then(|| ms(t.at));
    let decided = matches!(t.to, State::Approved | State::Rejected).then(|| ms(t.at));
    let changed = tx.execute(
        "UPDATE approval_requests SET state = ?3, reviewer = COALESCE(?4, reviewer), \
         reason = COALESCE(?5, reason), decided_ms = COALESCE(?6, decided_ms), \
         usable_until_ms = COALESCE(?7, usable_until_ms), used_by = COALESCE(?8, used_by), \
         ended_ms = COALESCE(?9, ended_ms) WHERE id = ?1 AND state = ?2",
        params![
            t.id,
            t.from.as_str(),
            t.to.as_str(),
            t.reviewer,
            t.reason,
            decided,
            t.usable_until.map(ms),
            t.used_by,
            ended,
        ],
    )?;
    Ok(changed == 1)
}

/// Requests that may still matter at `now`: open within their TTL, approved within their
/// window, rejected within their hold. Open and approved ones whose clock ran out while the
/// gate was down are expired here first (the same conditional write as ever).
pub fn live(conn: &mut Connection, now: OffsetDateTime) -> rusqlite::Result<Vec<Row>> {
    let tx = conn.transaction()?;
    let now_ms = ms(now);
    tx.execute(
        "UPDATE approval_requests SET state = 'expired', ended_ms = ?1 \
         WHERE (state = 'open' AND open_until_ms <= ?1) \
            OR (state = 'approved' AND usable_until_ms <= ?1)",
        [now_ms],
    )?;
    let rows = {
        let mut stmt = tx.prepare(
            "SELECT id, action_key, state, card, opened_ms, open_until_ms, reviewer, reason, \
             decided_ms, usable_until_ms, \
             (SELECT COUNT(*) FROM request_attempts a WHERE a.request_id = r.id) \
             FROM approval_requests r WHERE state IN ('open', 'approved') \
             OR (state = 'rejected' AND usable_until_ms > ?1) ORDER BY opened_ms, id",
        )?;
        stmt.query_map([now_ms], |r| {
            let state: String = r.get(2)?;
            let card: String = r.get(3)?;
            Ok((
                state::parse(&state),
                serde_json::from_str::<ParkedCall>(&card).ok(),
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                [r.get::<_, i64>(4)?, r.get::<_, i64>(5)?],
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                [r.get::<_, Option<i64>>(8)?, r.get::<_, Option<i64>>(9)?],
                r.get::<_, i64>(10)?,
            ))
        })?
        .filter_map(|row| match row {
            Ok((
                Some(state),
                Some(card),
                id,
                action_key,
                [opened, until],
                reviewer,
                reason,
                [decided, usable],
                attempts,
            )) => Some(Ok(Row {
                id,
                action_key,
                state,
                card,
                opened_at: from_ms(opened),
                open_until: from_ms(until),
                reviewer,
                reason: reason.unwrap_or_default(),
                decided_at: decided.map(from_ms),
                usable_until: usable.map(from_ms),
                attempts: u64::try_from(attempts).unwrap_or(0),
            })),
            Ok((_, _, id, ..)) => {
                tracing::error!(%id, "approval request row unreadable; left alone");
                None
            }
            Err(e) => Some(Err(e)),
        })
        .collect::<rusqlite::Result<Vec<Row>>>()?
    };
    tx.commit()?;
    Ok(rows)
}
