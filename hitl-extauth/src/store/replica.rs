//! This gate process as one replica of a shared store: its id, its heartbeat, and what
//! becomes of the calls a replica held when it stops.
//!
//! A held call lives in the memory of the replica whose gateway connection it came on, and
//! its `pending` row names that replica. Every replica beats once per [`HEARTBEAT`]; in the
//! same transaction it closes as `lost` the pending rows of replicas that have not beaten for
//! [`DEAD_AFTER`] (a killed pod, a partitioned one) — their requests stay open, and a retry
//! through a live replica attaches. A replica wrongly taken for dead fails closed: its held
//! calls' rows are closed, so their approvals can no longer be recorded and they are denied.
//! The clocks compared are the replicas' own (`seen_ms`), which Kubernetes nodes keep in
//! step to well within [`DEAD_AFTER`].
//!
//! A replica restarting under the same `REPLICA_NAME` (a pod's container restarted: pod names
//! are unique) knows its previous life is over, and closes that life's calls at once.
//!
//! With SQLite there is one process: at start every row still `pending` is its own, lost.

use std::time::Duration;

use time::OffsetDateTime;

use super::{
    StoreError,
    sql::{Tx, Value},
    trail,
};
use crate::approval_request::rows::ms;

/// How often a replica says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a replica may be silent before the calls it held are closed as lost.
pub const DEAD_AFTER: Duration = Duration::from_secs(10);

/// The columns replicas add to the first schema: `(table, column, type)`.
pub const COLUMNS: [(&str, &str, &str); 2] = [
    ("parked_calls", "replica", "TEXT"), // who holds a pending call
    ("approval_requests", "requester", "TEXT"), // for the fleet-wide caps
];

/// What replicas need beyond the columns.
pub const TABLES: &str = "
CREATE TABLE IF NOT EXISTS replicas (
    id         TEXT PRIMARY KEY,
    name       TEXT,            -- REPLICA_NAME, when set: unique to one replica at a time
    started_ms BIGINT NOT NULL,
    seen_ms    BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS parked_calls_pending_by_requester
    ON parked_calls (requester) WHERE outcome = 'pending';
CREATE INDEX IF NOT EXISTS approval_requests_by_requester
    ON approval_requests (requester, state);
CREATE INDEX IF NOT EXISTS approval_requests_by_state
    ON approval_requests (state, usable_until_ms);
";

/// PostgreSQL's migration 2: the columns (migration 3 is [`TABLES`]).
pub const COLUMNS_SQL: &str = "
ALTER TABLE parked_calls ADD COLUMN IF NOT EXISTS replica TEXT;
ALTER TABLE approval_requests ADD COLUMN IF NOT EXISTS requester TEXT;
";

/// `REPLICA_NAME` as given, if it names anything.
pub fn name(name: Option<&str>) -> Option<&str> {
    name.map(str::trim).filter(|n| !n.is_empty())
}

/// This start's id: `name` (`REPLICA_NAME`, e.g. the pod's) and a random suffix, so a
/// restarted replica never takes on what its previous life held.
pub fn id(name: Option<&str>) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{}-{}",
        self::name(name).unwrap_or("hitl-extauth"),
        &suffix[..8]
    )
}

