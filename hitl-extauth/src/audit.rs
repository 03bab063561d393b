//! The durable audit trail in SQLite: one row per parked call, inserted when it parks and
//! closed with its outcome. One writer thread owns the connection; the async side only
//! queues commands, so no SQLite call ever runs on a runtime worker.
//!
//! Commands are applied in the order they were queued, a burst of them per transaction.
//! Closing a call upserts the whole row, so the outcome lands even if the insert was lost.
//! On open, rows still `pending` (the process stopped while they waited) are closed as `lost`.
//!
//! The same thread writes the approval requests (`crate::approval_request::store`): a park
//! and the request it opens or attaches to commit together, and each request transition is
//! one conditional write acknowledged with whether it won.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, mpsc},
    thread,
};

use hitl_wire::extauth::{DecidedCall, HistoryPage, HistoryQuery, Outcome, ParkedCall};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use tokio::sync::oneshot;

use crate::approval_request::store::{self as requests, Transition};

/// What a park writes about its approval request, in the park's own transaction.
#[derive(Debug)]
pub enum RequestWrite {
    /// The park opens this request.
    Open(Box<requests::Row>),
    /// The park attaches to the request with this id.
    Attach(String),
}

/// Default and largest `/history` page.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;
/// Most commands applied in one transaction.
const MAX_BATCH: usize = 512;
/// The reason recorded on calls closed as `lost`.
pub const LOST_REASON: &str =
    "hitl-extauth stopped while this call was waiting for review; closed as lost on restart";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("audit database holds a malformed {what} for call {id}: {detail}")]
    Corrupt {
        what: &'static str,
        id: String,
        detail: String,
    },
    #[error("bad history cursor {0:?}")]
    BadCursor(String),
    #[error("audit database: commit failed: {0}")]
    Commit(String),
    #[error("the audit writer has stopped")]
    WriterGone,
    #[error("audit database {path}: cannot make it owner-only: {source}")]
    Permissions {
        path: String,
        source: std::io::Error,
    },
}

/// Where a call stands in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Pending,
    Closed(Outcome),
}

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

enum Command {
    Park {
        call: Arc<ParkedCall>,
        request: Option<RequestWrite>,
        ack: Reply<()>,
    },
    /// One request transition; `link` is an attempt that asked for it (a use); `record` a
    /// history record written with it if it wins (a decision nobody waits for, an expiry).
    Transition {
        transition: Box<Transition>,
        link: Option<String>,
        record: Option<Box<DecidedCall>>,
        ack: Reply<bool>,
    },
    Close {
        record: Box<DecidedCall>,
        ack: Option<Reply<()>>,
    },
    History {
        query: HistoryQuery,
        reply: Reply<HistoryPage>,
    },
    Lookup {
        id: String,
        reply: Reply<Option<Standing>>,
    },
    /// A coalesced record stands for one more request.
    Bump {
        id: String,
        count: u64,
        at: OffsetDateTime,
    },
    Flush(Reply<()>),
}

/// Handle to the audit trail; cheap to clone.
#[derive(Debug, Clone)]
pub struct Audit {
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Park { .. } => "Park",
            Command::Close { .. } => "Close",
            Command::Transition { .. } => "Transition",
            Command::History { .. } => "History",
            Command::Lookup { .. } => "Lookup",
            Command::Bump { .. } => "Bump",
            Command::Flush(_) => "Flush",
        })
    }
}

/// What opening the trail found.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// Calls that were pending when the previous process stopped, now closed as `lost`.
    pub lost: usize,
    /// Approval requests that outlive the process: open, approved unused, rejected in hold.
    pub requests: Vec<requests::Row>,
}

