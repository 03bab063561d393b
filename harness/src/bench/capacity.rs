//! Step 4: many calls parked at once, through the real Envoy. N gated `tools/call`s go out
//! together over a few HTTP/2 connections and all park at hitl-extauth; then every one is
//! decided — even-numbered approved, odd-numbered rejected with its own tag as the reason —
//! and each client checks it got exactly its own decision: an approved call gets the tool
//! result for its own JSON-RPC id, a rejected one a 403 whose reason is its own tag and whose
//! parked-call id is the one the gate listed for it. Resident memory of hitl-extauth is read
//! before and after parking.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::StreamExt as _;
use hitl_wire::{
    extauth::{DecideRequest, DenyBody},
    mockdb::{paths, tools},
};
use serde::Serialize;
use serde_json::json;

use super::{
    Progress, Target, host,
    mcp::{self, Reply, TAG_HEADER},
    stack::Stack,
};

/// Resident memory hitl-extauth may grow by per parked call.
pub const RSS_PER_CALL_TARGET_KIB: f64 = 16.0;
/// Parked calls per HTTP/2 connection to Envoy. Envoy accepts at most 1024 concurrent
/// streams on one downstream connection unless its `http2_protocol_options` say otherwise
/// (`GatewayPlan::lab` does not), so more calls take more connections.
pub const STREAMS_PER_CONNECTION: usize = 1_000;
/// Give up when the parked count has not moved for this long.
const STALL: Duration = Duration::from_secs(20);
/// Longest one decision may take (a hang guard).
const DECIDE_PATIENCE: Duration = Duration::from_secs(30);

/// How long after the decisions every client must have its answer (a hang guard).
fn drain_patience(calls: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(10) * u32::try_from(calls).unwrap_or(u32::MAX)
}
/// Decisions in flight at once (a busy reviewer team, not one per call at the same instant).
const DECIDE_CONCURRENCY: usize = 32;
/// Problems listed in the report (the counts cover all of them).
const SHOWN_PROBLEMS: usize = 5;

/// Step 4's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Capacity {
    /// How the calls reached the gate.
    pub via: String,
    pub calls: usize,
    /// First request sent → the gate's `hitl_extauth_parked` gauge reads `calls` (polled
    /// every 100 ms).
    pub park_all_s: f64,
    /// Park throughput: `calls / park_all_s` (each park committed to the audit before it is
    /// counted, group commit included).
    pub parks_per_s: f64,
    /// First decision sent → last decision answered.
    pub decide_all_s: f64,
    /// First decision sent → last client has its answer.
    pub drain_s: f64,
    pub extauth_rss_before_kib: u64,
    pub extauth_rss_parked_kib: u64,
    pub extauth_rss_drained_kib: u64,
    /// (parked − before) / calls.
    pub extauth_rss_per_call_kib: f64,
    pub extauth_fds_parked: Option<usize>,
    pub envoy_rss_per_call_kib: Option<f64>,
    pub envoy_fds_parked: Option<usize>,
    /// Approved calls that got their own tool result.
    pub approved_ok: usize,
    /// Rejected calls that got their own 403 and reason.
    pub rejected_ok: usize,
    /// Calls with no decision at all (error, timeout, or answered before any decision).
    pub lost: usize,
    /// Calls that got an answer that was not theirs.
    pub crossed: usize,
    /// The first few problems, verbatim.
    pub problems: Vec<String>,
}

impl Capacity {
    pub fn targets(&self) -> Vec<Target> {
        vec![
            Target::below(
                format!("capacity {}: hitl-extauth RSS per parked call", self.calls),
                "KiB",
                self.extauth_rss_per_call_kib,
                RSS_PER_CALL_TARGET_KIB,
            ),
            Target::at_most(
                format!("capacity {}: calls lost", self.calls),
                "",
                self.lost as f64,
                0.0,
            ),
            Target::at_most(
                format!("capacity {}: calls crossed", self.calls),
                "",
                self.crossed as f64,
                0.0,
            ),
        ]
    }
}

