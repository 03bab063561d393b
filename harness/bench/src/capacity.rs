//! Step 4: many calls parked at once, through the real Envoy. N gated `tools/call`s go out
//! together over a few HTTP/2 connections and all park at hitl-extauth; then every one is
//! decided — even-numbered approved, odd-numbered rejected with its own tag as the reason —
//! and each client checks it got exactly its own decision: an approved call gets the tool
//! result for its own JSON-RPC id, a rejected one a 403 whose reason is its own tag and whose
//! parked-call id is the one the gate listed for it. Resident memory of hitl-extauth is read
//! before and after parking.
//!
//! The parking is in `park`, the decisions and the answers' checks in `answers`.

mod answers;
mod park;

use std::time::Duration;

use anyhow::Context as _;
use hitl_wire::mockdb::paths;
use serde::Serialize;

use super::{Target, host, stack::Stack};

/// Resident memory hitl-extauth may grow by per parked call.
pub const RSS_PER_CALL_TARGET_KIB: f64 = 16.0;
/// Parked calls per HTTP/2 connection to Envoy. Envoy accepts at most 1024 concurrent
/// streams on one downstream connection unless its `http2_protocol_options` say otherwise
/// (the plan generated from the manifests does not), so more calls take more connections.
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

    /// Step 4's lines of the report.
    pub fn render(&self, w: &mut String) {
        use std::fmt::Write as _;
        let c = self;
        let _ = writeln!(
            w,
            "4 capacity: {} calls parked at once via {}",
            c.calls, c.via
        );
        let _ = writeln!(
            w,
            "    park all {:.2} s, decide all {:.2} s, drain {:.2} s",
            c.park_all_s, c.decide_all_s, c.drain_s
        );
        let _ = writeln!(
            w,
            "    park throughput {:.0} parks/s (each committed to the audit before it counts)",
            c.parks_per_s
        );
        let _ = writeln!(
            w,
            "    hitl-extauth RSS {} → {} KiB parked ({:.2} KiB per call) → {} KiB drained; {} fds",
            c.extauth_rss_before_kib,
            c.extauth_rss_parked_kib,
            c.extauth_rss_per_call_kib,
            c.extauth_rss_drained_kib,
            c.extauth_fds_parked.map_or("?".into(), |n| n.to_string())
        );
        let _ = writeln!(
            w,
            "    Envoy RSS {} KiB per parked call; {} fds",
            c.envoy_rss_per_call_kib
                .map_or("?".into(), |k| format!("{k:.2}")),
            c.envoy_fds_parked.map_or("?".into(), |n| n.to_string())
        );
        let _ = writeln!(
            w,
            "    approved and released {}, rejected with own reason {}, lost {}, crossed {}",
            c.approved_ok, c.rejected_ok, c.lost, c.crossed
        );
        for p in &c.problems {
            let _ = writeln!(w, "    ! {p}");
        }
    }
}

/// Park `calls` at once, decide them all, check every answer.
pub async fn measure(stack: &Stack, calls: usize, patience: Duration) -> anyhow::Result<Capacity> {
    let admin = stack.admin()?;
    let url = stack.gateway_url(paths::PRIVILEGED_MCP);
    let connections = calls.div_ceil(STREAMS_PER_CONNECTION).max(1);
    let clients = park::connect(&url, connections, patience).await?;
    let extauth_pid = stack.extauth_pid().context("hitl-extauth has no pid")?;
    let envoy_pid = stack.envoy_pid();
    let rss = |pid: u32| host::rss_kib(pid).context("reading VmRSS");
    let extauth_rss_before_kib = rss(extauth_pid)?;
    let envoy_rss_before = envoy_pid.and_then(host::rss_kib);

    let parked = park::park_all(stack, &clients, &url, calls).await?;
    let extauth_rss_parked_kib = rss(extauth_pid)?;
    let envoy_rss_parked = envoy_pid.and_then(host::rss_kib);
    let extauth_fds_parked = host::open_fds(extauth_pid);
    let envoy_fds_parked = envoy_pid.and_then(host::open_fds);

    let (parked_ids, mut problems) = answers::parked_ids(&admin).await?;
    let decided = answers::decide_all(&admin, &parked_ids).await;
    problems.extend(decided.errors);
    let tally = answers::drain(parked.handles, &parked_ids, decided.started, calls).await;
    problems.extend(tally.problems);
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
        park_all_s: parked.took.as_secs_f64(),
        parks_per_s: calls as f64 / parked.took.as_secs_f64().max(f64::EPSILON),
        decide_all_s: decided.took.as_secs_f64(),
        drain_s: tally.drain.as_secs_f64(),
        extauth_rss_before_kib,
        extauth_rss_parked_kib,
        extauth_rss_drained_kib,
        extauth_rss_per_call_kib: per_call(extauth_rss_before_kib, extauth_rss_parked_kib),
        extauth_fds_parked,
        envoy_rss_per_call_kib: envoy_rss_before
            .zip(envoy_rss_parked)
            .map(|(before, after)| per_call(before, after)),
        envoy_fds_parked,
        approved_ok: tally.approved_ok,
        rejected_ok: tally.rejected_ok,
        lost: tally.lost,
        crossed: tally.crossed,
        problems,
    })
}