impl Audit {
    /// Open (or create) the database at `path` (`:memory:` for none), close leftovers as
    /// `lost`, and start the writer thread.
    pub fn open(path: &Path) -> Result<(Self, Opened), AuditError> {
        owner_only(path)?;
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Approvals are only acted on once committed: make a commit mean "on disk".
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(requests::SCHEMA)?;
        add_count_column(&conn)?;
        let mut next_seq: i64 = conn.query_row(
            "SELECT COALESCE(MAX(closed_seq), 0) + 1 FROM parked_calls",
            [],
            |r| r.get(0),
        )?;
        let lost = close_leftovers(&mut conn, &mut next_seq, OffsetDateTime::now_utc())?;
        let requests = requests::live(&mut conn, OffsetDateTime::now_utc())?;
        let (commands, rx) = mpsc::channel();
        thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || Writer { conn, next_seq }.run(rx))
            .map_err(|e| AuditError::Corrupt {
                what: "writer thread",
                id: String::new(),
                detail: e.to_string(),
            })?;
        Ok((Self { commands }, Opened { lost, requests }))
    }

    fn send(&self, command: Command) {
        if let Err(mpsc::SendError(command)) = self.commands.send(command) {
            tracing::error!(?command, "audit writer has stopped; record not written");
        }
    }

    /// Queue the insert of a newly parked call; `Ok` from the returned receiver means
    /// committed. A burst of parks shares one transaction (group commit), so each waits for
    /// one fsync, not one apiece.
    pub fn park(&self, call: Arc<ParkedCall>) -> oneshot::Receiver<Result<(), AuditError>> {
        self.park_for(call, None)
    }

    /// [`Audit::park`], with the approval request the park opens or attaches to written in
    /// the same transaction.
    pub fn park_for(
        &self,
        call: Arc<ParkedCall>,
        request: Option<RequestWrite>,
    ) -> oneshot::Receiver<Result<(), AuditError>> {
        let (ack, committed) = oneshot::channel();
        self.send(Command::Park { call, request, ack });
        committed
    }

    /// Queue one request transition (and the attempt that caused it, if any); the receiver
    /// says, once committed, whether this write won (`false`: the request was no longer in
    /// `transition.from`).
    pub fn transition(
        &self,
        transition: Transition,
        link: Option<String>,
    ) -> oneshot::Receiver<Result<bool, AuditError>> {
        self.transition_recorded(transition, link, None)
    }

    /// [`Audit::transition`], and if it wins, `record` on the history in the same commit.
    pub fn transition_recorded(
        &self,
        transition: Transition,
        link: Option<String>,
        record: Option<DecidedCall>,
    ) -> oneshot::Receiver<Result<bool, AuditError>> {
        let (ack, won) = oneshot::channel();
        self.send(Command::Transition {
            transition: Box::new(transition),
            link,
            record: record.map(Box::new),
            ack,
        });
        won
    }

    /// Queue the close of a call; `Ok` from the returned receiver means committed.
    pub fn close(&self, record: DecidedCall) -> oneshot::Receiver<Result<(), AuditError>> {
        let (ack, committed) = oneshot::channel();
        self.send(Command::Close {
            record: Box::new(record),
            ack: Some(ack),
        });
        committed
    }

    /// Queue a finished record nobody waits for (a denial).
    pub fn record(&self, record: DecidedCall) {
        self.send(Command::Close {
            record: Box::new(record),
            ack: None,
        });
    }

    /// Queue "record `id` now stands for `count` requests, the last at `at`".
    pub fn bump(&self, id: &str, count: u64, at: OffsetDateTime) {
        self.send(Command::Bump {
            id: id.to_owned(),
            count,
            at,
        });
    }

    /// Closed calls, newest first.
    pub async fn history(&self, query: HistoryQuery) -> Result<HistoryPage, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::History { query, reply });
        answer.await.map_err(|_| AuditError::WriterGone)?
    }

    /// Wait until everything queued so far is committed (or the writer is gone).
    pub async fn flush(&self) {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Flush(reply));
        let _ = answer.await;
    }

    /// Whether `id` was ever parked here, and how it stands. Sees every command queued before.
    pub async fn lookup(&self, id: &str) -> Result<Option<Standing>, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Lookup {
            id: id.to_owned(),
            reply,
        });
        answer.await.map_err(|_| AuditError::WriterGone)?
    }
}