/// Park `calls` at once, decide them all, check every answer.
pub async fn measure(stack: &Stack, calls: usize, patience: Duration) -> anyhow::Result<Capacity> {
    let admin = stack.admin()?;
    let version = stack.db_client().state().await?.schema_version;
    let url = stack.gateway_url(paths::PRIVILEGED_MCP);
    let connections = calls.div_ceil(STREAMS_PER_CONNECTION).max(1);
    let clients: Vec<reqwest::Client> = (0..connections)
        .map(|_| mcp::http2(patience))
        .collect::<anyhow::Result<_>>()?;
    // Open each connection before the burst.
    for (i, http) in clients.iter().enumerate() {
        let id = 900_000 + i as u64;
        mcp::post(http, &url, mcp::tools_list(id), None)
            .await?
            .rpc_result(id)
            .context("tools/list through Envoy over HTTP/2")?;
    }
    let extauth_pid = stack.extauth_pid().context("hitl-extauth has no pid")?;
    let envoy_pid = stack.envoy_pid();
    let rss = |pid: u32| host::rss_kib(pid).context("reading VmRSS");
    let extauth_rss_before_kib = rss(extauth_pid)?;
    let envoy_rss_before = envoy_pid.and_then(host::rss_kib);

    // Park them all.
    let answered_early = Arc::new(AtomicUsize::new(0));
    let parking = Instant::now();
    let handles: Vec<_> = (0..calls)
        .map(|i| {
            let http = clients[i % connections].clone();
            let url = url.clone();
            let body = mcp::tools_call(
                i as u64,
                tools::RUN_MIGRATION,
                json!({ "version": version }),
            );
            let answered = Arc::clone(&answered_early);
            tokio::spawn(async move {
                let reply = mcp::post(&http, &url, body, Some(&tag(i))).await;
                answered.fetch_add(1, Ordering::Relaxed);
                reply
            })
        })
        .collect();
    let http = mcp::http1(Duration::from_secs(10))?;
    let metrics_url = format!("{}/metrics", stack.extauth.admin_url());
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
            stack.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let park_all = parking.elapsed();
    progress.finish();
    let extauth_rss_parked_kib = rss(extauth_pid)?;
    let envoy_rss_parked = envoy_pid.and_then(host::rss_kib);
    let extauth_fds_parked = host::open_fds(extauth_pid);
    let envoy_fds_parked = envoy_pid.and_then(host::open_fds);

    // Which parked call is whose.
    let pending = admin.pending().await?.pending;
    let mut parked_ids: HashMap<usize, String> = HashMap::with_capacity(pending.len());
    let mut problems = Vec::new();
    for call in pending {
        match call.headers.get(TAG_HEADER).and_then(|t| untag(t)) {
            Some(i) if parked_ids.insert(i, call.id.clone()).is_none() => {}
            _ => problems.push(format!(
                "parked call {} has a missing or repeated tag",
                call.id
            )),
        }
    }

    // Decide them all: even approved, odd rejected with the tag as the reason.
    eprintln!("    deciding {} parked calls…", parked_ids.len());
    let deciding = Instant::now();
    let decide_errors: Vec<String> = futures::stream::iter(parked_ids.iter())
        .map(|(&i, id)| {
            let admin = admin.clone();
            async move {
                let decision = DecideRequest {
                    approved: approved(i),
                    reason: if approved(i) { String::new() } else { tag(i) },
                    reviewer: Some("bench".into()),
                };
                match tokio::time::timeout(DECIDE_PATIENCE, admin.decide(id, &decision)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("decide {}: {e:#}", tag(i))),
                    Err(_) => Err(format!(
                        "decide {}: no answer in {DECIDE_PATIENCE:?}",
                        tag(i)
                    )),
                }
            }
        })
        .buffer_unordered(DECIDE_CONCURRENCY)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    let decide_all = deciding.elapsed();
    problems.extend(decide_errors);

    // Every client's answer.
    let mut last_answer = deciding;
    let (mut approved_ok, mut rejected_ok, mut lost, mut crossed) = (0, 0, 0, 0);
    let mut drain_progress = Progress::new("draining", calls);
    let drain_deadline = tokio::time::Instant::now() + drain_patience(calls);
    for (i, handle) in handles.into_iter().enumerate() {
        let reply = match tokio::time::timeout_at(drain_deadline, handle).await {
            Err(_) => {
                lost += 1;
                problems.push(format!(
                    "{}: no answer within {:?} of the decisions",
                    tag(i),
                    drain_patience(calls)
                ));
                continue;
            }
            Ok(Ok(Ok(reply))) => reply,
            Ok(Ok(Err(e))) => {
                lost += 1;
                problems.push(format!("{}: {e:#}", tag(i)));
                continue;
            }
            Ok(Err(e)) => {
                lost += 1;
                problems.push(format!("{}: client task failed: {e}", tag(i)));
                continue;
            }
        };
        last_answer = last_answer.max(reply.done);
        if reply.done < deciding {
            lost += 1;
            problems.push(format!(
                "{}: answered before any decision: HTTP {} {}",
                tag(i),
                reply.status,
                reply.body
            ));
            continue;
        }
        match own_answer(i, parked_ids.get(&i), &reply) {
            Ok(true) => approved_ok += 1,
            Ok(false) => rejected_ok += 1,
            Err(e) => {
                crossed += 1;
                problems.push(format!("{}: {e:#}", tag(i)));
            }
        }
        drain_progress.tick(i + 1);
    }
    drain_progress.finish();
    let drain = last_answer - deciding;
    let extauth_rss_drained_kib = rss(extauth_pid)?;

    let per_call = |before: u64, after: u64| (after as f64 - before as f64) / calls.max(1) as f64;
    let problem_count = problems.len();
    problems.truncate(SHOWN_PROBLEMS);
    if problem_count > SHOWN_PROBLEMS {
        problems.push(format!("… and {} more", problem_count - SHOWN_PROBLEMS));
    }
    Ok(Capacity {
        via: format!(
            "Envoy, HTTP/2 (h2c), {connections} client connection(s) of at most \
             {STREAMS_PER_CONNECTION} streams"
        ),
        calls,
        park_all_s: park_all.as_secs_f64(),
        parks_per_s: calls as f64 / park_all.as_secs_f64().max(f64::EPSILON),
        decide_all_s: decide_all.as_secs_f64(),
        drain_s: drain.as_secs_f64(),
        extauth_rss_before_kib,
        extauth_rss_parked_kib,
        extauth_rss_drained_kib,
        extauth_rss_per_call_kib: per_call(extauth_rss_before_kib, extauth_rss_parked_kib),
        extauth_fds_parked,
        envoy_rss_per_call_kib: envoy_rss_before
            .zip(envoy_rss_parked)
            .map(|(before, after)| per_call(before, after)),
        envoy_fds_parked,
        approved_ok,
        rejected_ok,
        lost,
        crossed,
        problems,
    })
}

