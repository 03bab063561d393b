//! The live queue: the calls pending at the gate, each with its rendered card, and the
//! fan-out of every change to the browsers' event streams. Changes are broadcast while the
//! write lock is held, and a subscriber takes its snapshot under the read lock, so a browser
//! neither misses nor doubles an update.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};

use hitl_wire::{
    extauth::{DecidedCall, ParkedCall},
    identity::Identity,
    policy::PolicyView,
};
use tokio::sync::broadcast;

/// A pending call and its card markup (rendered once for everyone, each viewer's decide
/// form left as `render::policy::MARKER`).
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub call: ParkedCall,
    pub html: String,
}

/// A change, as pushed to browsers over `/live` ([`Push::data`] puts in each viewer's form).
#[derive(Debug, Clone, PartialEq)]
pub enum Push {
    /// The whole queue (on connect, after a gate reconnect, after falling behind).
    Sync {
        cards: Vec<Arc<Card>>,
        connected: bool,
        /// The gate listed only its oldest pending calls: more wait behind them.
        more: bool,
    },
    /// A call parked, or its card changed (an approval counted).
    Card(Arc<Card>),
    /// A call left the queue: decided here or elsewhere, expired, abandoned.
    Gone {
        id: String,
        outcome: &'static str,
        reviewer: Option<String>,
        reason: String,
        tool: String,
    },
    /// The connection to the gate went down or came back.
    Upstream { connected: bool },
}

impl Push {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            Push::Sync { .. } => "sync",
            Push::Card(_) => "card",
            Push::Gone { .. } => "gone",
            Push::Upstream { .. } => "upstream",
        }
    }

    /// The event's JSON for one browser: each card's markup as `html` makes it for its viewer.
    pub fn data(&self, html: impl Fn(&Card) -> String) -> serde_json::Value {
        let view = |card: &Card| serde_json::json!({ "id": card.call.id, "html": html(card) });
        match self {
            Push::Sync {
                cards,
                connected,
                more,
            } => serde_json::json!({
                "cards": cards.iter().map(|c| view(c)).collect::<Vec<_>>(),
                "connected": connected,
                "more": more,
            }),
            Push::Card(card) => view(card),
            Push::Gone {
                id,
                outcome,
                reviewer,
                reason,
                tool,
            } => serde_json::json!({
                "id": id, "outcome": outcome, "reviewer": reviewer, "reason": reason, "tool": tool,
            }),
            Push::Upstream { connected } => serde_json::json!({ "connected": connected }),
        }
    }

    fn gone(record: &DecidedCall) -> Self {
        Push::Gone {
            id: record.call.id.clone(),
            outcome: record.outcome.as_str(),
            reviewer: record.reviewer.clone(),
            reason: record.reason.clone(),
            tool: record.call.tool_name.clone(),
        }
    }
}

#[derive(Debug, Default)]
struct Queue {
    cards: BTreeMap<String, Arc<Card>>,
    connected: bool,
    /// The gate's last listing held only its oldest calls (`PendingList::more`).
    more: bool,
}

impl Queue {
    /// Oldest first (then by id, for a stable order).
    fn ordered(&self) -> Vec<Arc<Card>> {
        let mut cards: Vec<_> = self.cards.values().cloned().collect();
        cards.sort_by(|a, b| {
            (a.call.received_at, &a.call.id).cmp(&(b.call.received_at, &b.call.id))
        });
        cards
    }

    fn sync(&self) -> Push {
        Push::Sync {
            cards: self.ordered(),
            connected: self.connected,
            more: self.more,
        }
    }
}

/// The shared live queue.
#[derive(Debug)]
pub struct Live {
    queue: RwLock<Queue>,
    tx: broadcast::Sender<Arc<Push>>,
    /// The gate's approval policy (`GET /policy`), when it serves one: the static reviewers'
    /// groups.
    policy: RwLock<Option<PolicyView>>,
}

/// A browser's subscription: the state at subscription time, then every change after it.
pub struct Subscription {
    pub first: Push,
    pub changes: broadcast::Receiver<Arc<Push>>,
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    pub fn new() -> Self {
        // Room for a burst of parks; a browser that falls further behind gets a fresh sync.
        let (tx, _) = broadcast::channel(1024);
        Self {
            queue: RwLock::new(Queue::default()),
            tx,
            policy: RwLock::new(None),
        }
    }

    /// The gate's policy as last read (`None`: it serves none, or it could not be read).
    pub fn set_policy(&self, policy: Option<PolicyView>) {
        *self
            .policy
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = policy;
    }