/// The trail holds every call's arguments and who asked: readable by its owner only. The
/// database file is created `0600` (SQLite gives its `-wal` and `-shm` files the database's
/// mode) or tightened, with any journal files beside it, before SQLite opens it.
fn owner_only(path: &Path) -> Result<(), AuditError> {
    if path.as_os_str() == ":memory:" || path.as_os_str().is_empty() {
        return Ok(());
    }
    let failed = |source: std::io::Error| AuditError::Permissions {
        path: path.display().to_string(),
        source,
    };
    hitl_wire::private::database(path).map_err(failed)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS parked_calls (
    id          TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    headers     TEXT NOT NULL,  -- JSON object, as shown to reviewers
    rpc_method  TEXT NOT NULL,
    tool_name   TEXT NOT NULL,
    tool_args   TEXT NOT NULL,  -- JSON
    body        TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    requester   TEXT,
    caller      TEXT NOT NULL,  -- JSON object: the identity headers only
    outcome     TEXT NOT NULL DEFAULT 'pending',
    reviewer    TEXT,
    reason      TEXT NOT NULL DEFAULT '',
    decided_at  TEXT,
    waited_ms   INTEGER,
    closed_seq  INTEGER UNIQUE, -- order of closing: the /history cursor
    count       INTEGER NOT NULL DEFAULT 1 -- identical denials coalesced into this row
);
CREATE INDEX IF NOT EXISTS parked_calls_by_outcome ON parked_calls (outcome, closed_seq);
CREATE INDEX IF NOT EXISTS parked_calls_by_tool ON parked_calls (tool_name, closed_seq);
";

const COLUMNS: &str = "id, received_at, expires_at, method, path, headers, rpc_method, \
    tool_name, tool_args, body, body_sha256, requester, caller, outcome, reviewer, reason, \
    decided_at, waited_ms, closed_seq, count";

/// Databases written before denials were recorded have no `count` column.
fn add_count_column(conn: &Connection) -> Result<(), AuditError> {
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('parked_calls') WHERE name = 'count'")?
        .exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE parked_calls ADD COLUMN count INTEGER NOT NULL DEFAULT 1")?;
    }
    Ok(())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn waited_ms(from: OffsetDateTime, to: OffsetDateTime) -> u64 {
    u64::try_from((to - from).whole_milliseconds()).unwrap_or(0)
}

fn close_leftovers(
    conn: &mut Connection,
    next_seq: &mut i64,
    now: OffsetDateTime,
) -> Result<usize, AuditError> {
    let tx = conn.transaction()?;
    let leftovers: Vec<(String, String)> = tx
        .prepare("SELECT id, received_at FROM parked_calls WHERE outcome = 'pending' ORDER BY received_at, id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, received_at) in &leftovers {
        let waited = OffsetDateTime::parse(received_at, &Rfc3339)
            .map(|received| waited_ms(received, now))
            .unwrap_or(0);
        tx.execute(
            "UPDATE parked_calls SET outcome = 'lost', reason = ?2, decided_at = ?3, \
             waited_ms = ?4, closed_seq = ?5 WHERE id = ?1",
            params![
                id,
                LOST_REASON,
                rfc3339(now),
                i64::try_from(waited).unwrap_or(i64::MAX),
                *next_seq
            ],
        )?;
        *next_seq += 1;
        tracing::warn!(%id, "call was pending when hitl-extauth stopped; closed as lost");
    }
    tx.commit()?;
    Ok(leftovers.len())
}

struct Writer {
    conn: Connection,
    next_seq: i64,
}

impl Writer {
    fn run(mut self, commands: mpsc::Receiver<Command>) {
        while let Ok(first) = commands.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match commands.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            self.apply(batch);
        }
        tracing::debug!("audit writer: every handle dropped, stopping");
    }

    /// Apply a batch in one transaction; acknowledge parks and closes only after the commit.
    fn apply(&mut self, batch: Vec<Command>) {
        let mut acks: Vec<(Reply<()>, Result<(), AuditError>)> = Vec::new();
        let mut won: Vec<(Reply<bool>, Result<bool, AuditError>)> = Vec::new();
        let next_seq = &mut self.next_seq;
        let tx = match self.conn.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, "audit: cannot begin a transaction; dropping {} commands", batch.len());
                return;
            }
        };
        for command in batch {
            match command {
                Command::Park { call, request, ack } => {
                    let result =
                        park_with_request(&tx, &call, request.as_ref()).map_err(AuditError::from);
                    if let Err(e) = &result {
                        tracing::error!(id = %call.id, error = %e, "audit: recording a parked call failed");
                    }
                    acks.push((ack, result));
                }
                Command::Close { record, ack } => {
                    let result = upsert_closed(&tx, &record, *next_seq);
                    *next_seq += 1;
                    if let Err(e) = &result {
                        tracing::error!(id = %record.call.id, error = %e, "audit: recording an outcome failed");
                    }
                    if let Some(ack) = ack {
                        acks.push((ack, result));
                    }
                }
                Command::History { query, reply } => {
                    let _ = reply.send(history(&tx, &query));
                }
                Command::Lookup { id, reply } => {
                    let _ = reply.send(lookup(&tx, &id));
                }
                Command::Bump { id, count, at } => {
                    if let Err(e) = tx.execute(
                        "UPDATE parked_calls SET count = ?2, decided_at = ?3 WHERE id = ?1",
                        params![id, i64::try_from(count).unwrap_or(i64::MAX), rfc3339(at)],
                    ) {
                        tracing::error!(%id, error = %e, "audit: counting a repeated denial failed");
                    }
                }
                Command::Transition {
                    transition,
                    link,
                    record,
                    ack,
                } => {
                    let result = link
                        .map_or(Ok(()), |attempt| {
                            requests::link(&tx, &transition.id, &attempt, transition.at)
                        })
                        .and_then(|()| requests::apply(&tx, &transition))
                        .map_err(AuditError::from)
                        .and_then(|won| match record {
                            Some(record) if won => {
                                *next_seq += 1;
                                upsert_closed(&tx, &record, *next_seq - 1).map(|()| won)
                            }
                            _ => Ok(won),
                        });
                    if let Err(e) = &result {
                        tracing::error!(id = %transition.id, error = %e, "audit: a request transition failed");
                    }
                    won.push((ack, result));
                }
                Command::Flush(ack) => acks.push((ack, Ok(()))),
            }
        }
        let committed = tx.commit();
        if let Err(e) = &committed {
            tracing::error!(error = %e, "audit: commit failed");
        }
        for (ack, result) in acks {
            let _ = ack.send(match (&committed, result) {
                (Ok(()), result) => result,
                (Err(e), _) => Err(AuditError::Commit(e.to_string())),
            });
        }
        for (ack, result) in won {
            let _ = ack.send(match (&committed, result) {
                (Ok(()), result) => result,
                (Err(e), _) => Err(AuditError::Commit(e.to_string())),
            });
        }
    }
}

