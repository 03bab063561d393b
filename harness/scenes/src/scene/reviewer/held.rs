//! Decisions the scene puts off ([`WhileHeld`]): the reviewer leaves the card until the gate's
//! own hold ran out (its `/events` re-announces the card with no caller waiting), or kills the
//! gate while the call is held, has the lab bring it back and reads the restarted gate's
//! `/events` (the open cards come first). Either way it then looks the card up in `/pending`
//! (recorded for the judge: listed, no caller waiting) and decides. What follows the held
//! call waits for the chat user's turn to end (the agent has said what it was told), so the
//! transcript reads in one order: the denial, the agent's words, then the restart or the
//! decision; the chat user's next prompt waits for the decision's closing event.

use std::time::Duration;

use hitl_wire::extauth::ParkedCall;

use super::{Events, Work};

/// Longest the reviewer waits for the held call's turn to end before going on anyway.
const TURN_END_WAIT: Duration = Duration::from_secs(120);
use crate::scene::{
    model::{HumanDecision, WhileHeld},
    observation::Listed,
    run::within,
    transcript::Who,
};

impl Work {
    /// Put off `decision` on the new card `id` until `while_held` has happened.
    pub(super) async fn put_off(&mut self, id: &str, decision: HumanDecision, held: WhileHeld) {
        let turn = *self.turns.borrow();
        self.held = Some((id.to_owned(), decision, held, turn));
        let rec = &self.desk.rec;
        match held {
            WhileHeld::HoldRunsOut => rec.say(
                Who::Reviewer,
                "leaves the card until the gate's hold has run out",
            ),
            WhileHeld::GateRestarts => {
                rec.say(
                    Who::Lab,
                    "hitl-extauth is killed (kill -9) while the call is held",
                );
                let restarted = match &self.desk.restart_gate {
                    Some(restart) => restart().await,
                    None => Err(anyhow::anyhow!("this lab has no way to restart its gate")),
                };
                // The held call fails closed the moment its gate dies: its turn ends first.
                self.turn_over(turn).await;
                let rec = &self.desk.rec;
                match restarted {
                    Ok(()) => {
                        rec.say(Who::Lab, "hitl-extauth is back (same store)");
                        self.resubscribe = true;
                    }
                    Err(e) => rec.say(Who::Check, format!("FAIL restarting hitl-extauth: {e:#}")),
                }
            }
        }
    }

    /// A card seen before was announced again: if its decision was put off, see whether what
    /// it waits for has happened (no caller waiting after the hold; the card on the restarted
    /// gate), and if so decide it.
    pub(super) async fn announced_again(&mut self, call: &ParkedCall) {
        let Some((id, _, held, turn)) = &self.held else {
            return;
        };
        let turn = *turn;
        if *id != call.id {
            return;
        }
        let waiting = call.request.as_ref().is_some_and(|r| r.waiting);
        let Some(park) = self.parks.iter_mut().find(|p| p.id == call.id) else {
            return;
        };
        let rec = &self.desk.rec;
        match held {
            WhileHeld::HoldRunsOut if !waiting => {
                park.hold_ended = true;
                rec.say(
                    Who::Tier2,
                    "the gate's hold ran out: the card stays open, no caller waiting",
                );
            }
            WhileHeld::GateRestarts if !self.resubscribed => return,
            WhileHeld::GateRestarts => {
                park.came_back = true;
                rec.say(
                    Who::Tier2,
                    format!(
                        "the restarted gate still shows the card ({})",
                        if waiting {
                            "a caller waiting"
                        } else {
                            "no caller waiting"
                        }
                    ),
                );
            }
            WhileHeld::HoldRunsOut => return,
        }
        let Some((id, decision, _, _)) = self.held.take() else {
            return;
        };
        // The agent has said what it was told before the reviewer acts.
        self.turn_over(turn).await;
        let listed = self.listed(&id).await;
        if let Some(park) = self.parks.iter_mut().find(|p| p.id == id) {
            park.listed_before_decision = listed;
        }
        if self.decide(&id, decision).await {
            // Counted as taken when `/events` shows it (`closed`).
            self.closing = Some(id);
        } else {
            self.put_off.send_modify(|n| *n = n.saturating_sub(1));
        }
    }

    /// Wait (bounded) until the chat user's turn that was on when the call parked (the
    /// `turn`-th ended turn was the last before it) has ended.
    async fn turn_over(&mut self, turn: usize) {
        let ended = self.turns.wait_for(|n| *n > turn);
        if tokio::time::timeout(TURN_END_WAIT, ended).await.is_err() {
            let rec = &self.desk.rec;
            rec.say(
                Who::Check,
                format!("the held call's turn did not end within {TURN_END_WAIT:?}; going on"),
            );
        }
    }

    /// How `/pending` lists card `id` now.
    async fn listed(&self, id: &str) -> Option<Listed> {
        match within("hitl-extauth /pending", self.desk.gate.pending()).await {
            Ok(list) => Some(match list.pending.iter().find(|c| c.id == id) {
                None => Listed::Absent,
                Some(card) if card.request.as_ref().is_some_and(|r| r.waiting) => Listed::Waiting,
                Some(_) => Listed::NotWaiting,
            }),
            Err(e) => {
                let rec = &self.desk.rec;
                rec.say(Who::Check, format!("FAIL hitl-extauth /pending: {e:#}"));
                None
            }
        }
    }

    /// The restarted gate's event stream (its open cards first); none if it cannot be read.
    pub(super) async fn events_again(&mut self) -> Option<Events> {
        match within("hitl-extauth /events", self.desk.gate.events()).await {
            Ok(events) => {
                self.resubscribed = true;
                Some(Box::pin(events))
            }
            Err(e) => {
                let rec = &self.desk.rec;
                rec.say(
                    Who::Check,
                    format!("FAIL hitl-extauth /events after the restart: {e:#}"),
                );
                None
            }
        }
    }
}
