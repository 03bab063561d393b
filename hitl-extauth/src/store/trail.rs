//! The audit trail's rows (`parked_calls`): one per attempt (inserted `pending` when it parks,
//! closed with its outcome) and one per denial; `/history` pages over them in closing order.
//! Written through [`Tx`], so each engine runs the same statements.

use std::collections::BTreeMap;

use hitl_wire::extauth::{DecidedCall, HistoryPage, HistoryQuery, Outcome, ParkedCall};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{
    DEFAULT_PAGE, LOST_REASON, MAX_PAGE, RequestWrite, Standing, StoreError,
    sql::{Row, Tx, Value, int},
};
use crate::approval_request::rows as requests;

pub const SCHEMA: &str = "
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
    waited_ms   BIGINT,
    closed_seq  BIGINT UNIQUE, -- order of closing: the /history cursor
    count       BIGINT NOT NULL DEFAULT 1 -- identical denials coalesced into this row
);
CREATE INDEX IF NOT EXISTS parked_calls_by_outcome ON parked_calls (outcome, closed_seq);
CREATE INDEX IF NOT EXISTS parked_calls_by_tool ON parked_calls (tool_name, closed_seq);
";

const COLUMNS: &str = "id, received_at, expires_at, method, path, headers, rpc_method, \
    tool_name, tool_args, body, body_sha256, requester, caller, outcome, reviewer, reason, \
    decided_at, waited_ms, closed_seq, count";

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn waited_ms(from: OffsetDateTime, to: OffsetDateTime) -> u64 {
    u64::try_from((to - from).whole_milliseconds()).unwrap_or(0)
}

/// Close the attempts still `pending` (the process stopped while they waited) as `lost`.
pub fn close_leftovers(tx: &mut dyn Tx, now: OffsetDateTime) -> Result<usize, StoreError> {
    let leftovers = tx.query(
        "SELECT id, received_at FROM parked_calls WHERE outcome = 'pending' \
         ORDER BY received_at, id",
        &[],
    )?;
    for row in &leftovers {
        let id = row.text(0)?;
        close_lost(tx, &id, &row.text(1)?, LOST_REASON, now)?;
        tracing::warn!(%id, "call was pending when hitl-extauth stopped; closed as lost");
    }
    Ok(leftovers.len())
}

/// Close pending call `id` (received at `received`, RFC 3339) as `lost` with `reason`.
pub fn close_lost(
    tx: &mut dyn Tx,
    id: &str,
    received: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let waited = OffsetDateTime::parse(received, &Rfc3339)
        .map(|received| waited_ms(received, now))
        .unwrap_or(0);
    let seq = tx.next_seq()?;
    tx.execute(
        "UPDATE parked_calls SET outcome = 'lost', reason = ?2, decided_at = ?3, \
         waited_ms = ?4, closed_seq = ?5 WHERE id = ?1 AND outcome = 'pending'",
        &[
            Value::from(id),
            Value::from(reason),
            Value::from(rfc3339(now)),
            int(waited),
            Value::from(seq),
        ],
    )?;
    Ok(())
}

fn caller(call: &ParkedCall) -> String {
    let identity: BTreeMap<&str, &str> = hitl_wire::headers::IDENTITY
        .iter()
        .filter_map(|name| call.headers.get(*name).map(|v| (*name, v.as_str())))
        .collect();
    serde_json::to_string(&identity).unwrap_or_else(|_| "{}".into())
}

/// The columns every row of `call` starts with (`?1` … `?13`).
fn call_values(call: &ParkedCall) -> Vec<Value> {
    vec![
        Value::from(&call.id),
        Value::from(rfc3339(call.received_at)),
        Value::from(rfc3339(call.expires_at)),
        Value::from(&call.method),
        Value::from(&call.path),
        Value::from(serde_json::to_string(&call.headers).unwrap_or_default()),
        Value::from(&call.rpc_method),
        Value::from(&call.tool_name),
        Value::from(crate::park::arguments(call).to_string()),
        Value::from(&call.body),
        Value::from(&call.body_sha256),
        Value::from(&call.requester),
        Value::from(caller(call)),
    ]
}

/// A park's row, held by `replica`, and its request's: opened (inserted) or attached to
/// (linked). The request it names, if any.
pub fn park_with_request(
    tx: &mut dyn Tx,
    call: &ParkedCall,
    request: Option<&RequestWrite>,
    replica: &str,
) -> Result<Option<String>, StoreError> {
    let at = call.received_at;
    let named = match request {
        None => None,
        Some(RequestWrite::Open(row)) => {
            requests::insert(tx, row)?;
            requests::link(tx, &row.id, &call.id, at)?;
            Some(row.id.clone())
        }
        Some(RequestWrite::Attach(id)) => {
            requests::link(tx, id, &call.id, at)?;
            Some(id.clone())
        }
    };
    let mut values = call_values(call);
    values.push(Value::from(replica));
    tx.execute(
        &format!(
            "INSERT INTO parked_calls ({COLUMNS}, replica) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'pending', NULL, '', NULL, NULL, NULL, 1, ?14) \
             ON CONFLICT (id) DO NOTHING"
        ),
        &values,
    )?;
    Ok(named)
}