fn caller(call: &ParkedCall) -> String {
    let identity: BTreeMap<&str, &str> = hitl_wire::headers::IDENTITY
        .iter()
        .filter_map(|name| call.headers.get(*name).map(|v| (*name, v.as_str())))
        .collect();
    serde_json::to_string(&identity).unwrap_or_else(|_| "{}".into())
}

/// A park's row, and its request's: opened (inserted) or attached to (linked).
fn park_with_request(
    tx: &Transaction<'_>,
    call: &ParkedCall,
    request: Option<&RequestWrite>,
) -> rusqlite::Result<()> {
    let at = call.received_at;
    match request {
        None => {}
        Some(RequestWrite::Open(row)) => {
            requests::insert(tx, row)?;
            requests::link(tx, &row.id, &call.id, at)?;
        }
        Some(RequestWrite::Attach(id)) => requests::link(tx, id, &call.id, at)?,
    }
    insert_parked(tx, call).map(drop)
}

fn insert_parked(tx: &Transaction<'_>, call: &ParkedCall) -> rusqlite::Result<usize> {
    tx.execute(
        &format!(
            "INSERT INTO parked_calls ({COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'pending', NULL, '', NULL, NULL, NULL, 1) \
             ON CONFLICT (id) DO NOTHING"
        ),
        params![
            call.id,
            rfc3339(call.received_at),
            rfc3339(call.expires_at),
            call.method,
            call.path,
            serde_json::to_string(&call.headers).unwrap_or_default(),
            call.rpc_method,
            call.tool_name,
            crate::park::arguments(call).to_string(),
            call.body,
            call.body_sha256,
            call.requester,
            caller(call),
        ],
    )
}

