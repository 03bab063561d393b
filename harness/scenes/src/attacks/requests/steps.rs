//! The steps the approval-request attacks are made of, each through the gateway and checked
//! where it can be seen: a call sent as a requester, a request left open and approved, a call
//! that must park (its card found in `/pending`), an approved call that must run once (in
//! mock-db-mcp's audit), and a leftover rejected and its caller's answer waited for.

use std::time::{Duration, Instant};

use hitl_wire::{extauth::ParkedCall, headers};

use super::Attack;
use crate::attacks::{
    calls::{InFlight, LISTING_LIMIT},
    raw::{Answer, privileged_post, send_raw, short},
    run::{AttackReport, check, since},
};
use hitl_lab::requester::bearer;

impl Attack<'_> {
    /// `sub` sends `body` in the background, through the gateway.
    pub(super) fn send(
        &self,
        sub: &str,
        body: &str,
        patience: Duration,
    ) -> anyhow::Result<InFlight> {
        let token = bearer(&self.target.issuer.mint(sub)?);
        let request = privileged_post(
            &self.target.gateway,
            &[("authorization", &token), (headers::USER_ID, sub)],
            body,
        );
        let endpoint = self.target.gateway.clone();
        Ok(tokio::spawn(async move {
            send_raw(&endpoint, request.as_bytes(), patience).await
        }))
    }

    /// `sub` asks for `body` and hangs up; a reviewer approves the request left open with
    /// nobody waiting: its id.
    pub(super) async fn approved_and_unused(
        &self,
        sub: &str,
        body: &str,
    ) -> anyhow::Result<String> {
        let call = self.send(sub, body, Duration::from_secs(120))?;
        let id = self.card(sub, |_| true).await?.id;
        call.abort();
        self.card(sub, |c| c.request.as_ref().is_some_and(|r| !r.waiting))
            .await?;
        if let Err(why) = self
            .target
            .decider
            .decide(&id, true, "conformance: approve once", "platform-reviewer")
            .await?
        {
            anyhow::bail!("could not approve request {id}: {why}");
        }
        Ok(id)
    }

    /// `sub` sends `body`, which must park: the call, and its card in `/pending`.
    pub(super) async fn parks(
        &self,
        sub: &str,
        body: &str,
    ) -> anyhow::Result<(InFlight, ParkedCall)> {
        let call = self.send(sub, body, Duration::from_secs(120))?;
        match self.card(sub, |_| true).await {
            Ok(card) => Ok((call, card)),
            Err(e) if call.is_finished() => {
                anyhow::bail!(
                    "{e}; the call was answered instead: {}",
                    short(&call.await??)
                )
            }
            Err(e) => Err(e),
        }
    }

    /// `sub` sends `body` under approval `id`: it passes at once and runs exactly once, under
    /// that approval. The answer, described.
    pub(super) async fn runs_once(
        &self,
        report: &mut AttackReport,
        sub: &str,
        body: &str,
        id: &str,
    ) -> anyhow::Result<String> {
        let from = self.target.db.state().await?;
        let answer = self.send(sub, body, Duration::from_secs(30))?.await??;
        check(
            report,
            matches!(answer, Answer::Passed { .. }),
            format!(
                "the approved call passes for its requester: {}",
                short(&answer)
            ),
        );
        let after = self.target.db.state().await?;
        let last = from.audit.iter().map(|e| e.seq).max().unwrap_or(0);
        let runs: Vec<_> = after
            .audit
            .iter()
            .filter(|e| e.seq > last && e.executed())
            .collect();
        check(
            report,
            runs.len() == 1 && runs[0].approval_id.as_deref() == Some(id),
            format!(
                "mock-db-mcp ran it once, under approval {id} ({} runs)",
                runs.len()
            ),
        );
        Ok(answer.describe())
    }

    /// Reject request `id` (the call `call` waits on) as the conformance run's reviewer and
    /// wait for the call's answer, which must refuse.
    pub(super) async fn closed(
        &self,
        report: &mut AttackReport,
        id: &str,
        call: InFlight,
    ) -> anyhow::Result<String> {
        self.closed_maybe(report, Some(id), call).await
    }

    /// [`Attack::closed`]; with no `id`, only wait for the answer.
    pub(super) async fn closed_maybe(
        &self,
        report: &mut AttackReport,
        id: Option<&str>,
        call: InFlight,
    ) -> anyhow::Result<String> {
        if let Some(id) = id
            && let Err(why) = self.target.decider.clean_up(id).await?
        {
            check(
                report,
                false,
                format!("could not reject {id} afterwards: {why}"),
            );
        }
        let answer = tokio::time::timeout(Duration::from_secs(30), call).await???;
        check(
            report,
            matches!(answer, Answer::Refused { .. }),
            format!("rejected, the waiting call is refused: {}", short(&answer)),
        );
        Ok(answer.describe())
    }

    /// Nothing ran since the attack began but the approved calls, from mock-db-mcp's audit.
    pub(super) async fn ran_nothing(
        &self,
        report: &mut AttackReport,
        what: &str,
    ) -> anyhow::Result<()> {
        let after = self.target.db.state().await?;
        let (executed, refused) = since(&self.before, &after);
        check(
            report,
            executed.is_empty() && refused.is_empty(),
            format!("nothing reached the backend {what} ({executed:?}, refused {refused:?})"),
        );
        Ok(())
    }

    /// `sub`'s cards in `/pending`.
    pub(super) async fn cards_of(&self, sub: &str) -> anyhow::Result<Vec<ParkedCall>> {
        Ok(self
            .admin
            .pending_all()
            .await?
            .pending
            .into_iter()
            .filter(|c| c.requester.as_deref() == Some(sub))
            .collect())
    }

    /// `sub`'s card in `/pending` once it is listed and `ready` holds (within
    /// [`LISTING_LIMIT`]).
    pub(super) async fn card(
        &self,
        sub: &str,
        ready: impl Fn(&ParkedCall) -> bool,
    ) -> anyhow::Result<ParkedCall> {
        let deadline = Instant::now() + LISTING_LIMIT;
        loop {
            if let Some(card) = self.cards_of(sub).await?.into_iter().find(&ready) {
                return Ok(card);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "no card of {sub} as expected in /pending within {LISTING_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