    /// The groups the gate's policy lists `reviewer` in as a static member (none without one).
    pub fn static_groups(&self, reviewer: &Identity) -> Vec<String> {
        self.policy
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .map(|p| p.static_groups(reviewer))
            .unwrap_or_default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Queue> {
        self.queue
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Queue> {
        self.queue
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(&self, push: Push) {
        // No receivers is fine: nobody has the page open.
        let _ = self.tx.send(Arc::new(push));
    }

    /// Replace the whole queue (fresh snapshot from the gate; `more`: the gate listed only its
    /// oldest calls) and mark the gate connected.
    pub fn replace_all(&self, cards: Vec<Card>, more: bool) {
        let mut queue = self.write();
        queue.cards = cards
            .into_iter()
            .map(|card| (card.call.id.clone(), Arc::new(card)))
            .collect();
        queue.connected = true;
        queue.more = more;
        let sync = queue.sync();
        self.send(sync);
    }

    /// A call parked (or was re-announced: replaces the card).
    pub fn insert(&self, card: Card) {
        let mut queue = self.write();
        let card = Arc::new(card);
        queue.cards.insert(card.call.id.clone(), card.clone());
        self.send(Push::Card(card));
    }

    /// A call ended. Announced even if we never saw it park, so every browser drops it.
    pub fn remove(&self, record: &DecidedCall) {
        let mut queue = self.write();
        queue.cards.remove(&record.call.id);
        self.send(Push::gone(record));
    }

    /// The gate's event stream went down or came back.
    pub fn set_connected(&self, connected: bool) {
        let mut queue = self.write();
        if queue.connected != connected {
            queue.connected = connected;
            self.send(Push::Upstream { connected });
        }
    }

    /// Subscribe: current state plus every later change.
    pub fn subscribe(&self) -> Subscription {
        let queue = self.read();
        Subscription {
            changes: self.tx.subscribe(),
            first: queue.sync(),
        }
    }

    /// The current state as one `sync` push (for a browser that fell behind).
    pub fn sync(&self) -> Push {
        self.read().sync()
    }

    /// Current cards, oldest first, and whether the gate is connected.
    pub fn snapshot(&self) -> (Vec<Arc<Card>>, bool) {
        let queue = self.read();
        (queue.ordered(), queue.connected)
    }

    /// The pending call `id`, if we hold it.
    pub fn get(&self, id: &str) -> Option<ParkedCall> {
        self.read().cards.get(id).map(|card| card.call.clone())
    }

    pub fn len(&self) -> usize {
        self.read().cards.len()
    }

    /// Whether call `id` is on the queue.
    pub fn contains(&self, id: &str) -> bool {
        self.read().cards.contains_key(id)
    }

    /// Whether the gate's last listing left calls out (newer than every listed one).
    pub fn more(&self) -> bool {
        self.read().more
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::call_from;
    use hitl_wire::extauth::Outcome;

    fn card(id: &str, at: i64) -> Card {
        let mut call = call_from(None, &[]);
        call.id = id.into();
        call.received_at = time::OffsetDateTime::from_unix_timestamp(at).unwrap();
        Card {
            call,
            html: format!("<article>{id}</article>"),
        }
    }

    fn decided(card: &Card) -> DecidedCall {
        DecidedCall {
            call: card.call.clone(),
            outcome: Outcome::Approved,
            reviewer: Some("bob".into()),
            reason: "ok".into(),
            decided_at: card.call.received_at,
            waited_ms: 5,
            count: 1,
        }
    }

    #[test]
    fn subscriber_gets_snapshot_then_changes_in_order() {
        let live = Live::new();
        live.replace_all(vec![card("b", 2), card("a", 1)], false);
        let mut sub = live.subscribe();
        let Push::Sync {
            cards, connected, ..
        } = &sub.first
        else {
            panic!("first push is a sync")
        };
        assert!(connected);
        assert_eq!(
            cards.iter().map(|c| c.call.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );

        live.insert(card("c", 3));
        live.remove(&decided(&card("a", 1)));
        live.set_connected(false);
        live.set_connected(false); // no change, no push
        let names: Vec<_> = std::iter::from_fn(|| sub.changes.try_recv().ok())
            .map(|push| push.name())
            .collect();
        assert_eq!(names, ["card", "gone", "upstream"]);
        assert_eq!(live.len(), 2);
        assert!(live.get("a").is_none());
        assert!(live.get("c").is_some());
    }

    #[test]
    fn pushes_serialise_for_the_browser() {
        let push = Push::gone(&decided(&card("x", 1)));
        assert_eq!(
            push.data(|c| c.html.clone()),
            serde_json::json!({"id": "x", "outcome": "approved", "reviewer": "bob", "reason": "ok", "tool": "run_migration"})
        );
    }
}
