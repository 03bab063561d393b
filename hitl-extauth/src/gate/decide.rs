//! A reviewer's decision: one conditional write on the approval request, then the attempts
//! held for it (if any) answered — an approval spent on the newest in the same commit, a
//! rejection to all.

use super::*;
use crate::reviewer::Reviewer;

/// Times a decision is tried when other approvals are counted at the same moment.
const COUNT_TRIES: usize = 4;

impl Gate {
    /// Apply a reviewer's decision to an open approval request, whether or not a caller is
    /// held for it: one conditional write, then the held attempts (if any) are answered. An
    /// approval short of the rule's k is counted (the request stays open); a count that lost
    /// to another reviewer's at the same moment is tried again on the request as stored.
    pub async fn decide(
        &self,
        id: &str,
        request: DecideRequest,
    ) -> Result<DecideAnswer, DecideError> {
        let reviewer = self.reviewer(id, &request)?;
        for _ in 0..COUNT_TRIES {
            if let Some(answer) = self.decide_once(id, &request, &reviewer).await? {
                return Ok(answer);
            }
            if let Some(row) = self.audit.request(id).await? {
                self.requests.sync(row, OffsetDateTime::now_utc());
            }
        }
        Err(DecideError::Conflict(format!(
            "request {id} is being approved by several reviewers at this moment; try again"
        )))
    }

