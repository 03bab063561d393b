//! Held attempts and their clocks: the one sweeper that ends holds whose `PARK_TIMEOUT_SEC`
//! ran out (the request stays open), the futures a held `Check` waits in — closed as
//! `abandoned` when the gateway drops them — and the sweeper that expires approval requests
//! whose own clock ran out (`APPROVAL_TTL`, `APPROVAL_WINDOW`).

use super::*;

/// Below this many deadlines the queue is never purged of ended attempts.
const PURGE_FLOOR: usize = 1024;

/// Parks in deadline order, for the sweeper.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    pub(super) queue: Mutex<VecDeque<(Instant, String)>>,
    pub(super) wake: Notify,
}

impl Gate {
    /// Queue `id` for the sweeper, due one park timeout from now.
    pub(super) fn expire_later(&self, id: &str) {
        let deadline = Instant::now() + self.settings.park_timeout;
        let mut queue = self
            .deadlines
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let was_empty = queue.is_empty();
        queue.push_back((deadline, id.to_owned()));
        // An attempt that ended early (decided, abandoned) leaves its deadline behind until
        // it is due; when those outnumber the held calls, drop them (amortised: the queue at
        // least doubles between two purges).
        if queue.len() > 2 * self.lot.len() + PURGE_FLOOR {
            queue.retain(|(_, id)| self.lot.holds(id));
        }
        drop(queue);
        if was_empty {
            self.deadlines.wake.notify_one();
        }
    }

    /// The park timed out: if it is still parked, close the attempt as expired and deny it,
    /// telling the caller its approval request stays open.
    pub(super) fn expire(&self, id: &str) {
        let Some(slot) = self.lot.take(id) else {
            return; // decided or abandoned in the meantime
        };
        let secs = self.settings.park_timeout.as_secs();
        let request_id = slot
            .call
            .request
            .as_ref()
            .map_or(id, |r| r.id.as_str())
            .to_owned();
        let open_until = self
            .requests
            .card(&request_id)
            .and_then(|card| card.request)
            .map(|r| r.open_until);
        let reason = match open_until {
            Some(until) => {
                // Whole seconds: a person reads it, and the reason keeps one length.
                let until = until
                    .replace_nanosecond(0)
                    .unwrap_or(until)
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                format!(
                    "park timed out after {secs} s with no decision from a reviewer; the approval \
                     request {request_id} stays open until {until}: once a reviewer approves it, \
                     send the same call again and it passes once"
                )
            }
            None => format!("park timed out after {secs} s with no decision from a reviewer"),
        };
        self.attempt_ended(&request_id, id, true);
        // The record is queued before the message; the answer waits for its commit.
        let _committed = self.close(ended(&slot.call, Outcome::Expired, None, reason.clone()));
        // If the `Check` is gone, its guard finds this message and knows the park is closed.
        let _ = slot.decide.send(Message::Expired { reason });
    }
}

/// The one task that expires parks: sleeps until the oldest deadline, expires what is due.
/// Ends when the gate is dropped.
pub(super) async fn sweep(gate: Weak<Gate>, deadlines: Arc<Deadlines>) {
    loop {
        let next = deadlines
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .front()
            .map(|(deadline, _)| *deadline);
        match next {
            None => deadlines.wake.notified().await,
            Some(deadline) => tokio::time::sleep_until(deadline).await,
        }
        let Some(gate) = gate.upgrade() else {
            return;
        };
        let now = Instant::now();
        let due: Vec<String> = {
            let mut queue = deadlines
                .queue
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let n = queue
                .iter()
                .take_while(|(deadline, _)| *deadline <= now)
                .count();
            queue.drain(..n).map(|(_, id)| id).collect()
        };
        for id in due {
            gate.expire(&id);
        }
    }
}

/// A `Check` whose park is in the lot but not yet visible: its audit record is on its way to
/// disk. Nobody sees a park before it is committed, so a crash can never lose one that a
/// reviewer (or an `/events` subscriber) has seen. Dropped here, the park is abandoned as below.
pub(super) struct Parking<'g> {
    pub(super) committed: oneshot::Receiver<Result<(), StoreError>>,
    /// An opening's action key and canonical arguments: to meet again, once, if another
    /// replica opened the same action's request first.
    pub(super) opened: Option<Box<(String, String)>>,
    pub(super) call: Arc<ParkedCall>,
    pub(super) waiting: Waiting<'g>,
}

impl Parking<'_> {
    pub(super) async fn wait(mut self) -> Answer {
        let recorded = match (&mut self.committed).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::WriterGone),
        };
        let gate = self.waiting.gate;
        match recorded {
            Ok(()) => {
                gate.reveal(&self.call, &self.waiting.request);
                self.waiting.wait().await
            }
            Err(e) => {
                // Never shown, never recorded: take it back quietly and fail closed.
                self.waiting.settled = true;
                gate.lot.take(&self.call.id);
                if self.waiting.request == self.call.id {
                    gate.requests.forget(&self.call.id);
                } else {
                    gate.attempt_ended(&self.waiting.request, &self.call.id, false);
                }
                let reason = match e {
                    // Another replica's request for the same action: meet it instead (attach,
                    // use, or its rejection), once; else say so (the retry attaches to it).
                    StoreError::Raced(other) => {
                        if let Ok(Some(row)) = gate.audit.request(&other).await {
                            gate.requests.sync(row, OffsetDateTime::now_utc());
                            if let Some(opened) = self.opened.take() {
                                let (key, canonical) = *opened;
                                let call = ParkedCall {
                                    request: None,
                                    ..(*self.call).clone()
                                };
                                let again = gate.meet(call, key, canonical, false);
                                return Box::pin(gate.answer(again)).await;
                            }
                        }
                        StoreError::Raced(other).to_string()
                    }
                    // A cap across the replicas: said as it is.
                    StoreError::Full(why) => why,
                    // Not recorded (the store is away): the denial's record is kept until
                    // the store is back.
                    e => {
                        tracing::error!(id = %self.call.id, error = %e, "park not recorded; denying");
                        format!("the call could not be recorded for review ({e}); denied")
                    }
                };
                // A denial like any other: recorded, answered once its record is flushed.
                let denied = gate.refuse(reason, &refused_call(&self.call));
                gate.audit.flush().await;
                denied
            }
        }
    }
}

