//! Several keys (the approval policy's k-of-n, scene 9): reviewers approve one card in turn;
//! after each but the last the gate must count the approval and keep the call waiting, and
//! the last releases it. Each step is said in the transcript and counted for the judge.

use hitl_wire::extauth::{DecideAnswer, DecideRequest};

use super::{Desk, Work};
use crate::scene::{run::within, transcript::Who};

impl Work {
    /// `approvers` approve card `id` in turn.
    pub(super) async fn keys(&mut self, id: &str, approvers: &[String]) {
        let Desk { gate, rec, .. } = &self.desk;
        let k = approvers.len();
        for (n, approver) in approvers.iter().enumerate() {
            let last = n + 1 == k;
            rec.say(
                Who::Reviewer,
                format!("{approver} approves (key {} of {k})", n + 1),
            );
            let request = DecideRequest {
                approved: true,
                reason: String::new(),
                reviewer: Some(approver.clone()),
                id_token: None,
            };
            let answer = within("hitl-extauth /decide", gate.decide_step(id, &request)).await;
            match answer {
                Ok(DecideAnswer::Counted(card)) if !last => {
                    let names: Vec<String> = card
                        .request
                        .as_ref()
                        .map(|r| r.approvals.iter().map(|a| a.reviewer.clone()).collect())
                        .unwrap_or_default();
                    rec.say(
                        Who::Tier2,
                        format!(
                            "the gate counts {} of {k} approvals ({}); the call still waits",
                            names.len(),
                            names.join(", ")
                        ),
                    );
                    if let Some(park) = self.parks.iter_mut().find(|p| p.id == id) {
                        park.counted += 1;
                    }
                }
                Ok(DecideAnswer::Decided(_)) if last => {}
                Ok(DecideAnswer::Decided(_)) => {
                    rec.say(
                        Who::Check,
                        format!("FAIL {approver}'s approval alone released the call"),
                    );
                    return;
                }
                Ok(DecideAnswer::Counted(_)) => {
                    rec.say(Who::Check, "FAIL the last key did not release the call");
                    return;
                }
                Err(e) => {
                    rec.say(
                        Who::Check,
                        format!("FAIL deciding {id} as {approver}: {e:#}"),
                    );
                    return;
                }
            }
        }
    }
}
