//! The parking lot: every call waiting for a human, keyed by id, each with the one channel
//! its decision travels on.
//!
//! Taking a call out of the lot is the only way to end it, and it happens under one lock, so
//! exactly one of "reviewer decided", "timer expired" and "gateway gave up" wins.
//!
//! A call enters the lot hidden: it holds its place (and counts against the capacity) while
//! its audit record is committed, and only [`ParkingLot::reveal`] makes it visible to
//! reviewers. Nobody can see, and so nobody can decide, a park the audit could still lose.
//!
//! A large call's body is kept once: its parsed arguments are not kept beside it (see
//! [`lean`]) and are read back from the body where a whole call is needed ([`arguments`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use std::borrow::Cow;

use hitl_wire::extauth::{DecidedCall, PREVIEW_BYTES, ParkedCall};
use tokio::sync::oneshot;

/// `arguments` as the lot keeps them for a call with `body`: `null` when the body is longer
/// than a listing's preview (listings don't carry them then, and the body has them).
pub fn lean(body: &str, arguments: serde_json::Value) -> serde_json::Value {
    if body.len() > PREVIEW_BYTES {
        serde_json::Value::Null
    } else {
        arguments
    }
}

/// `call`'s arguments, read back from its body when the lot kept it [`lean`]. The classifier
/// accepted that body as one `tools/call` before it was parked, so it parses; `{}` when it
/// has no `arguments`, as the classifier reads it.
pub fn arguments(call: &ParkedCall) -> Cow<'_, serde_json::Value> {
    if !call.tool_args.is_null() || call.body.len() <= PREVIEW_BYTES {
        return Cow::Borrowed(&call.tool_args);
    }
    let parsed = serde_json::from_str::<serde_json::Value>(&call.body)
        .ok()
        .and_then(|mut v| {
            v.get_mut("params")?
                .get_mut("arguments")
                .map(std::mem::take)
        })
        .unwrap_or_else(|| serde_json::json!({}));
    Cow::Owned(parsed)
}

/// `call` whole: with its arguments, wherever the lot kept them.
pub fn whole(call: &ParkedCall) -> ParkedCall {
    ParkedCall {
        tool_args: arguments(call).into_owned(),
        ..call.clone()
    }
}

/// What ends a park, on its way to the waiting `Check`.
#[derive(Debug)]
pub enum Message {
    /// A reviewer decided; the waiting `Check` records it and answers accordingly. (Boxed:
    /// every park allocates its channel up front, sized for the largest message.)
    Decided(Box<Decision>),
    /// The park timed out; already recorded, the `Check` only has to deny with `reason`.
    Expired { reason: String },
    /// A reviewer's approval, already spent on this call and recorded in the same commit:
    /// the `Check` only has to pass it on.
    Released(Box<crate::gate::Answer>),
}

/// A reviewer's decision on its way to the waiting `Check`.
#[derive(Debug)]
pub struct Decision {
    /// The finished record (outcome `approved` or `rejected`).
    pub record: DecidedCall,
    /// Told how it went, once the gateway has its answer.
    pub done: oneshot::Sender<Settled>,
}

/// What became of a delivered decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Recorded, and the gateway was answered accordingly.
    Recorded,
    /// Could not be recorded (the error); the call was denied.
    NotRecorded(String),
    /// The gateway gave up on the call before the decision reached it.
    Abandoned,
}

/// A parked call, as held in the lot.
#[derive(Debug)]
pub struct Slot {
    seq: u64,
    /// Shown in `/pending` and decidable: set once the park's record is committed.
    visible: bool,
    pub call: Arc<ParkedCall>,
    pub decide: oneshot::Sender<Message>,
}

/// The lot has no room for another call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// `MAX_PARKED` calls wait already, from everyone together.
    #[error("{0} calls are already waiting for review; try again later")]
    Total(usize),
    /// The calls waiting already hold `MAX_PARKED_BYTES` of requests together.
    #[error(
        "the calls waiting for review already hold {held} bytes (the most the gate keeps is \
         {limit}); try again later"
    )]
    Bytes { held: usize, limit: usize },
    /// This requester already has `MAX_PARKED_PER_REQUESTER` calls waiting.
    #[error(
        "{requester:?} already has {parked} calls waiting for review (the most one requester \
         may have); wait for a decision on those first"
    )]
    Requester { requester: String, parked: usize },
}

#[derive(Debug, Default)]
struct Lot {
    slots: HashMap<String, Slot>,
    /// Parked calls per requester key, for the per-requester limit.
    by_requester: HashMap<String, usize>,
    /// The request bodies held, in bytes, for the bytes limit.
    bytes: usize,
    next_seq: u64,
}

impl Lot {
    fn remove(&mut self, id: &str) -> Option<Slot> {
        let slot = self.slots.remove(id)?;
        self.bytes -= held_bytes(&slot.call);
        let key = requester_key(&slot.call);
        if let Some(n) = self.by_requester.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.by_requester.remove(&key);
            }
        }
        Some(slot)
    }
}

