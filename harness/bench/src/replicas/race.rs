//! Step 6d, concurrent decisions spread over the two replicas: a call is held on A and its
//! card listed on both; then [`DECIDERS`] reviewers decide it at once (approve or reject),
//! half through A's admin API and half through B's. Exactly one `POST /decide` may answer
//! `200`, every other one `409`, and the held Check must get the winner's decision. Repeated
//! for a fresh action each round.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use hitl_wire::extauth::{DecideRequest, client::AdminError};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Barrier;

use super::{
    fleet::{self, Answer, Fleet, NAMES},
    parks::wait_listed,
};

/// Reviewers racing on one request, per round.
pub const DECIDERS: usize = 50;
/// A hang guard on each decision and on the held call's answer.
const PATIENCE: Duration = Duration::from_secs(30);

/// Step 6d's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Race {
    pub rounds: usize,
    pub deciders: usize,
    /// Rounds with exactly one `200` and every other answer `409`.
    pub one_winner_rounds: usize,
    /// Rounds whose held call got the winning decision (allowed if it approved, denied if
    /// it rejected).
    pub held_got_winner_rounds: usize,
    /// Over all rounds: `200`s, `409`s, anything else.
    pub ok: usize,
    pub conflict: usize,
    pub other: usize,
    /// Rounds whose one winning decision went through A, through B.
    pub won_on: [usize; 2],
    /// What went wrong in the rounds that were not clean, verbatim.
    pub problems: Vec<String>,
}

/// `rounds` rounds of [`DECIDERS`] decisions at once.
pub async fn measure(fleet: &Fleet, rounds: usize) -> anyhow::Result<Race> {
    let token = fleet.token()?;
    let mut race = Race {
        rounds,
        deciders: DECIDERS,
        one_winner_rounds: 0,
        held_got_winner_rounds: 0,
        ok: 0,
        conflict: 0,
        other: 0,
        won_on: [0; 2],
        problems: Vec::new(),
    };
    for round in 0..rounds {
        one_round(fleet, &token, &format!("race-{round}"), &mut race).await?;
    }
    Ok(race)
}

/// Hold call `tag` on A, race the decisions on it, count the answers into `race`.
async fn one_round(fleet: &Fleet, token: &str, tag: &str, race: &mut Race) -> anyhow::Result<()> {
    let check = fleet::migration(tag, json!({ "version": tag }), token);
    let held = tokio::spawn(fleet::send(fleet.a().client(), check));
    let id = wait_listed(fleet, fleet.a(), tag, 1).await?.remove(0).id;
    wait_listed(fleet, fleet.b(), tag, 1).await?;

    let (mut won, mut conflict) = (Vec::new(), 0);
    for (n, approve, answer) in decide_at_once(fleet, &id).await {
        match answer {
            Ok(()) => won.push((n % 2, approve)),
            Err(AdminError::Conflict(_)) => conflict += 1,
            Err(e) => {
                race.other += 1;
                race.problems.push(format!("{tag}: a decision got {e}"));
            }
        }
    }
    race.ok += won.len();
    race.conflict += conflict;
    let answer = tokio::time::timeout(PATIENCE, held)
        .await
        .with_context(|| format!("{tag}: the held call was never answered"))???;
    let [(on, approved)] = won[..] else {
        race.problems
            .push(format!("{tag}: {} decisions won", won.len()));
        return Ok(());
    };
    race.won_on[on] += 1;
    if conflict == DECIDERS - 1 {
        race.one_winner_rounds += 1;
    }
    if approved == (answer == Answer::Allowed) {
        race.held_got_winner_rounds += 1;
    } else {
        race.problems.push(format!(
            "{tag}: the winner on {} {}, but the call held on A got {answer:?}",
            NAMES[on],
            if approved { "approved" } else { "rejected" },
        ));
    }
    Ok(())
}

/// [`DECIDERS`] decisions on `id`, sent together (a barrier releases them), alternately
/// through A and B (even `n` on A), two in three approving: (n, approved?, answer) each.
async fn decide_at_once(fleet: &Fleet, id: &str) -> Vec<(usize, bool, Result<(), AdminError>)> {
    let barrier = Arc::new(Barrier::new(DECIDERS));
    let tasks: Vec<_> = (0..DECIDERS)
        .map(|n| {
            let admin = fleet.replicas[n % 2].admin.clone();
            let barrier = Arc::clone(&barrier);
            let (id, approve) = (id.to_owned(), n % 3 != 0);
            tokio::spawn(async move {
                let decision = DecideRequest {
                    id_token: None,
                    approved: approve,
                    reason: format!("reviewer {n}"),
                    reviewer: Some(format!("reviewer-{n}")),
                };
                barrier.wait().await;
                let answer =
                    match tokio::time::timeout(PATIENCE, admin.decide(&id, &decision)).await {
                        Ok(answer) => answer.map(drop),
                        Err(_) => Err(AdminError::Protocol(format!("no answer in {PATIENCE:?}"))),
                    };
                (n, approve, answer)
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(DECIDERS);
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(answer) => answers.push(answer),
            Err(e) => answers.push((n, false, Err(AdminError::Protocol(e.to_string())))),
        }
    }
    answers
}
