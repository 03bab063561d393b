//! Denials in the audit trail, bounded: every request the gate refuses without review becomes
//! a `denied` record in `/history`, but what a caller can make it write is capped.
//!
//! - A record keeps at most [`BODY_EXCERPT_BYTES`] of the body (its sha256 is of all of
//!   it), [`MAX_HEADERS`] headers of at most [`MAX_HEADER_VALUE_BYTES`] each, and a reason of
//!   at most [`MAX_REASON_BYTES`].
//! - An identical denial (same reason, method, path, body hash and requester) within
//!   [`COALESCE_WINDOW`] of the first one of its kind bumps that record's `count` instead
//!   of adding a row.
//! - At most [`ROWS_PER_MINUTE`] new denial rows per minute; beyond that, one overflow
//!   record per minute counts the rest.

use std::{
    collections::BTreeMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Mutex,
    time::Duration,
};

use hitl_wire::extauth::{DecidedCall, Outcome, ParkedCall};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::store::Store;

pub const BODY_EXCERPT_BYTES: usize = 1024;
pub const MAX_HEADERS: usize = 32;
pub const MAX_HEADER_VALUE_BYTES: usize = 256;
pub const MAX_REASON_BYTES: usize = 1024;
pub const COALESCE_WINDOW: Duration = Duration::from_secs(60);
pub const ROWS_PER_MINUTE: u32 = 120;

/// What the gate knows about a request it refuses.
#[derive(Debug, Default)]
pub struct Refused<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: Option<&'a BTreeMap<String, String>>,
    pub body: &'a [u8],
    pub requester: Option<String>,
}

#[derive(Debug)]
struct Open {
    key: u64,
    first: Instant,
    record: DecidedCall,
}

#[derive(Debug)]
struct State {
    last: Option<Open>,
    minute_start: Instant,
    rows_this_minute: u32,
    overflow: Option<Open>,
}

/// The bounded writer of denial records.
#[derive(Debug)]
pub struct Denials {
    state: Mutex<State>,
}

impl Default for Denials {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                last: None,
                minute_start: Instant::now(),
                rows_this_minute: 0,
                overflow: None,
            }),
        }
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let kept = hitl_wire::text::prefix(text, max);
    format!("{kept}… [{} bytes cut]", text.len() - kept.len())
}

fn record(
    refused: &Refused<'_>,
    reason: &str,
    redact: impl Fn(&mut BTreeMap<String, String>),
) -> DecidedCall {
    let now = OffsetDateTime::now_utc();
    let mut headers: BTreeMap<String, String> = refused
        .headers
        .into_iter()
        .flatten()
        .take(MAX_HEADERS)
        .map(|(k, v)| {
            (
                cut(k, MAX_HEADER_VALUE_BYTES),
                cut(v, MAX_HEADER_VALUE_BYTES),
            )
        })
        .collect();
    redact(&mut headers);
    let body = String::from_utf8_lossy(refused.body);
    let claimed_requester = hitl_wire::headers::claimed_requester(&headers);
    DecidedCall {
        call: ParkedCall {
            id: uuid::Uuid::new_v4().to_string(),
            received_at: now,
            method: cut(refused.method, 32),
            path: cut(refused.path, MAX_HEADER_VALUE_BYTES),
            headers,
            rpc_method: String::new(),
            tool_name: String::new(),
            tool_args: serde_json::Value::Null,
            body: cut(&body, BODY_EXCERPT_BYTES),
            body_sha256: hitl_wire::approval::sha256_hex(refused.body),
            expires_at: now,
            requester: refused
                .requester
                .as_deref()
                .map(|r| cut(r, MAX_HEADER_VALUE_BYTES)),
            claimed_requester,
            preview_of_bytes: None,
            request: None,
        },
        outcome: Outcome::Denied,
        reviewer: None,
        reason: cut(reason, MAX_REASON_BYTES),
        decided_at: now,
        waited_ms: 0,
        count: 1,
    }
}

impl Denials {
    /// Record one denial (queued; the gate answers once the queue is committed).
    pub fn record(
        &self,
        audit: &Store,
        refused: &Refused<'_>,
        reason: &str,
        redact: impl Fn(&mut BTreeMap<String, String>),
    ) {
        let key = {
            let mut h = DefaultHasher::new();
            (
                reason,
                refused.method,
                refused.path,
                refused.body,
                &refused.requester,
            )
                .hash(&mut h);
            h.finish()
        };
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = state.last.as_mut()
            && last.key == key
            && now.duration_since(last.first) < COALESCE_WINDOW
        {
            bump(audit, last);
            return;
        }
        if now.duration_since(state.minute_start) >= Duration::from_secs(60) {
            state.minute_start = now;
            state.rows_this_minute = 0;
            state.overflow = None;
        }
        if state.rows_this_minute < ROWS_PER_MINUTE {
            state.rows_this_minute += 1;
            let record = record(refused, reason, redact);
            audit.record(record.clone());
            state.last = Some(Open {
                key,
                first: now,
                record,
            });
            return;
        }
        match state.overflow.as_mut() {
            Some(overflow) => bump(audit, overflow),
            None => {
                let reason = format!(
                    "more than {ROWS_PER_MINUTE} distinct denials this minute: the rest are \
                     counted here, not recorded one by one (the first: {reason})"
                );
                let record = record(refused, &reason, redact);
                audit.record(record.clone());
                state.overflow = Some(Open {
                    key,
                    first: now,
                    record,
                });
            }
        }
    }
}

fn bump(audit: &Store, open: &mut Open) {
    open.record.count += 1;
    open.record.decided_at = OffsetDateTime::now_utc();
    audit.bump(
        &open.record.call.id,
        open.record.count,
        open.record.decided_at,
    );
}