/// At start, as replica `replica` named `name`: register, and close as lost the calls of
/// this name's previous lives: how many, and the requests they were attempts of (whose cards,
/// on the other replicas, now say nobody waits). (Silent replicas are judged later, by
/// [`beat`].)
pub fn arrive(
    tx: &mut dyn Tx,
    replica: &str,
    name: Option<&str>,
    now: OffsetDateTime,
) -> Result<(usize, Vec<String>), StoreError> {
    let mut lost = 0;
    let mut requests = Vec::new();
    if let Some(name) = name {
        let previous = tx.query(
            "SELECT p.id, p.received_at, a.request_id FROM parked_calls p \
             JOIN replicas r ON r.id = p.replica \
             LEFT JOIN request_attempts a ON a.attempt_id = p.id \
             WHERE p.outcome = 'pending' AND r.name = ?1 AND r.id <> ?2",
            &[Value::from(name), Value::from(replica)],
        )?;
        for row in &previous {
            let id = row.text(0)?;
            trail::close_lost(tx, &id, &row.text(1)?, super::LOST_REASON, now)?;
            tracing::warn!(%id, "call was pending when this replica stopped; closed as lost");
            requests.extend(row.opt_text(2)?);
        }
        lost = previous.len();
        tx.execute(
            "DELETE FROM replicas WHERE name = ?1 AND id <> ?2",
            &[Value::from(name), Value::from(replica)],
        )?;
    }
    tx.execute(
        "INSERT INTO replicas (id, name, started_ms, seen_ms) VALUES (?1, ?2, ?3, ?3) \
         ON CONFLICT (id) DO NOTHING",
        &[
            Value::from(replica),
            Value::from(name),
            Value::from(ms(now)),
        ],
    )?;
    beat(tx, replica, now, false)?;
    requests.sort();
    requests.dedup();
    Ok((lost, requests))
}

/// The reason on a call whose replica stopped.
pub fn lost_reason(replica: &str) -> String {
    format!(
        "the hitl-extauth replica {replica} holding this call stopped (no heartbeat for {} s); \
         closed as lost — its approval request stays open: send the call again",
        DEAD_AFTER.as_secs()
    )
}

/// Say `replica` is alive at `now` (registering it if it is not), and — if it may `judge` —
/// close as lost the calls of replicas silent since `now - DEAD_AFTER`: how many, and the
/// requests they were attempts of (whose cards now say nobody waits). A replica judges only
/// once it has itself beaten without a break for `DEAD_AFTER`: after the store was away,
/// every replica is silent for as long, and none must take the others for dead before they
/// had the time to beat again.
pub fn beat(
    tx: &mut dyn Tx,
    replica: &str,
    now: OffsetDateTime,
    judge: bool,
) -> Result<(usize, Vec<String>), StoreError> {
    let at = Value::from(ms(now));
    let seen = tx.execute(
        "UPDATE replicas SET seen_ms = ?2 WHERE id = ?1",
        &[Value::from(replica), at.clone()],
    )?;
    if seen == 0 {
        // Taken for dead (silent too long) and removed: its held calls are closed, and it
        // goes on as a replica holding none of them (their decisions will not be recorded).
        tracing::error!(%replica, "this replica was taken for dead by the others; its held calls were closed as lost");
        tx.execute(
            "INSERT INTO replicas (id, started_ms, seen_ms) VALUES (?1, ?2, ?2) \
             ON CONFLICT (id) DO NOTHING",
            &[Value::from(replica), at],
        )?;
    }
    if !judge {
        return Ok((0, Vec::new()));
    }
    let cutoff = ms(now) - i64::try_from(DEAD_AFTER.as_millis()).unwrap_or(i64::MAX);
    let orphans = tx.query(
        "SELECT p.id, p.received_at, p.replica, a.request_id FROM parked_calls p \
         LEFT JOIN request_attempts a ON a.attempt_id = p.id \
         WHERE p.outcome = 'pending' AND (p.replica IS NULL OR p.replica NOT IN \
         (SELECT id FROM replicas WHERE seen_ms > ?1)) ORDER BY p.received_at, p.id",
        &[Value::from(cutoff)],
    )?;
    let mut requests = Vec::new();
    for row in &orphans {
        let id = row.text(0)?;
        let holder = row.opt_text(2)?.unwrap_or_else(|| "(unknown)".into());
        trail::close_lost(tx, &id, &row.text(1)?, &lost_reason(&holder), now)?;
        tracing::warn!(%id, replica = %holder, "the replica holding this call stopped; closed as lost");
        requests.extend(row.opt_text(3)?);
    }
    tx.execute(
        "DELETE FROM replicas WHERE seen_ms <= ?1",
        &[Value::from(cutoff)],
    )?;
    requests.sort();
    requests.dedup();
    Ok((orphans.len(), requests))
}
