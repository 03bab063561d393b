//! Step 6b, parks per second on PostgreSQL: N Checks (each an action of its own) go to
//! replica A at once, over connections of at most [`STREAMS_PER_CONNECTION`] streams; the
//! clock stops when A's `hitl_extauth_parked` gauge counts all N (a call is counted once its
//! park is committed to the store). B's `/events` must show every card (timed too: B hears of
//! each request through PostgreSQL); then they are drained: every one approved, half on A
//! and half on B, and every held Check must be answered allowed.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use hitl_wire::extauth::{DecideRequest, Event, ParkedCall};
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinHandle;

use super::fleet::{self, Answer, Fleet, Replica};
use crate::{Progress, mcp::TAG_HEADER};

/// Held Checks per HTTP/2 connection to a replica.
pub const STREAMS_PER_CONNECTION: usize = 1_000;
/// Give up when a count has not moved for this long.
const STALL: Duration = Duration::from_secs(30);
/// Decisions in flight at once while draining.
const DECIDE_CONCURRENCY: usize = 32;
/// How long after A holds them all B may take to show every card.
const SEEN_PATIENCE: Duration = Duration::from_secs(300);
/// Problems listed in the report (the counts cover all of them).
const SHOWN_PROBLEMS: usize = 5;

/// Step 6b's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Parks {
    pub calls: usize,
    /// First Check sent → A counts every call held.
    pub park_all_s: f64,
    pub parks_per_s: f64,
    /// First Check sent → B's `/events` has shown every card (B hears of each request
    /// through PostgreSQL and reads it).
    pub seen_on_b_s: f64,
    /// First approval sent → last Check answered.
    pub drain_s: f64,
    /// Checks answered allowed after their approval.
    pub released: usize,
    /// The first few problems, verbatim.
    pub problems: Vec<String>,
}

/// Park `calls` on A at once, then approve them all across both replicas.
pub async fn measure(fleet: &Fleet, calls: usize) -> anyhow::Result<Parks> {
    let a = fleet.a();
    let clients = a
        .clients(calls.div_ceil(STREAMS_PER_CONNECTION).max(1))
        .await?;
    let token = fleet.token()?;
    let checks: Vec<_> = (0..calls)
        .map(|i| {
            let tag = format!("parks-{i}");
            fleet::migration(&tag, json!({ "version": tag }), &token)
        })
        .collect();
    let on_b = watch_parked(fleet.b(), "parks-", calls).await?;
    let started = Instant::now();
    let handles: Vec<JoinHandle<anyhow::Result<Answer>>> = checks
        .into_iter()
        .enumerate()
        .map(|(i, check)| tokio::spawn(fleet::send(clients[i % clients.len()].clone(), check)))
        .collect();
    wait_held(fleet, a, calls, &handles).await?;
    let park_all = started.elapsed();
    let (seen_all, ids) = tokio::time::timeout(SEEN_PATIENCE, on_b)
        .await
        .with_context(|| {
            format!(
                "B's /events did not show all {calls} cards within {SEEN_PATIENCE:?}\n{}",
                fleet.log_tails()
            )
        })???;

    let (drain, released, mut problems) = drain(fleet, &ids, handles).await;
    let count = problems.len();
    problems.truncate(SHOWN_PROBLEMS);
    if count > SHOWN_PROBLEMS {
        problems.push(format!("… and {} more", count - SHOWN_PROBLEMS));
    }
    Ok(Parks {
        calls,
        park_all_s: park_all.as_secs_f64(),
        parks_per_s: calls as f64 / park_all.as_secs_f64().max(f64::EPSILON),
        seen_on_b_s: seen_all.saturating_duration_since(started).as_secs_f64(),
        drain_s: drain.as_secs_f64(),
        released,
        problems,
    })
}