/// What a parked call holds that its sender chose the size of: the body, the headers, the
/// path (counted against [`Capacity::bytes`]).
fn held_bytes(call: &ParkedCall) -> usize {
    let headers: usize = call.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    call.body.len() + headers + call.path.len()
}

/// The key a call counts against: its requester, or the shared bucket of calls without one.
fn requester_key(call: &ParkedCall) -> String {
    call.requester.clone().unwrap_or_default()
}

/// How many calls the lot holds: in all, and per requester; and how many bytes of requests
/// (bodies, headers, paths) in all: what bounds its memory when requests are large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub total: usize,
    pub per_requester: usize,
    pub bytes: usize,
}

/// The set of calls waiting for a decision.
#[derive(Debug)]
pub struct ParkingLot {
    lot: Mutex<Lot>,
    capacity: Capacity,
}

impl ParkingLot {
    pub fn new(capacity: Capacity) -> Self {
        Self {
            lot: Mutex::default(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lot> {
        // A panic while holding this lock leaves the map consistent (every operation is a
        // single insert or remove), so a poisoned lock is still safe to use.
        self.lot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Park `call`, hidden until [`reveal`](Self::reveal)ed. `before_visible` runs under the
    /// lock, before anyone can take the call (the audit insert goes there so it is queued
    /// before any close of the same call).
    pub fn park(
        &self,
        call: Arc<ParkedCall>,
        before_visible: impl FnOnce(&Arc<ParkedCall>),
    ) -> Result<oneshot::Receiver<Message>, Full> {
        let mut lot = self.lock();
        if lot.slots.len() >= self.capacity.total {
            return Err(Full::Total(lot.slots.len()));
        }
        if lot.bytes.saturating_add(held_bytes(&call)) > self.capacity.bytes {
            return Err(Full::Bytes {
                held: lot.bytes,
                limit: self.capacity.bytes,
            });
        }
        let key = requester_key(&call);
        let mine = lot.by_requester.get(&key).copied().unwrap_or(0);
        if mine >= self.capacity.per_requester {
            return Err(Full::Requester {
                requester: key,
                parked: mine,
            });
        }
        before_visible(&call);
        *lot.by_requester.entry(key).or_default() += 1;
        lot.bytes += held_bytes(&call);
        let (decide, decision) = oneshot::channel();
        let seq = lot.next_seq;
        lot.next_seq += 1;
        lot.slots.insert(
            call.id.clone(),
            Slot {
                seq,
                visible: false,
                call,
                decide,
            },
        );
        Ok(decision)
    }

    /// Make a hidden park visible (its record is committed). `false` if it is gone.
    pub fn reveal(&self, id: &str) -> bool {
        match self.lock().slots.get_mut(id) {
            Some(slot) => {
                slot.visible = true;
                true
            }
            None => false,
        }
    }

    /// Take a call out of the lot: whoever gets `Some` ends it, everyone else gets `None`.
    pub fn take(&self, id: &str) -> Option<Slot> {
        self.lock().remove(id)
    }

    /// [`take`](Self::take) a call only if it is visible: what a reviewer may decide.
    pub fn take_visible(&self, id: &str) -> Option<Slot> {
        let mut lot = self.lock();
        match lot.slots.get(id) {
            Some(slot) if slot.visible => lot.remove(id),
            _ => None,
        }
    }

    /// Every visible parked call, oldest first.
    pub fn snapshot(&self) -> Vec<Arc<ParkedCall>> {
        let mut calls: Vec<(u64, Arc<ParkedCall>)> = self
            .lock()
            .slots
            .values()
            .filter(|slot| slot.visible)
            .map(|slot| (slot.seq, Arc::clone(&slot.call)))
            .collect();
        calls.sort_unstable_by_key(|(seq, _)| *seq);
        calls.into_iter().map(|(_, call)| call).collect()
    }

    /// Whether call `id` is held here.
    pub fn holds(&self, id: &str) -> bool {
        self.lock().slots.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use time::OffsetDateTime;

    use super::*;

    const ROOMY: Capacity = Capacity {
        total: 10,
        per_requester: 10,
        bytes: usize::MAX,
    };

    fn cap(total: usize) -> Capacity {
        Capacity {
            total,
            per_requester: total,
            bytes: usize::MAX,
        }
    }

    fn call_from(id: &str, requester: &str) -> Arc<ParkedCall> {
        let mut call = Arc::unwrap_or_clone(call(id));
        call.requester = Some(requester.to_owned());
        Arc::new(call)
    }

    fn call(id: &str) -> Arc<ParkedCall> {
        Arc::new(ParkedCall {
            id: id.into(),
            received_at: OffsetDateTime::UNIX_EPOCH,
            method: "POST".into(),
            path: "/privileged/mcp".into(),
            headers: BTreeMap::new(),
            rpc_method: "tools/call".into(),
            tool_name: "run_migration".into(),
            tool_args: serde_json::json!({}),
            body: String::new(),
            body_sha256: String::new(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            requester: None,
            claimed_requester: None,
            preview_of_bytes: None,
            request: None,
        })
    }

    #[test]
    fn take_is_exactly_once() {
        let lot = ParkingLot::new(ROOMY);
        let _rx = lot.park(call("a"), |_| {}).unwrap();
        assert_eq!(lot.len(), 1);
        assert!(lot.take("a").is_some());
        assert!(lot.take("a").is_none());
        assert!(lot.is_empty());
    }

    #[test]
    fn snapshot_is_oldest_first() {
        let lot = ParkingLot::new(ROOMY);
        let _rx: Vec<_> = ["c", "a", "b"]
            .into_iter()
            .map(|id| lot.park(call(id), |_| {}).unwrap())
            .collect();
        for id in ["a", "b", "c"] {
            assert!(lot.reveal(id));
        }
        let ids: Vec<_> = lot.snapshot().iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids, ["c", "a", "b"]);
    }

    #[test]
    fn a_hidden_park_holds_its_place_but_cannot_be_seen_or_decided() {
        let lot = ParkingLot::new(cap(1));
        let _rx = lot.park(call("a"), |_| {}).unwrap();
        assert!(lot.snapshot().is_empty());
        assert!(lot.take_visible("a").is_none());
        assert_eq!(lot.park(call("b"), |_| {}).unwrap_err(), Full::Total(1));
        assert!(lot.reveal("a"));
        assert_eq!(lot.snapshot().len(), 1);
        assert!(lot.take_visible("a").is_some());
        assert!(!lot.reveal("a"));
    }

    #[test]
    fn full_lot_refuses_and_runs_nothing() {
        let lot = ParkingLot::new(cap(1));
        let _rx = lot.park(call("a"), |_| {}).unwrap();
        let mut ran = false;
        assert_eq!(
            lot.park(call("b"), |_| ran = true).unwrap_err(),
            Full::Total(1)
        );
        assert!(!ran);
    }

    #[test]
    fn before_visible_runs_once_on_success() {
        let lot = ParkingLot::new(cap(1));
        let mut seen = Vec::new();
        let _rx = lot.park(call("a"), |c| seen.push(c.id.clone())).unwrap();
        assert_eq!(seen, ["a"]);
    }

    #[test]
    fn one_requester_cannot_fill_the_lot() {
        let lot = ParkingLot::new(Capacity {
            total: 10,
            per_requester: 2,
            bytes: usize::MAX,
        });
        let _a = lot.park(call_from("a1", "alice"), |_| {}).unwrap();
        let _b = lot.park(call_from("a2", "alice"), |_| {}).unwrap();
        let refused = lot.park(call_from("a3", "alice"), |_| {}).unwrap_err();
        assert_eq!(
            refused,
            Full::Requester {
                requester: "alice".into(),
                parked: 2
            }
        );
        // Someone else still gets in, and alice does again once one of hers is closed.
        let _c = lot.park(call_from("b1", "bob"), |_| {}).unwrap();
        assert!(lot.take("a1").is_some());
        let _d = lot.park(call_from("a3", "alice"), |_| {}).unwrap();
    }

    #[test]
    fn the_bodies_held_are_bounded_whoever_parks_them() {
        let sized = |id: &str, requester: &str, len: usize| {
            let mut call = Arc::unwrap_or_clone(call_from(id, requester));
            call.body = "x".repeat(len);
            Arc::new(call)
        };
        let lot = ParkingLot::new(Capacity {
            total: 10,
            per_requester: 10,
            bytes: 100,
        });
        // A new requester name per call does not help: the bytes are counted for everyone.
        let a = sized("a", "mallory-1", 60);
        let held = held_bytes(&a);
        assert!(
            held >= 60,
            "the body counts, and the path and headers beside it"
        );
        let _a = lot.park(a, |_| {}).unwrap();
        let refused = lot.park(sized("b", "mallory-2", 60), |_| {}).unwrap_err();
        assert_eq!(refused, Full::Bytes { held, limit: 100 });
        // Large headers count as much as a large body.
        let mut big_headers = Arc::unwrap_or_clone(sized("h", "mallory-3", 0));
        big_headers.headers.insert("x-pad".into(), "y".repeat(60));
        assert!(lot.park(Arc::new(big_headers), |_| {}).is_err());
        let _c = lot
            .park(sized("c", "alice", 100 - held - 20), |_| {})
            .unwrap();
        // Closing a call gives its bytes back.
        assert!(lot.take("a").is_some());
        let _b = lot.park(sized("b", "mallory-2", 50), |_| {}).unwrap();
    }

    #[test]
    fn a_large_call_keeps_its_body_once_and_its_arguments_come_back_whole() {
        let note = "x".repeat(2 * PREVIEW_BYTES);
        let arguments = serde_json::json!({"version": "v3", "note": note});
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "run_migration", "arguments": arguments},
        })
        .to_string();
        let mut call = (*call("big")).clone();
        call.tool_args = lean(&body, arguments.clone());
        call.body = body;
        assert!(call.tool_args.is_null(), "not kept beside the body");
        assert_eq!(*super::arguments(&call), arguments);
        assert_eq!(whole(&call).tool_args, arguments);
        // A small call keeps its arguments as parsed.
        let small = serde_json::json!({"version": "v3"});
        assert_eq!(lean("{}", small.clone()), small);
    }
}
