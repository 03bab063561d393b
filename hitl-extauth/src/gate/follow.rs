//! What other replicas did (a shared store only): each approval request another replica
//! changed, as the store now holds it, taken into this replica's index; its card shown or
//! updated on this replica's `/events`; and the calls this replica holds for it answered — an
//! approval spent on the newest (the conditional write of its use decides between replicas),
//! a rejection to all, an expiry or a use elsewhere ends them.

use tokio::sync::mpsc::UnboundedReceiver;

use super::*;

/// The task that follows the other replicas until the gate is dropped.
pub(super) async fn follow(gate: Weak<Gate>, mut changes: UnboundedReceiver<Change>) {
    while let Some(change) = changes.recv().await {
        let Some(gate) = gate.upgrade() else {
            return;
        };
        let now = OffsetDateTime::now_utc();
        match change {
            Change::Request(row) => gate.synced(*row, now),
            Change::Resync(rows) => {
                for row in rows {
                    gate.synced(row, now);
                }
            }
        }
    }
}

impl Gate {
    /// Request `row`, as another replica left it, applied here.
    pub(super) fn synced(self: &Arc<Self>, row: requests::Row, now: OffsetDateTime) {
        let id = row.id.clone();
        let (before, held) = self.requests.sync(row.clone(), now);
        match row.state {
            RequestState::Open => self.announce(&id),
            RequestState::Approved | RequestState::Rejected => {
                let record = decided_record(&row, now);
                if matches!(before, None | Some(RequestState::Open)) {
                    self.decided(&id, &record);
                }
                if !held.is_empty() {
                    let gate = Arc::clone(self);
                    tokio::spawn(async move {
                        let _settled = gate.answer_held(&held, &record).await;
                    });
                }
            }
            RequestState::Expired => {
                if before == Some(RequestState::Open) {
                    let record = ended(&card_of(&row), Outcome::Expired, None, TTL_REASON.into());
                    self.events.publish(|| Event::Expired {
                        record: DecidedCall {
                            call: record.call.preview().into_owned(),
                            ..record
                        },
                    });
                }
                self.end_held(&held, TTL_REASON);
            }
            RequestState::Used => self.end_held(
                &held,
                &format!(
                    "the approval of request {id} went to another send of the same call; an \
                     approval lets one call through: send the call again to ask for a new one"
                ),
            ),
        }
    }

    /// End held attempts `held` whose request another replica moved on, with `reason`.
    fn end_held(&self, held: &[String], reason: &str) {
        for attempt in held {
            if let Some(slot) = self.lot.take(attempt) {
                let _committed =
                    self.close(ended(&slot.call, Outcome::Expired, None, reason.into()));
                let _ = slot.decide.send(Message::Expired {
                    reason: reason.to_owned(),
                });
            }
        }
    }
}

/// The request's card without its view: the call its first attempt made.
fn card_of(row: &requests::Row) -> ParkedCall {
    ParkedCall {
        request: None,
        ..row.card.clone()
    }
}

/// The decision on `row` as the history and the event feed show it.
pub(super) fn decided_record(row: &requests::Row, now: OffsetDateTime) -> DecidedCall {
    let decided_at = row.decided_at.unwrap_or(now);
    let call = card_of(row);
    DecidedCall {
        waited_ms: u64::try_from((decided_at - call.received_at).whole_milliseconds()).unwrap_or(0),
        call,
        outcome: if row.state == RequestState::Approved {
            Outcome::Approved
        } else {
            Outcome::Rejected
        },
        reviewer: row.reviewer.clone(),
        reason: row.reason.clone(),
        decided_at,
        count: 1,
    }
}
