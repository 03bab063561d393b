//! Approval requests (issue #26): the unit a reviewer decides is the *action* — verified
//! requester, route, tool, canonical arguments ([`hitl_wire::action`]) — not the HTTP request
//! that carried it. A `tools/call` is one *attempt*; attempts of the same action attach to the
//! one live request, which outlives them (and the process: it lives in the audit store).
//!
//! [`state`] is the whole state machine; [`rows`] its rows. This module keeps the live
//! requests in memory, indexed by action, and says what each `Check` meets ([`Met`]). Every
//! transition is written first (one conditional write, [`rows::apply`]) and only the winner
//! changes the index, so the store decides every race.
//!
//! The index is a bounded cache: past [`HOT`] entries, the oldest open requests nobody waits
//! for here are left to the store alone ("cold"). A send of a cold action finds it through
//! the store (its opening meets the live request's unique index and attaches instead), and
//! the gate reads cold cards, decisions and expiries from the store. So a backlog of open
//! requests costs the store rows, not the gate's memory.

pub mod rows;
pub mod state;

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use hitl_wire::extauth::{ParkedCall, RequestView};
use time::OffsetDateTime;

pub use rows::{Count, Row, Transition, Which};
pub use state::{State, Step};

/// How long requests and their decisions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clocks {
    /// An open request nobody decided expires after this (`APPROVAL_TTL`).
    pub ttl: Duration,
    /// An approval may be used once within this, from the decision (`APPROVAL_WINDOW`).
    pub window: Duration,
    /// A re-send of a rejected action within this gets the same rejection at once.
    pub reject_hold: Duration,
}

/// Who approved a request, under which rule: what its approval token names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    pub approvers: Vec<String>,
    pub rule: Option<String>,
}

/// What a reviewer's decision does to an open request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The approval that makes the rule's k: approved.
    Approve,
    /// An approval short of k: counted, still open.
    Count,
    Reject,
}

/// What a `Check` of an action meets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Met {
    /// No live request: this attempt opens one (its id is the attempt's id).
    Nothing,
    /// An open request: attach to it (no second card).
    Open { id: String },
    /// Approved and unused within its window: try to use it.
    Approved {
        id: String,
        reviewer: String,
        reason: String,
    },
    /// Rejected within the hold: the same rejection, at once.
    Rejected { id: String, reason: String },
}

/// Opening one more request would pass a [`Limits`] (the reason says which): the attempt is
/// denied and nothing is opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Full(pub String);

/// How many live requests (open, or decided and still within their window or hold) there may
/// be: in all, and per requester. A live request is a call waiting for review, or a decision
/// waiting to be used, and it holds its card in memory until its clock runs out: without these
/// a caller who hangs up at once could open requests without end. The gate sets them from
/// `MAX_PARKED` and `MAX_PARKED_PER_REQUESTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub total: usize,
    pub per_requester: usize,
}

impl Limits {
    /// No limit (tests of other things).
    pub const NONE: Self = Self {
        total: usize::MAX,
        per_requester: usize::MAX,
    };
}

/// Whether `row` still stands at `now`: open within its TTL, or decided within its window
/// (approved) or hold (rejected).
fn live(row: &Row, now: OffsetDateTime) -> bool {
    match row.state {
        State::Open => now < row.open_until,
        State::Approved | State::Rejected => row.usable_until.is_some_and(|u| now < u),
        State::Expired | State::Used => false,
    }
}

#[derive(Debug)]
struct Entry {
    row: Row,
    /// Attempts held right now (their ids), oldest first.
    waiters: Vec<String>,
    /// When the newest held attempt's hold ends.
    held_until: Option<OffsetDateTime>,
    /// Committed, so shown and decidable.
    visible: bool,
}

impl Entry {
    /// Request `row` as the store holds it (committed), with no attempt held for it here.
    fn committed(row: Row) -> Self {
        Self {
            row,
            waiters: Vec::new(),
            held_until: None,
            visible: true,
        }
    }
}

#[derive(Debug, Default)]
struct Index {
    by_id: HashMap<String, Entry>,
    /// Live requests (open, approved, rejected in hold) by action key.
    by_key: HashMap<String, String>,
    /// How many entries each requester has in `by_id`: the cap is checked without a scan.
    per_requester: HashMap<Option<String>, usize>,
}