/// A `Check` waiting for its park to end. Dropped unsettled means the gateway cancelled the
/// call: the park is closed as `abandoned` right there.
pub(super) struct Waiting<'g> {
    pub(super) gate: &'g Gate,
    pub(super) id: String,
    /// The approval request this attempt is for.
    pub(super) request: String,
    pub(super) decision: oneshot::Receiver<Message>,
    pub(super) settled: bool,
}

impl Waiting<'_> {
    pub(super) async fn wait(mut self) -> Answer {
        let message = (&mut self.decision).await;
        self.settled = true;
        let request = std::mem::take(&mut self.request);
        match message {
            // Boxed: only a decided call pays for the recording future's state.
            Ok(Message::Decided(decision)) => Box::pin(self.gate.settle(request, *decision)).await,
            Ok(Message::Released(answer)) => *answer,
            Ok(Message::Expired { reason }) => {
                // Its record was queued before the message was sent.
                self.gate.audit.flush().await;
                Answer::deny(reason, Some(request))
            }
            // The sending side vanished without a word (shutdown): fail closed.
            Err(_) => Answer::deny(
                "hitl-extauth lost track of this call before a decision; denied",
                Some(request),
            ),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let gate = self.gate;
        if let Some(slot) = gate.lot.take(&self.id) {
            let _committed = gate.close(ended(
                &slot.call,
                Outcome::Abandoned,
                None,
                ABANDONED_REASON.into(),
            ));
            // The request stays open: its card now says nobody is waiting.
            gate.attempt_ended(&self.request, &self.id, true);
            return;
        }
        // Someone else took the call. A reviewer's decision that already reached us can no
        // longer be carried out: close as abandoned and tell them. (An expiry is closed.)
        self.decision.close();
        if let Ok(Message::Decided(decision)) = self.decision.try_recv() {
            let Decision { record, done } = *decision;
            let _committed = gate.close(ended(
                &record.call,
                Outcome::Abandoned,
                None,
                ABANDONED_REASON.into(),
            ));
            let _ = done.send(Settled::Abandoned);
        }
    }
}

/// How often approval requests' clocks are looked at: an expired request leaves the reviewers'
/// queue within this (a decision or a use after its clock is refused at once regardless).
pub(super) const REQUEST_SWEEP: Duration = Duration::from_secs(1);

/// Every how many sweeps the store is asked for cold requests whose clock ran out.
const COLD_SWEEP_TICKS: u64 = 5;

/// Said on the record of an open request nobody decided in time.
pub const TTL_REASON: &str = "no reviewer decided this approval request before its APPROVAL_TTL ran out; send the call again to ask anew";

/// The task that expires approval requests whose clock ran out: each expiry one committed
/// conditional write; an open request's card leaves the queue with an `expired` event.
/// Without it a request nobody decided, or a rejection past its hold, would stay in memory.
/// Ends when the gate is dropped.
pub(super) async fn sweep_requests(gate: Weak<Gate>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        let Some(gate) = gate.upgrade() else {
            return;
        };
        let now = OffsetDateTime::now_utc();
        ticks += 1;
        if gate.requests.has_cold()
            && ticks.is_multiple_of(COLD_SWEEP_TICKS)
            && let Ok(due) = gate.audit.requests(requests::Which::Due, now).await
        {
            // Cold requests whose clock ran out: taken in, expired below like the others.
            for row in due {
                gate.requests.adopt(row);
            }
        }
        for (expiry, card) in gate.requests.run_out(now) {
            let card_with_view = card.clone();
            let card = ParkedCall {
                request: None,
                ..card
            };
            let record = ended(&card, Outcome::Expired, None, TTL_REASON.to_owned());
            // An open request's expiry is on the history as its own record; an unused
            // approval's end needs none (its decision is there).
            let own =
                (expiry.from == RequestState::Open).then(|| request_record(&record, EXPIRY_SUFFIX));
            match gate
                .audit
                .transition_recorded(expiry.clone(), None, own)
                .await
            {
                Ok(Ok(true)) => {
                    gate.requests.applied(&expiry);
                    if expiry.from == RequestState::Open {
                        tracing::info!(id = %expiry.id, "approval request expired (APPROVAL_TTL)");
                        gate.notice(hitl_wire::notify::Kind::Expired, &card_with_view, None);
                        gate.events.publish(|| Event::Expired {
                            record: DecidedCall {
                                call: record.call.preview().into_owned(),
                                ..record
                            },
                        });
                    }
                }
                // Someone else moved it first (a decision, a use, another replica's sweep):
                // take the request as the store holds it.
                Ok(Ok(false)) => {
                    if let Ok(Some(row)) = gate.audit.request(&expiry.id).await {
                        gate.synced(row, OffsetDateTime::now_utc());
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(id = %expiry.id, error = %e, "expiry not recorded; retrying")
                }
                Err(_) => return,
            }
        }
    }
}
