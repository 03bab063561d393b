//! Step 6a, decision on one replica → release on the other, one call at a time: a Check for
//! a `tools/call run_migration` (an action of its own each round) is held on replica A; its
//! card shows up as a `parked` event on replica B's `/events`; B approves it with `POST
//! /decide`; the time runs from just before that POST to A's answer to the Check. It includes
//! B's commit, PostgreSQL's NOTIFY to A, A reading the request and answering the Check.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use hitl_wire::extauth::{DecideRequest, Event};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::fleet::{self, Answer, Fleet};
use crate::{Progress, mcp::TAG_HEADER, stats::Summary};

/// How long one round may take before the bench gives up (a hang guard).
const PATIENCE: Duration = Duration::from_secs(30);

/// Step 6a's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Handoff {
    /// `POST /decide` on B sent → the Check answered on A.
    pub decision_to_release: Summary,
    /// The `POST /decide` round trip on B alone (it answers once the decision is committed).
    pub decide_round_trip: Summary,
}

/// `samples` timed rounds after `warmup` untimed ones.
pub async fn measure(fleet: &Fleet, samples: usize, warmup: usize) -> anyhow::Result<Handoff> {
    let mut events = Box::pin(fleet.b().admin.events().await?);
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let subscriber = tokio::spawn(async move {
        while let Some(Ok(event)) = events.next().await {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    let token = fleet.token()?;
    let (mut release, mut rtt) = (Vec::new(), Vec::new());
    let mut progress = Progress::new("decision on B → release on A", warmup + samples);
    for round in 0..warmup + samples {
        let (released, decided) = one_round(fleet, &token, round, &mut rx).await?;
        if round >= warmup {
            release.push(released);
            rtt.push(decided);
        }
        progress.tick(round + 1);
    }
    progress.finish();
    subscriber.abort();
    let summary = |s: &[Duration]| Summary::of(s).context("no samples taken");
    Ok(Handoff {
        decision_to_release: summary(&release)?,
        decide_round_trip: summary(&rtt)?,
    })
}

/// Hold round `round`'s call on A, approve it on B: (decision → release, decide round trip).
async fn one_round(
    fleet: &Fleet,
    token: &str,
    round: usize,
    rx: &mut mpsc::UnboundedReceiver<Event>,
) -> anyhow::Result<(Duration, Duration)> {
    let tag = format!("handoff-{round}");
    let check = fleet::migration(&tag, json!({ "version": tag }), token);
    let client = fleet.a().client();
    let held = tokio::spawn(async move {
        let answer = fleet::send(client, check).await;
        (Instant::now(), answer)
    });

    let card = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Event::Parked { call } = rx.recv().await.context("B's /events ended")?
                && call.headers.get(TAG_HEADER) == Some(&tag)
            {
                return anyhow::Ok(call.id);
            }
        }
    })
    .await
    .with_context(|| format!("{tag} held on A never showed on B\n{}", fleet.log_tails()))??;

    let decision = DecideRequest {
        id_token: None,
        approved: true,
        reason: String::new(),
        reviewer: Some(crate::mcp::REVIEWER.into()),
    };
    let decided_at = Instant::now();
    tokio::time::timeout(PATIENCE, fleet.b().admin.decide(&card, &decision))
        .await
        .context("POST /decide on B timed out")??;
    let decided = decided_at.elapsed();
    let (answered_at, answer) = tokio::time::timeout(PATIENCE, held)
        .await
        .with_context(|| format!("{tag} approved on B was never released on A"))??;
    let released = answered_at.saturating_duration_since(decided_at);
    if let Answer::Denied(why) = answer? {
        anyhow::bail!(
            "{tag} approved on B was denied on A: {why}\n{}",
            fleet.log_tails()
        );
    }
    Ok((released, decided))
}
