//! Step 1: what the gate costs the frames it lets through. MCP `initialize` and `tools/list`
//! POSTs straight to mock-db-mcp, through each gateway (Envoy, and agentgateway when it runs)
//! on `/public/mcp` (no ext_authz) and on `/privileged/mcp` (ext_authz asks hitl-extauth,
//! which passes them). The routes are interleaved request by request, so drift on a shared
//! machine hits them alike.

use std::{collections::BTreeMap, time::Duration};

use hitl_wire::mockdb::paths;
use serde::Serialize;

use hitl_lab::components::extauth;

use super::{
    Progress, Target, host,
    mcp::{self, Reply},
    stack::Stack,
    stats::Summary,
};

/// Added p99 the gate may cost an un-gated frame.
pub const ADDED_P99_TARGET_MS: f64 = 1.0;
/// Gated p99 over ungated p99 at most this.
pub const RATIO_TARGET: f64 = 1.2;
/// Added median the gate may cost an un-gated frame.
pub const ADDED_MEDIAN_TARGET_MS: f64 = 0.12;
/// hitl-extauth's CPU per Check it passes.
pub const EXTAUTH_CPU_TARGET_US: f64 = 30.0;

/// One method on one route.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub method: &'static str,
    pub route: String,
    pub latency: Summary,
    /// CPU each of our processes used per request of this row, in microseconds, over
    /// [`Sizes::cpu_requests_per_row`](super::Sizes) requests sent back to back after the
    /// timed rounds. A process the row never reaches shows (close to) zero.
    pub cpu_us_per_request: BTreeMap<&'static str, f64>,
}

/// Gated (`/privileged`) against ungated (`/public`) through one gateway, for one method.
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub method: &'static str,
    /// `envoy` or `agentgateway`.
    pub gateway: &'static str,
    pub added_median_ms: f64,
    pub added_p99_ms: f64,
    pub ratio_p99: f64,
}

/// Step 1's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Overhead {
    pub rows: Vec<Row>,
    pub costs: Vec<Cost>,
    /// hitl-extauth's CPU time per `Check` it passed: its CPU over the gated rows' CPU
    /// phases, per request (it sees only the gated routes).
    pub extauth_cpu_us_per_check: Option<f64>,
}

impl Overhead {
    pub fn targets(&self) -> Vec<Target> {
        let cpu = self.extauth_cpu_us_per_check.map(|us| {
            Target::at_most(
                "gate cost: hitl-extauth CPU per passed Check",
                "µs",
                us,
                EXTAUTH_CPU_TARGET_US,
            )
        });
        self.costs
            .iter()
            .flat_map(|c| {
                [
                    Target::at_most(
                        format!("gate cost, {} via {}: added median", c.method, c.gateway),
                        "ms",
                        c.added_median_ms,
                        ADDED_MEDIAN_TARGET_MS,
                    ),
                    Target::below(
                        format!("gate cost, {} via {}: added p99", c.method, c.gateway),
                        "ms",
                        c.added_p99_ms,
                        ADDED_P99_TARGET_MS,
                    ),
                    Target::at_most(
                        format!(
                            "gate cost, {} via {}: p99 ratio gated/ungated",
                            c.method, c.gateway
                        ),
                        "x",
                        c.ratio_p99,
                        RATIO_TARGET,
                    ),
                ]
            })
            .chain(cpu)
            .collect()
    }
}

const METHODS: [&str; 2] = ["initialize", "tools/list"];