impl Index {
    fn insert(&mut self, entry: Entry) {
        *self
            .per_requester
            .entry(entry.row.card.requester.clone())
            .or_default() += 1;
        self.by_id.insert(entry.row.id.clone(), entry);
    }

    fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.by_id.remove(id)?;
        if let Some(n) = self.per_requester.get_mut(&entry.row.card.requester) {
            *n -= 1;
            if *n == 0 {
                self.per_requester.remove(&entry.row.card.requester);
            }
        }
        Some(entry)
    }
}

/// How many entries the index keeps before it leaves open requests nobody waits for here to
/// the store alone.
pub const HOT: usize = 1_000;

/// The live approval requests.
#[derive(Debug)]
pub struct Requests {
    index: Mutex<Index>,
    pub clocks: Clocks,
    limits: Limits,
    /// Entries kept before the oldest idle open ones go cold ([`HOT`]).
    hot: usize,
    /// Whether some open requests were left to the store (then lists, decisions and expiries
    /// read it).
    cold: std::sync::atomic::AtomicBool,
}

/// Why a decision did not apply to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotOpen {
    Unknown,
    Was(State),
}

impl Requests {
    /// The live requests `rows` read back from the store (all visible: they are committed).
    pub fn new(clocks: Clocks, limits: Limits, rows: Vec<Row>) -> Self {
        Self::with_hot(clocks, limits, rows, HOT)
    }

    /// [`Requests::new`], keeping at most about `hot` entries in memory.
    pub fn with_hot(clocks: Clocks, limits: Limits, rows: Vec<Row>, hot: usize) -> Self {
        let mut index = Index::default();
        for row in rows {
            index.by_key.insert(row.action_key.clone(), row.id.clone());
            index.insert(Entry::committed(row));
        }
        let requests = Self {
            index: Mutex::new(index),
            clocks,
            limits,
            hot,
            cold: std::sync::atomic::AtomicBool::new(false),
        };
        requests.trim(&mut requests.lock());
        requests
    }