/// Until `replica` holds `calls` (or some were answered early, which ends the wait too and
/// shows up as not released); fail when the count stalls.
pub async fn wait_held<T>(
    fleet: &Fleet,
    replica: &Replica,
    calls: usize,
    handles: &[JoinHandle<T>],
) -> anyhow::Result<()> {
    let mut progress = Progress::new("held", calls);
    let (mut last, mut changed) = (usize::MAX, Instant::now());
    loop {
        let held = replica.parked_gauge().await? as usize;
        let answered = handles.iter().filter(|h| h.is_finished()).count();
        progress.tick(held);
        if held + answered >= calls {
            return Ok(());
        }
        if held + answered != last {
            (last, changed) = (held + answered, Instant::now());
        }
        anyhow::ensure!(
            changed.elapsed() < STALL,
            "holding stalled: {held} of {calls} held on {} ({answered} answered), no change \
             for {STALL:?}\n{}",
            replica.name,
            fleet.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Subscribe to `replica`'s `/events` now; the task ends when it has shown `n` `parked`
/// cards tagged `prefix…`: when the last came, and their ids.
async fn watch_parked(
    replica: &Replica,
    prefix: &'static str,
    n: usize,
) -> anyhow::Result<JoinHandle<anyhow::Result<(Instant, Vec<String>)>>> {
    let mut events = Box::pin(replica.admin.events().await?);
    Ok(tokio::spawn(async move {
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            let event = events.next().await.context("the /events stream ended")??;
            if let Event::Parked { call } = event
                && call
                    .headers
                    .get(TAG_HEADER)
                    .is_some_and(|t| t.starts_with(prefix))
            {
                ids.push(call.id);
            }
        }
        Ok((Instant::now(), ids))
    }))
}

/// Until `replica`'s `/pending` lists `n` cards whose tag starts with `prefix`: those cards.
pub async fn wait_listed(
    fleet: &Fleet,
    replica: &Replica,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Vec<ParkedCall>> {
    let (mut last, mut changed) = (usize::MAX, Instant::now());
    loop {
        let mut cards = replica.admin.pending_all().await?.pending;
        cards.retain(|c| {
            c.headers
                .get(TAG_HEADER)
                .is_some_and(|t| t.starts_with(prefix))
        });
        if cards.len() >= n {
            return Ok(cards);
        }
        if cards.len() != last {
            (last, changed) = (cards.len(), Instant::now());
        }
        anyhow::ensure!(
            changed.elapsed() < STALL,
            "replica {} lists {} of {n} cards, no change for {STALL:?}\n{}",
            replica.name,
            cards.len(),
            fleet.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Approve every request (alternately on A and B), then collect every held Check's answer:
/// (first approval → last answer, Checks allowed, problems).
async fn drain(
    fleet: &Fleet,
    ids: &[String],
    handles: Vec<JoinHandle<anyhow::Result<Answer>>>,
) -> (Duration, usize, Vec<String>) {
    eprintln!("    approving {} held calls on A and B…", ids.len());
    let started = Instant::now();
    let decision = DecideRequest {
        id_token: None,
        approved: true,
        reason: String::new(),
        reviewer: Some(crate::mcp::REVIEWER.into()),
    };
    let mut problems: Vec<String> = futures::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let admin = fleet.replicas[i % 2].admin.clone();
            let decision = decision.clone();
            async move {
                match tokio::time::timeout(STALL, admin.decide(id, &decision)).await {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(format!("decide {id}: {e}")),
                    Err(_) => Some(format!("decide {id}: no answer in {STALL:?}")),
                }
            }
        })
        .buffer_unordered(DECIDE_CONCURRENCY)
        .filter_map(|p| async move { p })
        .collect()
        .await;
    let mut released = 0;
    let mut progress = Progress::new("draining", handles.len());
    for (i, handle) in handles.into_iter().enumerate() {
        match tokio::time::timeout(STALL, handle).await {
            Ok(Ok(Ok(Answer::Allowed))) => released += 1,
            Ok(Ok(Ok(Answer::Denied(why)))) => {
                problems.push(format!("parks-{i}: denied after its approval: {why}"));
            }
            Ok(Ok(Err(e))) => problems.push(format!("parks-{i}: {e:#}")),
            Ok(Err(e)) => problems.push(format!("parks-{i}: task failed: {e}")),
            Err(_) => problems.push(format!("parks-{i}: no answer within {STALL:?}")),
        }
        progress.tick(i + 1);
    }
    progress.finish();
    (started.elapsed(), released, problems)
}