/// (gateway, index of its /public route, index of its gated route)
type Pair = (&'static str, usize, usize);

/// `samples` timed requests per method and route, after `warmup` untimed rounds; then
/// `cpu_requests` more per row, one row at a time, for its CPU figures.
pub async fn measure(
    stack: &Stack,
    samples: usize,
    warmup: usize,
    cpu_requests: usize,
) -> anyhow::Result<Overhead> {
    let (routes, pairs) = routes(stack);
    let labels: Vec<&str> = routes.iter().map(|(l, _)| l.as_str()).collect();
    let urls: Vec<&str> = routes.iter().map(|(_, u)| u.as_str()).collect();
    let http = mcp::http1(Duration::from_secs(10))?;
    let mut id = 0u64;
    let taken = latencies(
        stack,
        &http,
        &labels,
        &urls,
        warmup + samples,
        warmup,
        &mut id,
    )
    .await?;
    let mut cpu = cpu_rows(stack, &http, &urls, cpu_requests, &mut id).await?;
    let gated: Vec<usize> = pairs.iter().map(|&(_, _, gated)| gated).collect();
    let extauth: Vec<f64> = cpu
        .iter()
        .flat_map(|rows| {
            gated
                .iter()
                .filter_map(|&g| rows[g].get(extauth::NAME).copied())
        })
        .collect();
    let extauth_cpu_us_per_check =
        (!extauth.is_empty()).then(|| extauth.iter().sum::<f64>() / extauth.len() as f64);

    let mut rows = Vec::new();
    let mut costs = Vec::new();
    for (m, method) in METHODS.iter().enumerate() {
        let summaries: Vec<Summary> = taken[m]
            .iter()
            .map(|s| Summary::of(s).ok_or_else(|| anyhow::anyhow!("no samples taken")))
            .collect::<anyhow::Result<_>>()?;
        for &(gateway, public, gated) in &pairs {
            let (public, gated) = (summaries[public], summaries[gated]);
            costs.push(Cost {
                method,
                gateway,
                added_median_ms: gated.median_ms - public.median_ms,
                added_p99_ms: gated.p99_ms - public.p99_ms,
                ratio_p99: gated.p99_ms / public.p99_ms,
            });
        }
        rows.extend(
            labels
                .iter()
                .zip(summaries)
                .zip(std::mem::take(&mut cpu[m]))
                .map(|((route, latency), cpu_us_per_request)| Row {
                    method,
                    route: (*route).to_owned(),
                    latency,
                    cpu_us_per_request,
                }),
        );
    }
    Ok(Overhead {
        rows,
        costs,
        extauth_cpu_us_per_check,
    })
}

/// The routes measured (label, URL): direct, through Envoy, through agentgateway when it
/// runs; and each gateway's pair of routes.
fn routes(stack: &Stack) -> (Vec<(String, String)>, Vec<Pair>) {
    let mut routes: Vec<(String, String)> = vec![
        (
            "direct /public/mcp".into(),
            stack.direct_url(paths::PUBLIC_MCP),
        ),
        (
            "direct /privileged/mcp".into(),
            stack.direct_url(paths::PRIVILEGED_MCP),
        ),
        (
            "envoy /public/mcp".into(),
            stack.gateway_url(paths::PUBLIC_MCP),
        ),
        (
            "envoy+gate /privileged/mcp".into(),
            stack.gateway_url(paths::PRIVILEGED_MCP),
        ),
    ];
    let mut pairs: Vec<Pair> = vec![("envoy", 2, 3)];
    if let (Some(public), Some(gated)) = (
        stack.agentgateway_url(paths::PUBLIC_MCP),
        stack.agentgateway_url(paths::PRIVILEGED_MCP),
    ) {
        routes.push(("agentgateway /public/mcp".into(), public));
        routes.push(("agentgateway+gate /privileged/mcp".into(), gated));
        pairs.push(("agentgateway", 4, 5));
    }
    (routes, pairs)
}

/// The request for `method` with JSON-RPC `id`.
fn body(method: &str, id: u64) -> String {
    match method {
        "initialize" => mcp::initialize(id),
        _ => mcp::tools_list(id),
    }
}

/// `rounds` rounds of every method on every route, interleaved; the times of all but the
/// first `warmup` rounds, by method and route.
async fn latencies(
    stack: &Stack,
    http: &reqwest::Client,
    labels: &[&str],
    urls: &[&str],
    rounds: usize,
    warmup: usize,
    id: &mut u64,
) -> anyhow::Result<Vec<Vec<Vec<Duration>>>> {
    let mut taken: Vec<Vec<Vec<Duration>>> = vec![vec![Vec::new(); urls.len()]; METHODS.len()];
    let mut progress = Progress::new("gate cost", rounds);
    for round in 0..rounds {
        for (m, method) in METHODS.iter().enumerate() {
            for k in 0..urls.len() {
                // Rotate which route goes first, so none always follows another.
                let r = (round + k) % urls.len();
                *id += 1;
                let reply: Reply = mcp::post(http, urls[r], body(method, *id), None).await?;
                reply.rpc_result(*id).map_err(|e| {
                    anyhow::anyhow!("{method} on {}: {e:#}\n{}", labels[r], stack.log_tails(15))
                })?;
                if round >= warmup {
                    taken[m][r].push(reply.took);
                }
            }
        }
        progress.tick(round + 1);
    }
    progress.finish();
    Ok(taken)
}

/// CPU per request, row by row: only this row's requests run while it is sampled.
async fn cpu_rows(
    stack: &Stack,
    http: &reqwest::Client,
    urls: &[&str],
    cpu_requests: usize,
    id: &mut u64,
) -> anyhow::Result<Vec<Vec<BTreeMap<&'static str, f64>>>> {
    let mut cpu: Vec<Vec<BTreeMap<&'static str, f64>>> = vec![Vec::new(); METHODS.len()];
    let mut progress = Progress::new("gate cost, CPU per row", METHODS.len() * urls.len());
    for (m, method) in METHODS.iter().enumerate() {
        for (r, url) in urls.iter().enumerate() {
            let meter = host::CpuMeter::start(stack.processes());
            for _ in 0..cpu_requests {
                *id += 1;
                mcp::post(http, url, body(method, *id), None)
                    .await?
                    .rpc_result(*id)?;
            }
            cpu[m].push(meter.per_request_us(cpu_requests));
            progress.tick(m * urls.len() + r + 1);
        }
    }
    progress.finish();
    Ok(cpu)
}