/// Close `record`'s row (inserting it whole if its park was never written); a row already
/// closed is refused.
pub fn upsert_closed(tx: &mut dyn Tx, record: &DecidedCall) -> Result<(), StoreError> {
    let call = &record.call;
    let seq = tx.next_seq()?;
    let mut values = call_values(call);
    values.extend([
        Value::from(record.outcome.as_str()),
        Value::from(&record.reviewer),
        Value::from(&record.reason),
        Value::from(rfc3339(record.decided_at)),
        int(record.waited_ms),
        Value::from(seq),
        int(record.count),
    ]);
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
        &values,
    )?;
    if changed == 0 {
        return Err(StoreError::Corrupt {
            what: "outcome",
            id: call.id.clone(),
            detail: "the call was already closed".into(),
        });
    }
    Ok(())
}

/// Record `id` now stands for `count` identical denials, the last at `at`.
pub fn bump(tx: &mut dyn Tx, id: &str, count: u64, at: OffsetDateTime) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE parked_calls SET count = ?2, decided_at = ?3 WHERE id = ?1",
        &[Value::from(id), int(count), Value::from(rfc3339(at))],
    )?;
    Ok(())
}

pub fn lookup(tx: &mut dyn Tx, id: &str) -> Result<Option<Standing>, StoreError> {
    let Some(row) = tx.query_opt(
        "SELECT outcome FROM parked_calls WHERE id = ?1",
        &[Value::from(id)],
    )?
    else {
        return Ok(None);
    };
    match row.text(0)?.as_str() {
        "pending" => Ok(Some(Standing::Pending)),
        other => parse_outcome(id, other).map(|o| Some(Standing::Closed(o))),
    }
}

fn parse_outcome(id: &str, text: &str) -> Result<Outcome, StoreError> {
    Outcome::ALL
        .into_iter()
        .find(|o| o.as_str() == text)
        .ok_or_else(|| StoreError::Corrupt {
            what: "outcome",
            id: id.to_owned(),
            detail: text.to_owned(),
        })
}

pub fn history(tx: &mut dyn Tx, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let before = query
        .before
        .as_deref()
        .map(|b| {
            b.parse::<i64>()
                .map_err(|_| StoreError::BadCursor(b.to_owned()))
        })
        .transpose()?;
    let rows = tx.query(
        &format!(
            "SELECT {COLUMNS} FROM parked_calls WHERE outcome != 'pending' \
             AND (CAST(?1 AS BIGINT) IS NULL OR closed_seq < ?1) \
             AND (CAST(?2 AS TEXT) IS NULL OR outcome = ?2) \
             AND (CAST(?3 AS TEXT) IS NULL OR tool_name = ?3) \
             ORDER BY closed_seq DESC LIMIT ?4"
        ),
        &[
            Value::from(before),
            Value::from(query.outcome.map(Outcome::as_str)),
            Value::from(&query.tool),
            Value::from(i64::from(limit) + 1),
        ],
    )?;
    let more = rows.len() > limit as usize;
    let mut items = Vec::with_capacity(limit as usize);
    let mut last_seq = None;
    for row in rows.into_iter().take(limit as usize) {
        last_seq = Some(row.int(18)?);
        items.push(decided_from_row(&row)?);
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

fn decided_from_row(row: &Row) -> Result<DecidedCall, StoreError> {
    let id = row.text(0)?;
    let corrupt = |what: &'static str, detail: String| StoreError::Corrupt {
        what,
        id: id.clone(),
        detail,
    };
    let time = |idx: usize, what: &'static str| -> Result<OffsetDateTime, StoreError> {
        OffsetDateTime::parse(&row.text(idx)?, &Rfc3339).map_err(|e| corrupt(what, e.to_string()))
    };
    let json = |idx: usize, what: &'static str| -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(&row.text(idx)?).map_err(|e| corrupt(what, e.to_string()))
    };
    let headers: BTreeMap<String, String> = serde_json::from_value(json(5, "headers")?)
        .map_err(|e| corrupt("headers", e.to_string()))?;
    let claimed_requester = hitl_wire::headers::claimed_requester(&headers);
    Ok(DecidedCall {
        call: ParkedCall {
            received_at: time(1, "received_at")?,
            expires_at: time(2, "expires_at")?,
            method: row.text(3)?,
            path: row.text(4)?,
            headers,
            rpc_method: row.text(6)?,
            tool_name: row.text(7)?,
            tool_args: json(8, "tool_args")?,
            body: row.text(9)?,
            body_sha256: row.text(10)?,
            requester: row.opt_text(11)?,
            claimed_requester,
            id: id.clone(),
            preview_of_bytes: None,
            request: None,
        },
        outcome: parse_outcome(&id, &row.text(13)?)?,
        reviewer: row.opt_text(14)?,
        reason: row.text(15)?,
        decided_at: time(16, "decided_at")?,
        waited_ms: row
            .opt_int(17)?
            .and_then(|w| u64::try_from(w).ok())
            .unwrap_or(0),
        count: u64::try_from(row.int(19)?).unwrap_or(1),
    })
}
