//! Step 6c, open requests with no caller held: Checks (each an action of its own) are held on
//! replica A in batches of [`BATCH`], then cancelled — the client drops each call, as a
//! gateway does when its client hangs up — which leaves every request open with nobody
//! waiting. Each replica's resident memory (`VmRSS`) is read before the first batch and
//! after the last, and both replicas' `/pending` must list every request with
//! `request.waiting == false`.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::{
    fleet::{self, Fleet, NAMES},
    parks::{STREAMS_PER_CONNECTION, wait_held, wait_listed},
};
use crate::Progress;

/// Checks held at once before they are cancelled.
pub const BATCH: usize = 2_000;
/// Give up when A's held count does not fall back to zero within this after a cancel.
const CANCEL_PATIENCE: Duration = Duration::from_secs(60);
/// Let both replicas settle (B hears the last changes, allocators return what they will)
/// before memory is read.
const SETTLE: Duration = Duration::from_secs(2);

/// Step 6c's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Open {
    pub requests: usize,
    /// First Check sent → the last one cancelled and A holding nothing.
    pub open_all_s: f64,
    /// Per replica (A, B): resident memory before the first request and after the last.
    pub rss_before_kib: [u64; 2],
    pub rss_after_kib: [u64; 2],
    /// Per replica: the cards its `/pending` lists from this row, and how many of them say
    /// a caller is waiting (0 expected).
    pub listed: [usize; 2],
    pub listed_waiting: [usize; 2],
}

impl Open {
    /// Replica `i`'s resident memory growth per open request, KiB.
    pub fn kib_per_request(&self, i: usize) -> f64 {
        (self.rss_after_kib[i] as f64 - self.rss_before_kib[i] as f64) / self.requests.max(1) as f64
    }
}

/// Open `requests` requests with no caller held; memory before and after.
pub async fn measure(fleet: &Fleet, requests: usize) -> anyhow::Result<Open> {
    let rss = || -> anyhow::Result<[u64; 2]> { Ok([fleet.a().rss_kib()?, fleet.b().rss_kib()?]) };
    let rss_before_kib = rss()?;
    let clients = fleet
        .a()
        .clients(BATCH.div_ceil(STREAMS_PER_CONNECTION))
        .await?;
    let mut progress = Progress::new("opened and cancelled", requests);
    let started = Instant::now();
    for first in (0..requests).step_by(BATCH) {
        // Tokens live 15 minutes: a fresh one per batch.
        let token = fleet.token()?;
        let n = BATCH.min(requests - first);
        let handles: Vec<_> = (first..first + n)
            .map(|i| {
                let tag = format!("open-{i}");
                let check = fleet::migration(&tag, json!({ "version": tag }), &token);
                tokio::spawn(fleet::send(clients[i % clients.len()].clone(), check))
            })
            .collect();
        wait_held(fleet, fleet.a(), n, &handles).await?;
        let early = handles.iter().filter(|h| h.is_finished()).count();
        anyhow::ensure!(
            early == 0,
            "{early} Checks of batch {first}.. were answered before they were cancelled\n{}",
            fleet.log_tails()
        );
        handles.iter().for_each(|h| h.abort());
        wait_released(fleet).await?;
        progress.tick(first + n);
    }
    progress.finish();
    let open_all_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let rss_after_kib = rss()?;

    let (mut listed, mut listed_waiting) = ([0; 2], [0; 2]);
    for (i, replica) in fleet.replicas.iter().enumerate() {
        let cards = wait_listed(fleet, replica, "open-", requests).await?;
        listed[i] = cards.len();
        listed_waiting[i] = cards
            .iter()
            .filter(|c| c.request.as_ref().is_none_or(|r| r.waiting))
            .count();
        eprintln!(
            "    replica {}: {} open requests listed, {} with a caller waiting",
            NAMES[i], listed[i], listed_waiting[i]
        );
    }
    Ok(Open {
        requests,
        open_all_s,
        rss_before_kib,
        rss_after_kib,
        listed,
        listed_waiting,
    })
}

/// Until A holds no call any more (every cancelled Check let go).
async fn wait_released(fleet: &Fleet) -> anyhow::Result<()> {
    let deadline = Instant::now() + CANCEL_PATIENCE;
    loop {
        let held = fleet.a().parked_gauge().await?;
        if held == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "A still holds {held} cancelled calls after {CANCEL_PATIENCE:?}\n{}",
            fleet.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
