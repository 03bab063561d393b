//! Step 4's parking: open the client connections, send every gated call at once, and wait
//! until the gate's `hitl_extauth_parked` gauge (plus any early answers) counts them all.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use hitl_wire::mockdb::tools;
use serde_json::json;
use tokio::task::JoinHandle;

use super::{STALL, answers::tag};
use crate::{
    Progress,
    mcp::{self, Reply},
    stack::Stack,
};

/// The calls in flight, and how long parking them all took.
pub(super) struct Parked {
    pub(super) handles: Vec<JoinHandle<anyhow::Result<Reply>>>,
    pub(super) took: Duration,
}

/// `connections` HTTP/2 clients, each connection opened (a `tools/list`) before the burst.
pub(super) async fn connect(
    url: &str,
    connections: usize,
    patience: Duration,
) -> anyhow::Result<Vec<reqwest::Client>> {
    let clients: Vec<reqwest::Client> = (0..connections)
        .map(|_| mcp::http2(patience))
        .collect::<anyhow::Result<_>>()?;
    for (i, http) in clients.iter().enumerate() {
        let id = 900_000 + i as u64;
        mcp::post(http, url, mcp::tools_list(id), None)
            .await?
            .rpc_result(id)
            .context("tools/list through Envoy over HTTP/2")?;
    }
    Ok(clients)
}

/// Send `calls` tagged `run_migration` calls over `clients` and wait until all are parked.
pub(super) async fn park_all(
    stack: &Stack,
    clients: &[reqwest::Client],
    url: &str,
    calls: usize,
) -> anyhow::Result<Parked> {
    // One action per call: `run_migration` (all the gated route serves) to the version in
    // place, each from a requester of its own. Re-sends of one action would attach to one
    // approval request, one card (issue #26), and the route takes only four versions. The
    // tokens are minted before the clock starts.
    let version = stack.db_client().state().await?.schema_version;
    let tokens = (0..calls)
        .map(|i| stack.issuer.mint(&format!("{}-{i}", mcp::USER)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let answered_early = Arc::new(AtomicUsize::new(0));
    let parking = Instant::now();
    let handles: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let http = clients[i % clients.len()].clone();
            let url = url.to_owned();
            let body = mcp::tools_call(
                i as u64,
                tools::RUN_MIGRATION,
                json!({ "version": version }),
            );
            let answered = Arc::clone(&answered_early);
            tokio::spawn(async move {
                let reply = mcp::post_as(&http, &url, body, Some(&tag(i)), Some(&token)).await;
                answered.fetch_add(1, Ordering::Relaxed);
                reply
            })
        })
        .collect();
    wait_parked(stack, calls, &answered_early, parking).await?;
    Ok(Parked {
        handles,
        took: parking.elapsed(),
    })
}

/// Until the gate counts `calls` parked (or answered early); fail when the count stalls.
async fn wait_parked(
    stack: &Stack,
    calls: usize,
    answered_early: &AtomicUsize,
    parking: Instant,
) -> anyhow::Result<()> {
    let http = mcp::http1(Duration::from_secs(10))?;
    let metrics_url = format!("{}/metrics", stack.extauth.options.admin_url());
    let mut progress = Progress::new("parking", calls);
    let (mut last_count, mut last_change) = (0, Instant::now());
    loop {
        let parked = parked_gauge(&http, &metrics_url).await? as usize;
        progress.tick(parked);
        let early = answered_early.load(Ordering::Relaxed);
        if parked + early >= calls {
            break;
        }
        if parked + early != last_count {
            (last_count, last_change) = (parked + early, Instant::now());
        }
        anyhow::ensure!(
            last_change.elapsed() < STALL,
            "parking stalled: {parked} of {calls} calls parked ({early} answered) after {:.0?}, \
             no change for {STALL:?}\n{}",
            parking.elapsed(),
            stack.log_tails(15)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    progress.finish();
    Ok(())
}

/// `hitl_extauth_parked` from the gate's `/metrics`.
async fn parked_gauge(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let text = http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("GET {url}"))?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("hitl_extauth_parked ")?.trim().parse().ok())
        .with_context(|| format!("no hitl_extauth_parked in {url}"))
}