fn upsert_closed(tx: &Transaction<'_>, record: &DecidedCall, seq: i64) -> Result<(), AuditError> {
    let call = &record.call;
    let changed = tx.execute(
        &format!(
            "INSERT INTO parked_calls ({COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) \
             ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome, \
             reviewer = excluded.reviewer, reason = excluded.reason, \
             decided_at = excluded.decided_at, waited_ms = excluded.waited_ms, \
             closed_seq = excluded.closed_seq \
             WHERE parked_calls.outcome = 'pending'"
        ),
        params![
            call.id,
            rfc3339(call.received_at),
            rfc3339(call.expires_at),
            call.method,
            call.path,
            serde_json::to_string(&call.headers).unwrap_or_default(),
            call.rpc_method,
            call.tool_name,
            crate::park::arguments(call).to_string(),
            call.body,
            call.body_sha256,
            call.requester,
            caller(call),
            record.outcome.as_str(),
            record.reviewer,
            record.reason,
            rfc3339(record.decided_at),
            i64::try_from(record.waited_ms).unwrap_or(i64::MAX),
            seq,
            i64::try_from(record.count).unwrap_or(i64::MAX),
        ],
    )?;
    if changed == 0 {
        return Err(AuditError::Corrupt {
            what: "outcome",
            id: call.id.clone(),
            detail: "the call was already closed".into(),
        });
    }
    Ok(())
}

fn lookup(tx: &Transaction<'_>, id: &str) -> Result<Option<Standing>, AuditError> {
    let outcome: Option<String> = tx
        .query_row(
            "SELECT outcome FROM parked_calls WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    outcome
        .map(|o| match o.as_str() {
            "pending" => Ok(Standing::Pending),
            other => parse_outcome(id, other).map(Standing::Closed),
        })
        .transpose()
}

fn parse_outcome(id: &str, text: &str) -> Result<Outcome, AuditError> {
    Outcome::ALL
        .into_iter()
        .find(|o| o.as_str() == text)
        .ok_or_else(|| AuditError::Corrupt {
            what: "outcome",
            id: id.to_owned(),
            detail: text.to_owned(),
        })
}

fn history(tx: &Transaction<'_>, query: &HistoryQuery) -> Result<HistoryPage, AuditError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let before = query
        .before
        .as_deref()
        .map(|b| {
            b.parse::<i64>()
                .map_err(|_| AuditError::BadCursor(b.to_owned()))
        })
        .transpose()?;
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM parked_calls WHERE outcome != 'pending' \
         AND (?1 IS NULL OR closed_seq < ?1) AND (?2 IS NULL OR outcome = ?2) \
         AND (?3 IS NULL OR tool_name = ?3) ORDER BY closed_seq DESC LIMIT ?4"
    ))?;
    let rows: Vec<(i64, Result<DecidedCall, AuditError>)> = stmt
        .query_map(
            params![
                before,
                query.outcome.map(Outcome::as_str),
                query.tool,
                i64::from(limit) + 1
            ],
            |row| Ok((row.get::<_, i64>(18)?, decided_from_row(row))),
        )?
        .collect::<Result<_, _>>()?;
    let more = rows.len() > limit as usize;
    let mut items = Vec::with_capacity(limit as usize);
    let mut last_seq = None;
    for (seq, record) in rows.into_iter().take(limit as usize) {
        items.push(record?);
        last_seq = Some(seq);
    }
    Ok(HistoryPage {
        items,
        next_before: if more {
            last_seq.map(|s| s.to_string())
        } else {
            None
        },
    })
}