/// Call `i`'s decision: even approved, odd rejected.
fn approved(i: usize) -> bool {
    i.is_multiple_of(2)
}

fn tag(i: usize) -> String {
    format!("capacity-{i}")
}

fn untag(tag: &str) -> Option<usize> {
    tag.strip_prefix("capacity-")?.parse().ok()
}

/// Whether `reply` is call `i`'s own decision: `Ok(true)` its tool result (approved),
/// `Ok(false)` its own rejection, `Err` anything else.
fn own_answer(i: usize, parked_id: Option<&String>, reply: &Reply) -> anyhow::Result<bool> {
    if approved(i) {
        reply.rpc_result(i as u64).context("approved")?;
        return Ok(true);
    }
    anyhow::ensure!(
        reply.status == 403,
        "rejected, but got HTTP {}: {}",
        reply.status,
        reply.body
    );
    let deny: DenyBody = serde_json::from_str(&reply.body)
        .with_context(|| format!("rejected, but the 403 is not a deny body: {}", reply.body))?;
    anyhow::ensure!(
        deny.reason == tag(i) && deny.id.as_ref() == parked_id,
        "rejected, but with someone else's decision: {}",
        reply.body
    );
    Ok(false)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            took: Duration::ZERO,
            done: Instant::now(),
        }
    }

    #[test]
    fn tags_round_trip() {
        assert_eq!(untag(&tag(42)), Some(42));
        assert_eq!(untag("release-42"), None);
    }

    #[test]
    fn an_approved_call_needs_its_own_result() {
        let ok = reply(200, json!({"jsonrpc": "2.0", "id": 4, "result": {}}));
        assert!(own_answer(4, None, &ok).unwrap());
        assert!(own_answer(6, None, &ok).is_err(), "someone else's result");
        let denied = reply(403, json!({"approved": false, "reason": "capacity-4"}));
        assert!(own_answer(4, None, &denied).is_err());
    }

    #[test]
    fn a_rejected_call_needs_its_own_reason_and_id() {
        let id = "p-3".to_owned();
        let own = reply(
            403,
            json!({"approved": false, "reason": "capacity-3", "id": "p-3"}),
        );
        assert!(!own_answer(3, Some(&id), &own).unwrap());
        let other = reply(
            403,
            json!({"approved": false, "reason": "capacity-5", "id": "p-3"}),
        );
        assert!(own_answer(3, Some(&id), &other).is_err());
        let other_id = reply(
            403,
            json!({"approved": false, "reason": "capacity-3", "id": "p-5"}),
        );
        assert!(own_answer(3, Some(&id), &other_id).is_err());
        let released = reply(200, json!({"jsonrpc": "2.0", "id": 3, "result": {}}));
        assert!(own_answer(3, Some(&id), &released).is_err());
    }
}
