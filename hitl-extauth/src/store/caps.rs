//! The caps on held calls and live approval requests (`MAX_PARKED`,
//! `MAX_PARKED_PER_REQUESTER`) across every replica of a shared store, and over the requests
//! the gate left to the store (see [`crate::approval_request`]): counted in the store,
//! under one lock that each transaction parking a call takes (so two replicas never both take
//! the last place), and counted once per transaction (a burst of parks costs one count).
//! Each process still holds its own memory caps (the parking lot's); these are the fleet's.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::{
    StoreError,
    sql::{Tx, Value},
};
use crate::approval_request::rows::ms;

/// The key of the lock the counting transaction holds.
const CAP_LOCK: i64 = 0x6869_746c_2d63_6170; // "hitl-cap"

/// The fleet's caps: held calls (and live requests) in all, and per requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub total: usize,
    pub per_requester: usize,
}

impl Caps {
    pub const NONE: Self = Self {
        total: usize::MAX,
        per_requester: usize::MAX,
    };
}

/// What one transaction has counted so far (and added since).
#[derive(Debug, Default)]
pub struct Counts {
    held: Option<i64>,
    live: Option<i64>,
    held_by: HashMap<Option<String>, i64>,
    live_by: HashMap<Option<String>, i64>,
}

const HELD: &str = "SELECT COUNT(*) FROM parked_calls WHERE outcome = 'pending'";
const LIVE: &str = "SELECT COUNT(*) FROM approval_requests WHERE (state IN ('open', 'approved') \
    OR (state = 'rejected' AND usable_until_ms > ?1))";

fn count(tx: &mut dyn Tx, sql: &str, values: &[Value]) -> Result<i64, StoreError> {
    match tx.query_opt(sql, values)? {
        Some(row) => row.int(0),
        None => Ok(0),
    }
}

fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Counts {
    /// Whether one more call of `requester` may be held (and, `opens`, one more request
    /// opened) under `caps` at `now`: counted the first time in this transaction, under the
    /// lock; the place is taken if so. `Err(StoreError::Full)` says which cap.
    pub fn take(
        &mut self,
        tx: &mut dyn Tx,
        caps: Caps,
        requester: Option<&str>,
        opens: bool,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if caps == Caps::NONE {
            return Ok(());
        }
        let across = if tx.shared() {
            " across the gate's replicas"
        } else {
            ""
        };
        if self.held.is_none() {
            tx.lock(CAP_LOCK)?;
            self.held = Some(count(tx, HELD, &[])?);
            self.live = Some(count(tx, LIVE, &[Value::from(ms(now))])?);
        }
        let who = requester.map(str::to_owned);
        if !self.held_by.contains_key(&who) {
            let mine = match requester {
                Some(r) => count(tx, &format!("{HELD} AND requester = ?1"), &[Value::from(r)])?,
                None => count(tx, &format!("{HELD} AND requester IS NULL"), &[])?,
            };
            self.held_by.insert(who.clone(), mine);
        }
        if opens && !self.live_by.contains_key(&who) {
            let now = Value::from(ms(now));
            let mine = match requester {
                Some(r) => count(
                    tx,
                    &format!("{LIVE} AND requester = ?2"),
                    &[now, Value::from(r)],
                )?,
                None => count(tx, &format!("{LIVE} AND requester IS NULL"), &[now])?,
            };
            self.live_by.insert(who.clone(), mine);
        }
        let (held, held_mine) = (self.held.unwrap_or(0), self.held_by[&who]);
        let (live, live_mine) = (self.live.unwrap_or(0), self.live_by.get(&who).copied());
        let name = requester.unwrap_or("the requesters without a verified token");
        if held >= as_i64(caps.total) {
            return Err(StoreError::Full(format!(
                "{held} calls are already waiting for review{across}; try again later"
            )));
        }
        if held_mine >= as_i64(caps.per_requester) {
            return Err(StoreError::Full(format!(
                "{name:?} already has {held_mine} calls waiting for review{across} (the most \
                 one requester may have); wait for a decision on those first"
            )));
        }
        if opens && live >= as_i64(caps.total) {
            return Err(StoreError::Full(format!(
                "{live} approval requests are already open or awaiting use; try again later"
            )));
        }
        if let Some(mine) = live_mine.filter(|_| opens)
            && mine >= as_i64(caps.per_requester)
        {
            return Err(StoreError::Full(format!(
                "{name:?} already has {mine} approval requests open or awaiting use (the most one \
                 requester may have); wait for a decision on those first"
            )));
        }
        self.held = Some(held + 1);
        *self.held_by.entry(who.clone()).or_default() += 1;
        if opens {
            self.live = Some(live + 1);
            *self.live_by.entry(who).or_default() += 1;
        }
        Ok(())
    }
}