fn decided_from_row(row: &Row<'_>) -> Result<DecidedCall, AuditError> {
    let id: String = row.get(0)?;
    let corrupt = |what: &'static str, detail: String| AuditError::Corrupt {
        what,
        id: id.clone(),
        detail,
    };
    let time = |idx: usize, what: &'static str| -> Result<OffsetDateTime, AuditError> {
        let text: String = row.get(idx)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(|e| corrupt(what, e.to_string()))
    };
    let json = |idx: usize, what: &'static str| -> Result<serde_json::Value, AuditError> {
        let text: String = row.get(idx)?;
        serde_json::from_str(&text).map_err(|e| corrupt(what, e.to_string()))
    };
    let headers: BTreeMap<String, String> = serde_json::from_value(json(5, "headers")?)
        .map_err(|e| corrupt("headers", e.to_string()))?;
    let claimed_requester = hitl_wire::headers::claimed_requester(&headers);
    let outcome_text: String = row.get(13)?;
    let waited: Option<i64> = row.get(17)?;
    let count: i64 = row.get(19)?;
    Ok(DecidedCall {
        call: ParkedCall {
            received_at: time(1, "received_at")?,
            expires_at: time(2, "expires_at")?,
            method: row.get(3)?,
            path: row.get(4)?,
            headers,
            rpc_method: row.get(6)?,
            tool_name: row.get(7)?,
            tool_args: json(8, "tool_args")?,
            body: row.get(9)?,
            body_sha256: row.get(10)?,
            requester: row.get(11)?,
            claimed_requester,
            id: id.clone(),
            preview_of_bytes: None,
            request: None,
        },
        outcome: parse_outcome(&id, &outcome_text)?,
        reviewer: row.get(14)?,
        reason: row.get(15)?,
        decided_at: time(16, "decided_at")?,
        waited_ms: waited.and_then(|w| u64::try_from(w).ok()).unwrap_or(0),
        count: u64::try_from(count).unwrap_or(1),
    })
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    fn call(id: &str, tool: &str) -> Arc<ParkedCall> {
        let received_at = OffsetDateTime::now_utc();
        Arc::new(ParkedCall {
            id: id.into(),
            received_at,
            method: "POST".into(),
            path: "/privileged/mcp".into(),
            headers: [
                ("x-user-id".to_owned(), "alice".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
            .into(),
            rpc_method: "tools/call".into(),
            tool_name: tool.into(),
            tool_args: serde_json::json!({"target_version": "v3"}),
            body: "{}".into(),
            body_sha256: "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".into(),
            expires_at: received_at + Duration::seconds(600),
            requester: Some("alice".into()),
            claimed_requester: Some("alice".into()),
            preview_of_bytes: None,
            request: None,
        })
    }

    fn closed(call: &ParkedCall, outcome: Outcome) -> DecidedCall {
        DecidedCall {
            call: call.clone(),
            outcome,
            reviewer: Some("bob".into()),
            reason: format!("{} by bob", outcome.as_str()),
            decided_at: call.received_at + Duration::milliseconds(1500),
            waited_ms: 1500,
            count: 1,
        }
    }

    #[tokio::test]
    async fn park_close_history_lookup() {
        let (audit, opened) = Audit::open(Path::new(":memory:")).unwrap();
        assert_eq!(opened.lost, 0);
        let a = call("a", "run_migration");
        let b = call("b", "truncate_table");
        audit.park(a.clone());
        audit.park(b.clone());
        assert_eq!(audit.lookup("a").await.unwrap(), Some(Standing::Pending));
        assert_eq!(audit.lookup("zzz").await.unwrap(), None);
        assert!(
            audit
                .history(HistoryQuery::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );

        audit
            .close(closed(&a, Outcome::Approved))
            .await
            .unwrap()
            .unwrap();
        audit
            .close(closed(&b, Outcome::Rejected))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            audit.lookup("a").await.unwrap(),
            Some(Standing::Closed(Outcome::Approved))
        );

        let page = audit.history(HistoryQuery::default()).await.unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(
            page.items[0],
            closed(&b, Outcome::Rejected),
            "newest first, round trip"
        );
        assert_eq!(page.items[1].call.id, "a");
        assert_eq!(page.next_before, None);
    }

    #[tokio::test]
    async fn second_close_is_refused() {
        let (audit, _) = Audit::open(Path::new(":memory:")).unwrap();
        let a = call("a", "run_migration");
        audit.park(a.clone());
        audit
            .close(closed(&a, Outcome::Expired))
            .await
            .unwrap()
            .unwrap();
        assert!(
            audit
                .close(closed(&a, Outcome::Approved))
                .await
                .unwrap()
                .is_err()
        );
        assert_eq!(
            audit.lookup("a").await.unwrap(),
            Some(Standing::Closed(Outcome::Expired))
        );
    }

    #[tokio::test]
    async fn close_without_park_still_records() {
        let (audit, _) = Audit::open(Path::new(":memory:")).unwrap();
        let a = call("a", "run_migration");
        audit
            .close(closed(&a, Outcome::Abandoned))
            .await
            .unwrap()
            .unwrap();
        audit.park(a.clone());
        assert_eq!(
            audit.lookup("a").await.unwrap(),
            Some(Standing::Closed(Outcome::Abandoned))
        );
    }

    #[tokio::test]
    async fn history_pages_and_filters() {
        let (audit, _) = Audit::open(Path::new(":memory:")).unwrap();
        for i in 0..5 {
            let c = call(
                &format!("c{i}"),
                if i % 2 == 0 { "run_migration" } else { "other" },
            );
            audit.park(c.clone());
            let outcome = if i < 3 {
                Outcome::Approved
            } else {
                Outcome::Rejected
            };
            audit.close(closed(&c, outcome)).await.unwrap().unwrap();
        }
        let ids = |page: &HistoryPage| {
            page.items
                .iter()
                .map(|r| r.call.id.clone())
                .collect::<Vec<_>>()
        };

        let first = audit
            .history(HistoryQuery {
                limit: Some(2),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(&first), ["c4", "c3"]);
        let second = audit
            .history(HistoryQuery {
                limit: Some(2),
                before: first.next_before.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(&second), ["c2", "c1"]);
        let third = audit
            .history(HistoryQuery {
                limit: Some(2),
                before: second.next_before.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(&third), ["c0"]);
        assert_eq!(third.next_before, None);

        let approved = audit
            .history(HistoryQuery {
                outcome: Some(Outcome::Approved),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(&approved), ["c2", "c1", "c0"]);
        let tool = audit
            .history(HistoryQuery {
                tool: Some("other".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(&tool), ["c3", "c1"]);
        assert!(matches!(
            audit
                .history(HistoryQuery {
                    before: Some("x".into()),
                    ..Default::default()
                })
                .await,
            Err(AuditError::BadCursor(_))
        ));
    }

    #[tokio::test]
    async fn pending_at_restart_is_lost_and_history_survives() {
        let dir = std::env::temp_dir().join(format!("hitl-extauth-audit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.db");
        {
            let (audit, _) = Audit::open(&path).unwrap();
            let a = call("a", "run_migration");
            let b = call("b", "run_migration");
            audit.park(a.clone());
            audit.park(b.clone());
            audit
                .close(closed(&a, Outcome::Approved))
                .await
                .unwrap()
                .unwrap();
        }
        let (audit, opened) = Audit::open(&path).unwrap();
        assert_eq!(opened.lost, 1);
        let page = audit.history(HistoryQuery::default()).await.unwrap();
        let summary: Vec<_> = page
            .items
            .iter()
            .map(|r| (r.call.id.as_str(), r.outcome))
            .collect();
        assert_eq!(summary, [("b", Outcome::Lost), ("a", Outcome::Approved)]);
        assert_eq!(page.items[0].reason, LOST_REASON);
        assert_eq!(page.items[0].reviewer, None);
        drop(audit);
        let (_, reopened) = Audit::open(&path).unwrap();
        assert_eq!(reopened.lost, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_trail_and_its_journal_are_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = std::env::temp_dir().join(format!("hitl-extauth-modes-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.db");
        let (audit, _) = Audit::open(&path).unwrap();
        let a = call("a", "run_migration");
        audit.park(a.clone()).await.unwrap().unwrap();
        for file in ["audit.db", "audit.db-wal", "audit.db-shm"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
        drop(audit);
        // A trail an older version left world-readable is tightened when opened.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _ = Audit::open(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