    /// Whether some open requests live only in the store.
    pub fn has_cold(&self) -> bool {
        self.cold.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Past twice [`HOT`] entries, leave the oldest open requests nobody waits for here (and
    /// that are committed) to the store, down to `hot`.
    fn trim(&self, index: &mut Index) {
        if index.by_id.len() <= self.hot.saturating_mul(2) {
            return;
        }
        let mut idle: Vec<(OffsetDateTime, String)> = index
            .by_id
            .values()
            .filter(|e| e.visible && e.waiters.is_empty() && e.row.state == State::Open)
            .map(|e| (e.row.opened_at, e.row.id.clone()))
            .collect();
        let over = index.by_id.len().saturating_sub(self.hot).min(idle.len());
        if over == 0 {
            return;
        }
        idle.sort();
        for (_, id) in idle.into_iter().take(over) {
            if let Some(entry) = index.remove(&id)
                && index.by_key.get(&entry.row.action_key) == Some(&id)
            {
                index.by_key.remove(&entry.row.action_key);
            }
        }
        self.cold.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(left = over, "approval requests left to the store");
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // Every operation leaves the maps consistent: a poisoned lock is still usable.
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What attempt `attempt` (held until `held_until`) of action `key` meets at `now`, and
    /// the expiry a run-out clock calls for (to be written). Opening and attaching are
    /// recorded here, under the lock, so two sends of one action never open two requests.
    pub fn meet(
        &self,
        key: &str,
        open: impl FnOnce() -> Row,
        attempt: &str,
        held_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> (Result<Met, Full>, Option<Transition>) {
        let mut index = self.lock();
        let mut expiry = None;
        if let Some(id) = index.by_key.get(key).cloned() {
            let entry = index.by_id.get_mut(&id).expect("by_key names live entries");
            let row = &entry.row;
            match row.state {
                State::Open if now < row.open_until => {
                    entry.row.attempts += 1;
                    entry.waiters.push(attempt.to_owned());
                    entry.held_until = Some(held_until);
                    return (Ok(Met::Open { id }), None);
                }
                State::Approved if row.usable_until.is_some_and(|u| now < u) => {
                    return (
                        Ok(Met::Approved {
                            id,
                            reviewer: row.reviewer.clone().unwrap_or_default(),
                            reason: row.reason.clone(),
                        }),
                        None,
                    );
                }
                State::Rejected if row.usable_until.is_some_and(|u| now < u) => {
                    return (
                        Ok(Met::Rejected {
                            id,
                            reason: row.reason.clone(),
                        }),
                        None,
                    );
                }
                State::Open | State::Approved => {
                    expiry = Some(expire(&row.id, row.state, now));
                }
                _ => {}
            }
            index.by_key.remove(key);
            index.remove(&id);
        }
        let row = open();
        if let Some(reason) = self.full(&index, row.card.requester.as_deref()) {
            return (Err(Full(reason)), expiry);
        }
        index.by_key.insert(key.to_owned(), row.id.clone());
        index.insert(Entry {
            row,
            waiters: vec![attempt.to_owned()],
            held_until: Some(held_until),
            visible: false,
        });
        (Ok(Met::Nothing), expiry)
    }

    /// Why one more request of `requester` may not open, if it may not. Counted over the
    /// requests the gate holds: live ones, and (for at most one sweep, a second) those whose
    /// clock just ran out.
    fn full(&self, index: &Index, requester: Option<&str>) -> Option<String> {
        let total = index.by_id.len();
        let mine = index
            .per_requester
            .get(&requester.map(str::to_owned))
            .copied()
            .unwrap_or(0);
        if total >= self.limits.total {
            return Some(format!(
                "{total} approval requests are already open or awaiting use; try again later"
            ));
        }
        if mine >= self.limits.per_requester {
            let who = requester.unwrap_or("the requesters without a verified token");
            return Some(format!(
                "{who:?} already has {mine} approval requests open or awaiting use (the most one \
                 requester may have); wait for a decision on those first"
            ));
        }
        None
    }

    /// The request `id` was committed: show it.
    pub fn reveal(&self, id: &str) {
        if let Some(entry) = self.lock().by_id.get_mut(id) {
            entry.visible = true;
        }
    }

    /// The request `id` could not be committed: forget it.
    pub fn forget(&self, id: &str) {
        let mut index = self.lock();
        if let Some(entry) = index.remove(id)
            && index.by_key.get(&entry.row.action_key).map(String::as_str) == Some(id)
        {
            index.by_key.remove(&entry.row.action_key);
        }
    }

    /// The attempts held for request `id` now, newest first.
    pub fn waiters(&self, id: &str) -> Vec<String> {
        let index = self.lock();
        let mut waiters = index
            .by_id
            .get(id)
            .map(|e| e.waiters.clone())
            .unwrap_or_default();
        waiters.reverse();
        waiters
    }

    /// Attempt `attempt` is no longer held for request `id` (timed out, abandoned, answered).
    pub fn detach(&self, id: &str, attempt: &str) {
        let mut index = self.lock();
        if let Some(entry) = index.by_id.get_mut(id) {
            entry.waiters.retain(|w| w != attempt);
            if entry.waiters.is_empty() {
                entry.held_until = None;
            }
        }
        self.trim(&mut index);
    }

    /// Take request `row` (read from the store: a cold one, due or decided) into the index
    /// as it is, unless the index has it already.
    pub fn adopt(&self, row: Row) {
        let mut index = self.lock();
        if index.by_id.contains_key(&row.id) {
            return;
        }
        if row.state == State::Open || live(&row, OffsetDateTime::now_utc()) {
            index.by_key.insert(row.action_key.clone(), row.id.clone());
        }
        index.insert(Entry::committed(row));
    }

    /// The write of `verdict` by `reviewer` on request `id` at `now`, if it is open (else
    /// why not, and the expiry to write if its TTL ran out). `count`: the approvers before
    /// and after this one, the write's condition (an approval, counted or final).
    pub fn decision(
        &self,
        id: &str,
        verdict: Verdict,
        count: Option<Count>,
        reviewer: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Transition, (NotOpen, Option<Box<Transition>>)> {
        let index = self.lock();
        let Some(entry) = index.by_id.get(id).filter(|e| e.visible) else {
            return Err((NotOpen::Unknown, None));
        };
        match entry.row.state {
            State::Open if now < entry.row.open_until => {}
            State::Open => {
                return Err((
                    NotOpen::Was(State::Expired),
                    Some(Box::new(expire(id, State::Open, now))),
                ));
            }
            other => return Err((NotOpen::Was(other), None)),
        }
        let (to, hold) = match verdict {
            Verdict::Approve => (State::Approved, Some(self.clocks.window)),
            Verdict::Reject => (State::Rejected, Some(self.clocks.reject_hold)),
            Verdict::Count => (State::Open, None),
        };
        Ok(Transition {
            id: id.to_owned(),
            from: State::Open,
            to,
            at: now,
            reviewer: hold.map(|_| reviewer.to_owned()),
            reason: hold.map(|_| reason.to_owned()),
            usable_until: hold.map(|hold| now + hold),
            used_by: None,
            count,
        })
    }

    /// `won` was committed: apply it to the index. A decision hands back the attempts held
    /// for the request (newest first), for the gate to answer.
    pub fn applied(&self, won: &Transition) -> Vec<String> {
        let mut index = self.lock();
        let Some(entry) = index.by_id.get_mut(&won.id) else {
            return Vec::new();
        };
        entry.row.state = won.to;
        if let Some(reviewer) = &won.reviewer {
            entry.row.reviewer = Some(reviewer.clone());
        }
        if let Some(reason) = &won.reason {
            entry.row.reason.clone_from(reason);
        }
        if won.usable_until.is_some() {
            entry.row.usable_until = won.usable_until;
        }
        if matches!(won.to, State::Approved | State::Rejected) {
            entry.row.decided_at = Some(won.at);
        }
        if let Some(count) = &won.count {
            entry.row.approvals.clone_from(&count.after);
        }
        if won.to == State::Open {
            // An approval counted: the request still waits, and so do its callers.
            return Vec::new();
        }
        let mut waiters = std::mem::take(&mut entry.waiters);
        entry.held_until = None;
        if matches!(won.to, State::Expired | State::Used) {
            let key = entry.row.action_key.clone();
            index.remove(&won.id);
            index.by_key.remove(&key);
        }
        waiters.reverse();
        waiters
    }

    /// The requests whose clock ran out by `now`: the expiries to write (open past
    /// `APPROVAL_TTL`, approved past `APPROVAL_WINDOW`), each with the card it had; rejected
    /// requests past their hold need no write and leave the index here. Nothing runs out
    /// while an attempt is held for it.
    pub fn run_out(&self, now: OffsetDateTime) -> Vec<(Transition, ParkedCall)> {
        let mut index = self.lock();
        let mut writes = Vec::new();
        let mut gone = Vec::new();
        for (id, entry) in &index.by_id {
            if !entry.visible
                || !entry.waiters.is_empty()
                || entry.row.waiting
                || live(&entry.row, now)
            {
                continue;
            }
            match entry.row.state {
                State::Open | State::Approved => {
                    writes.push((expire(id, entry.row.state, now), card(entry)));
                }
                State::Rejected | State::Expired | State::Used => gone.push(id.clone()),
            }
        }
        for id in gone {
            if let Some(entry) = index.remove(&id)
                && index.by_key.get(&entry.row.action_key) == Some(&id)
            {
                index.by_key.remove(&entry.row.action_key);
            }
        }
        writes
    }

    /// Request `row` as another replica left it (committed): the index takes it as it is —
    /// added if live and new here, changed, or dropped once it no longer stands — and hands
    /// back the state it had here before (`None`: unknown here) and, when the change ends
    /// this replica's holds (decided, expired, used), the attempts it held, newest first.
    pub fn sync(&self, row: Row, now: OffsetDateTime) -> (Option<State>, Vec<String>) {
        let mut index = self.lock();
        let id = row.id.clone();
        let key = row.action_key.clone();
        let Some(entry) = index.by_id.get_mut(&id) else {
            if live(&row, now) {
                index.by_key.insert(key, id);
                index.insert(Entry::committed(row));
                self.trim(&mut index);
            }
            return (None, Vec::new());
        };
        let before = entry.row.state;
        if rank(row.state) < rank(before) {
            // Read before a change this replica made itself: older than the index.
            return (Some(before), Vec::new());
        }
        if row.state == State::Open
            && before == State::Open
            && row.approvals.len() < entry.row.approvals.len()
        {
            // Read before an approval this replica counted itself.
            return (Some(before), Vec::new());
        }
        let attempts = entry.row.attempts.max(row.attempts);
        entry.row = Row { attempts, ..row };
        entry.visible = true;
        let mut waiters = if entry.row.state == State::Open {
            Vec::new()
        } else {
            entry.held_until = None;
            std::mem::take(&mut entry.waiters)
        };
        if matches!(entry.row.state, State::Expired | State::Used) {
            index.remove(&id);
            if index.by_key.get(&key) == Some(&id) {
                index.by_key.remove(&key);
            }
        } else {
            index.by_key.insert(key, id);
        }
        waiters.reverse();
        (Some(before), waiters)
    }

    /// How many requests the index holds, live or not yet swept.
    pub fn held(&self) -> usize {
        self.lock().by_id.len()
    }

    /// The open, visible requests at `now`, oldest first, as cards.
    pub fn cards(&self, now: OffsetDateTime) -> Vec<ParkedCall> {
        let index = self.lock();
        let mut open: Vec<&Entry> = index
            .by_id
            .values()
            .filter(|e| e.visible && e.row.state == State::Open && now < e.row.open_until)
            .collect();
        open.sort_by(|a, b| (a.row.opened_at, &a.row.id).cmp(&(b.row.opened_at, &b.row.id)));
        open.into_iter().map(card).collect()
    }

    /// The card of request `id`, if it is open and visible.
    pub fn card(&self, id: &str) -> Option<ParkedCall> {
        let index = self.lock();
        index
            .by_id
            .get(id)
            .filter(|e| e.visible && e.row.state == State::Open)
            .map(card)
    }

    /// What the approval token of request `id` names besides its reviewer: every approver and
    /// the policy rule (empty if the request is not in the index).
    pub fn grant(&self, id: &str) -> Grant {
        self.lock()
            .by_id
            .get(id)
            .map(|e| Grant {
                approvers: e.row.approvals.iter().map(|a| a.reviewer.clone()).collect(),
                rule: e
                    .row
                    .card
                    .request
                    .as_ref()
                    .and_then(|r| r.rule.as_ref())
                    .map(|r| r.name.clone()),
            })
            .unwrap_or_default()
    }

    /// Request `id` as its card shows it, whatever its state and whether or not it is
    /// committed yet (an attempt's own view of its request).
    pub fn view(&self, id: &str) -> Option<RequestView> {
        self.lock().by_id.get(id).map(view)
    }

    /// Request `id`'s row as it stands (the one an opening attempt writes).
    pub fn row(&self, id: &str) -> Option<Row> {
        self.lock().by_id.get(id).map(|e| e.row.clone())
    }

    /// How many requests are open now (a gauge).
    pub fn open(&self) -> usize {
        self.lock()
            .by_id
            .values()
            .filter(|e| e.row.state == State::Open)
            .count()
    }
}

/// How far along its life a request in `state` is: states only ever move forward.
fn rank(state: State) -> u8 {
    match state {
        State::Open => 0,
        State::Approved | State::Rejected => 1,
        State::Expired | State::Used => 2,
    }
}

/// The request's card: its first attempt's call, with the request's id, attempts and clocks.
fn card(entry: &Entry) -> ParkedCall {
    let row = &entry.row;
    ParkedCall {
        id: row.id.clone(),
        expires_at: entry.held_until.unwrap_or(row.open_until),
        request: Some(view(entry)),
        ..row.card.clone()
    }
}

/// The card of request `row` as the store holds it (a cold one: nobody waits for it here).
pub fn card_of(row: &Row) -> ParkedCall {
    card(&Entry::committed(row.clone()))
}

/// The request as its card shows it: state, attempts, whether a caller waits, its clock.
fn view(entry: &Entry) -> RequestView {
    let row = &entry.row;
    RequestView {
        approvals: row.approvals.clone(),
        rule: row.card.request.as_ref().and_then(|r| r.rule.clone()),
        id: row.id.clone(),
        state: row.state,
        action_key: row.action_key.clone(),
        canonical_args: row
            .card
            .request
            .as_ref()
            .map(|r| r.canonical_args.clone())
            .unwrap_or_default(),
        attempts: row.attempts,
        waiting: !entry.waiters.is_empty() || row.waiting,
        open_until: row.open_until,
    }
}

/// The transition that expires request `id` (its clock ran out at `now`).
pub fn expire(id: &str, from: State, now: OffsetDateTime) -> Transition {
    Transition {
        count: None,
        id: id.to_owned(),
        from,
        to: State::Expired,
        at: now,
        reviewer: None,
        reason: None,
        usable_until: None,
        used_by: None,
    }
}

/// The transition that spends approval `id` on attempt `attempt`.
pub fn use_by(id: &str, attempt: &str, now: OffsetDateTime) -> Transition {
    Transition {
        used_by: Some(attempt.to_owned()),
        ..expire(id, State::Approved, now)
    }
    .to(State::Used)
}

impl Transition {
    fn to(self, to: State) -> Self {
        Self { to, ..self }
    }
}