    /// One try at [`Gate::decide`]: `None` when its conditional write lost to another.
    async fn decide_once(
        &self,
        id: &str,
        request: &DecideRequest,
        reviewer: &Reviewer,
    ) -> Result<Option<DecideAnswer>, DecideError> {
        let now = OffsetDateTime::now_utc();
        if self.requests.card(id).is_none()
            && self.requests.has_cold()
            && let Some(row) = self.audit.request(id).await?
        {
            // A cold request (left to the store): take it back in to decide it.
            self.requests.adopt(row);
        }
        let Some(card) = self.requests.card(id) else {
            return Err(self.not_decidable(id, NotOpen::Unknown).await?);
        };
        let (verdict, count) = self.judge(&card, reviewer, request, now)?;
        let transition =
            match self
                .requests
                .decision(id, verdict, count, &reviewer.name, &request.reason, now)
            {
                Ok(transition) => transition,
                Err((not_open, expiry)) => {
                    if let Some(expiry) = expiry {
                        let _won = self.audit.transition(*expiry, None);
                    }
                    return Err(self.not_decidable(id, not_open).await?);
                }
            };
        if verdict == requests::Verdict::Count {
            return self.count(id, &reviewer.name, transition, card).await;
        }
        let reviewer = reviewer.name.clone();
        let outcome = if request.approved {
            Outcome::Approved
        } else {
            Outcome::Rejected
        };
        // Whether a call is held for it here (one held by another replica is answered there,
        // and written there: the decision's own record covers it meanwhile).
        let nobody_here = self.requests.waiters(id).is_empty();
        let view = card.request.clone();
        let record = DecidedCall {
            waited_ms: u64::try_from((now - card.received_at).whole_milliseconds()).unwrap_or(0),
            call: ParkedCall {
                request: None,
                ..card
            },
            outcome,
            reviewer: Some(reviewer.clone()),
            reason: request.reason.clone(),
            decided_at: now,
            count: 1,
        };
        if request.approved
            && let Some(handed) = self.approve_held(id, &transition, &record).await
        {
            handed?;
            self.metrics.decided(record.outcome);
            self.decided(id, &record);
            self.notice_decided(view, &record);
            return Ok(Some(DecideAnswer::Decided(Box::new(record))));
        }
        // With nobody held here (an approval gets here only then), no attempt's record here
        // carries the decision: the request's own record does, in the same commit.
        let own =
            (nobody_here || request.approved).then(|| request_record(&record, DECISION_SUFFIX));
        match self
            .audit
            .transition_recorded(transition.clone(), None, own)
            .await
        {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                return Err(DecideError::Conflict(format!(
                    "call {id} was decided by someone else at the same moment"
                )));
            }
            Ok(Err(e)) => return Err(DecideError::NotRecorded(e.to_string())),
            Err(_) => return Err(DecideError::NotRecorded(StoreError::WriterGone.to_string())),
        }
        self.metrics.decided(record.outcome);
        self.decided(id, &record);
        self.notice_decided(view, &record);
        let waiters = self.requests.applied(&transition);
        if let Some(settled) = self.answer_held(&waiters, &record).await {
            settled?;
        }
        Ok(Some(DecideAnswer::Decided(Box::new(record))))
    }

    /// Write an approval short of the rule's k: the request stays open with one more
    /// approver, its card shows it everywhere. `None`: another write came first. `card`: the
    /// request's card as this decision read it.
    async fn count(
        &self,
        id: &str,
        reviewer: &str,
        transition: requests::Transition,
        card: ParkedCall,
    ) -> Result<Option<DecideAnswer>, DecideError> {
        match self.audit.transition(transition.clone(), None).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Ok(None),
            Ok(Err(e)) => return Err(DecideError::Store(e)),
            Err(_) => return Err(DecideError::Store(StoreError::WriterGone)),
        }
        self.requests.applied(&transition);
        let approvals = transition.count.as_ref().map_or(0, |c| c.after.len());
        tracing::info!(%id, %reviewer, approvals, "approval counted; the request waits for more");
        self.announce(id);
        // The card as it now stands; if the k-th approval has meanwhile approved, used and
        // retired the request (reviewers at once), the card as this count left it: the
        // approval was counted, and the reviewer is told so, not "no such request".
        let card = self.requests.card(id).unwrap_or_else(|| {
            let mut card = card;
            if let (Some(view), Some(count)) = (card.request.as_mut(), transition.count.as_ref()) {
                view.approvals.clone_from(&count.after);
            }
            card
        });
        Ok(Some(DecideAnswer::Counted(Box::new(card))))
    }

    /// Tell the receivers of a decision taken here (`view`: its request, for the arguments).
    fn notice_decided(&self, view: Option<RequestView>, record: &DecidedCall) {
        let card = ParkedCall {
            request: view,
            ..record.call.clone()
        };
        self.notice(hitl_wire::notify::Kind::Decided, &card, Some(record));
    }

    /// Log and announce a committed decision.
    pub(super) fn decided(&self, id: &str, record: &DecidedCall) {
        tracing::info!(
            %id, outcome = record.outcome.as_str(),
            reviewer = record.reviewer.as_deref().unwrap_or("-"), "request decided"
        );
        self.events.publish(|| Event::Decided {
            record: DecidedCall {
                call: record.call.preview().into_owned(),
                ..record.clone()
            },
        });
    }

    /// An approval while a caller is held: the newest held attempt gets it, and the
    /// approval, its use and that attempt's record are one commit — one fsync between the
    /// reviewer's click and the release. Older held attempts are told the approval went to
    /// the newer send. `None`: nobody is held any more (the approval waits for a retry).
    async fn approve_held(
        &self,
        id: &str,
        approve: &requests::Transition,
        decided: &DecidedCall,
    ) -> Option<Result<(), DecideError>> {
        let mut waiters = self.requests.waiters(id).into_iter();
        let (attempt, mut slot) = waiters.find_map(|a| self.lot.take(&a).map(|slot| (a, slot)))?;
        let record = held_record(&slot.call, decided);
        let used = requests::use_by(id, &attempt, decided.decided_at);
        let won = self
            .audit
            .transitions(
                vec![approve.clone(), used.clone()],
                None,
                Some(record.clone()),
            )
            .await;
        let failed = match won {
            Ok(Ok(true)) => None,
            Ok(Ok(false)) => {
                let conflict = DecideError::Conflict(format!(
                    "call {id} was decided by someone else at the same moment"
                ));
                // Another decision won (on another replica, or here at the same moment):
                // the held call gets that decision, not a denial for losing the race.
                match self.meet_winner(id, slot).await {
                    Ok(()) => return Some(Err(conflict)),
                    Err(back) => {
                        slot = back;
                        Some(conflict)
                    }
                }
            }
            Ok(Err(e)) => Some(DecideError::NotRecorded(e.to_string())),
            Err(_) => Some(DecideError::NotRecorded(StoreError::WriterGone.to_string())),
        };
        if let Some(error) = failed {
            // Nothing was written: the held call is denied (fail closed) with the reason.
            let reason = format!("the approval could not be recorded ({error}); denied");
            let _committed = self
                .close(ended(&slot.call, Outcome::Denied, None, reason.clone()))
                .await;
            let _ = slot.decide.send(Message::Expired { reason });
            return Some(Err(error));
        }
        let others = self.requests.applied(approve);
        let grant = self.requests.grant(id);
        self.requests.applied(&used);
        self.counted(&record, true);
        let answer = self.released(id, &record, grant);
        if slot
            .decide
            .send(Message::Released(Box::new(answer)))
            .is_err()
        {
            tracing::warn!(
                %id, attempt = %attempt,
                "the gateway gave up on the call as its approval was recorded; the approval is spent"
            );
        }
        for other in others.iter().filter(|o| **o != attempt) {
            if let Some(slot) = self.lot.take(other) {
                let reason =
                    format!("the approval of request {id} went to a newer send of the same call");
                let _committed =
                    self.close(ended(&slot.call, Outcome::Expired, None, reason.clone()));
                let _ = slot.decide.send(Message::Expired { reason });
            }
        }
        Some(Ok(()))
    }

    /// The decision that beat this replica's approval of `id`, read from the store, handed to
    /// the held attempt `slot` (taken for the approval that lost) and to the others held here.
    /// `Err(slot)` when the store does not show a decision (the slot is the caller's again).
    async fn meet_winner(
        &self,
        id: &str,
        slot: crate::park::Slot,
    ) -> Result<(), crate::park::Slot> {
        let row = match self.audit.request(id).await {
            Ok(Some(row))
                if matches!(row.state, RequestState::Approved | RequestState::Rejected) =>
            {
                row
            }
            Ok(Some(row)) if row.state == RequestState::Used => {
                let reason = format!(
                    "the approval of request {id} went to another send of the same call; an \
                     approval lets one call through: send the call again to ask for a new one"
                );
                let _committed =
                    self.close(ended(&slot.call, Outcome::Expired, None, reason.clone()));
                let _ = slot.decide.send(Message::Expired { reason });
                return Ok(());
            }
            _ => return Err(slot),
        };
        let now = OffsetDateTime::now_utc();
        let (_, others) = self.requests.sync(row.clone(), now);
        let decided = follow::decided_record(&row, now);
        let _settled = self.hand(slot, &decided);
        let _settled = self.answer_held(&others, &decided).await;
        Ok(())
    }

    /// Hand `decided` to the held attempt `slot` (taken from the lot): what became of it, once
    /// its waiting `Check` has carried it out; `None` if the gateway gave up on it first (it
    /// is then closed as abandoned).
    fn hand(
        &self,
        slot: crate::park::Slot,
        decided: &DecidedCall,
    ) -> Option<oneshot::Receiver<Settled>> {
        let (done, finished) = oneshot::channel();
        let decision = Decision {
            record: held_record(&slot.call, decided),
            done,
        };
        if let Err(Message::Decided(decision)) =
            slot.decide.send(Message::Decided(Box::new(decision)))
        {
            // The gateway gave up between our take and the send; its guard found nothing.
            let record = ended(
                &decision.record.call,
                Outcome::Abandoned,
                None,
                ABANDONED_REASON.into(),
            );
            let _committed = self.close(record);
            return None;
        }
        Some(finished)
    }

    /// Hand a decision to the attempts held for its request (newest first): an approval goes
    /// to the newest only (it lets one call through); a rejection to all. What became of the
    /// first, if any was held.
    pub(super) async fn answer_held(
        &self,
        waiters: &[String],
        decided: &DecidedCall,
    ) -> Option<Result<(), DecideError>> {
        let mut first = None;
        for (n, attempt) in waiters.iter().enumerate() {
            let Some(slot) = self.lot.take(attempt) else {
                continue; // timed out or abandoned in the meantime
            };
            if decided.outcome == Outcome::Approved && first.is_some() {
                let reason = format!(
                    "the approval of request {} went to a newer send of the same call",
                    decided.call.id
                );
                let _committed =
                    self.close(ended(&slot.call, Outcome::Expired, None, reason.clone()));
                let _ = slot.decide.send(Message::Expired { reason });
                continue;
            }
            let Some(finished) = self.hand(slot, decided) else {
                continue;
            };
            if first.is_none() {
                first = Some((n, finished));
            }
        }
        let (_, finished) = first?;
        Some(match finished.await {
            Ok(Settled::NotRecorded(why)) => Err(DecideError::NotRecorded(why)),
            Ok(Settled::Recorded | Settled::Abandoned) | Err(_) => Ok(()),
        })
    }

    /// Why `id` cannot be decided, as the reviewer is told.
    pub(super) async fn not_decidable(
        &self,
        id: &str,
        not_open: NotOpen,
    ) -> Result<DecideError, DecideError> {
        Ok(match not_open {
            NotOpen::Was(state) => {
                DecideError::Conflict(format!("call {id} was already closed: {}", state.as_str()))
            }
            NotOpen::Unknown => match self.audit.lookup(id).await? {
                None => DecideError::NotFound(id.to_owned()),
                Some(Standing::Pending) => {
                    DecideError::Conflict(format!("call {id} is already being closed"))
                }
                Some(Standing::Closed(outcome)) => DecideError::Conflict(format!(
                    "call {id} was already closed: {}",
                    outcome.as_str()
                )),
            },
        })
    }

    /// Answer a held attempt of request `request` with its reviewer's decision: an approval
    /// is spent on it (one conditional write) and recorded before it passes; a rejection is
    /// recorded and denied with the reviewer's reason.
    pub(super) async fn settle(&self, request: String, decision: Decision) -> Answer {
        let Decision { record, done } = decision;
        if record.outcome == Outcome::Approved {
            let answer = self.spend(&request, record, None).await;
            let _ = done.send(match &answer {
                Answer::Allow { .. } => Settled::Recorded,
                Answer::Deny { reason, .. } => Settled::NotRecorded(reason.clone()),
            });
            return answer;
        }
        let reason = record.reason.clone();
        let recorded = match self.close(record).await {
            Ok(Ok(())) => Settled::Recorded,
            Ok(Err(e)) => Settled::NotRecorded(e.to_string()),
            Err(_) => Settled::NotRecorded(StoreError::WriterGone.to_string()),
        };
        let _ = done.send(recorded);
        if reason.trim().is_empty() {
            Answer::deny(NO_REASON_GIVEN, Some(request))
        } else {
            Answer::deny(reason, Some(request))
        }
    }
}

/// The record of held attempt `call` ending with its request's decision, at the decision's
/// time.
fn held_record(call: &ParkedCall, decided: &DecidedCall) -> DecidedCall {
    DecidedCall {
        waited_ms: u64::try_from((decided.decided_at - call.received_at).whole_milliseconds())
            .unwrap_or(0),
        decided_at: decided.decided_at,
        ..ended(
            call,
            decided.outcome,
            decided.reviewer.clone(),
            decided.reason.clone(),
        )
    }
}
