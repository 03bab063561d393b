//! Step 1: what the gate costs the frames it lets through. MCP `initialize` and `tools/list`
//! POSTs straight to mock-db-mcp, through Envoy on `/public/mcp` (no ext_authz) and through
//! Envoy on `/privileged/mcp` (ext_authz asks hitl-extauth, which passes them). The routes
//! are interleaved request by request, so drift on a shared machine hits them alike.

use std::time::Duration;

use hitl_wire::mockdb::paths;
use serde::Serialize;

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

/// One method on one route.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub method: &'static str,
    pub route: &'static str,
    pub latency: Summary,
}

/// Gated (`/privileged`) against ungated (`/public`) through Envoy, for one method.
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub method: &'static str,
    pub added_median_ms: f64,
    pub added_p99_ms: f64,
    pub ratio_p99: f64,
}

/// Step 1's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Overhead {
    pub rows: Vec<Row>,
    pub costs: Vec<Cost>,
    /// hitl-extauth's CPU time per `Check` it passed (it sees only the gated route here).
    pub extauth_cpu_us_per_check: Option<f64>,
}

impl Overhead {
    pub fn targets(&self) -> Vec<Target> {
        self.costs
            .iter()
            .flat_map(|c| {
                [
                    Target::below(
                        format!("gate cost, {}: added p99", c.method),
                        "ms",
                        c.added_p99_ms,
                        ADDED_P99_TARGET_MS,
                    ),
                    Target::at_most(
                        format!("gate cost, {}: p99 ratio gated/ungated", c.method),
                        "x",
                        c.ratio_p99,
                        RATIO_TARGET,
                    ),
                ]
            })
            .collect()
    }
}

const METHODS: [&str; 2] = ["initialize", "tools/list"];
const ROUTES: [&str; 4] = [
    "direct /public/mcp",
    "direct /privileged/mcp",
    "envoy /public/mcp",
    "envoy+gate /privileged/mcp",
];
const ENVOY_PUBLIC: usize = 2;
const ENVOY_GATED: usize = 3;

/// `samples` timed requests per method and route, after `warmup` untimed rounds.
pub async fn measure(stack: &Stack, samples: usize, warmup: usize) -> anyhow::Result<Overhead> {
    let urls = [
        stack.direct_url(paths::PUBLIC_MCP),
        stack.direct_url(paths::PRIVILEGED_MCP),
        stack.gateway_url(paths::PUBLIC_MCP),
        stack.gateway_url(paths::PRIVILEGED_MCP),
    ];
    let http = mcp::http1(Duration::from_secs(10))?;
    let mut taken: Vec<Vec<Vec<Duration>>> = vec![vec![Vec::new(); ROUTES.len()]; METHODS.len()];
    let mut progress = Progress::new("gate cost", warmup + samples);
    let mut id = 0u64;
    let extauth_cpu = || stack.extauth_pid().and_then(host::cpu_seconds);
    let cpu_before = extauth_cpu();
    for round in 0..warmup + samples {
        for (m, method) in METHODS.iter().enumerate() {
            for k in 0..ROUTES.len() {
                // Rotate which route goes first, so none always follows another.
                let r = (round + k) % ROUTES.len();
                id += 1;
                let body = match *method {
                    "initialize" => mcp::initialize(id),
                    _ => mcp::tools_list(id),
                };
                let reply: Reply = mcp::post(&http, &urls[r], body, None).await?;
                reply.rpc_result(id).map_err(|e| {
                    anyhow::anyhow!("{method} on {}: {e:#}\n{}", ROUTES[r], stack.log_tails())
                })?;
                if round >= warmup {
                    taken[m][r].push(reply.took);
                }
            }
        }
        progress.tick(round + 1);
    }
    progress.finish();
    let checks = (METHODS.len() * (warmup + samples)) as f64;
    let extauth_cpu_us_per_check = cpu_before
        .zip(extauth_cpu())
        .map(|(before, after)| (after - before) * 1e6 / checks);

    let mut rows = Vec::new();
    let mut costs = Vec::new();
    for (m, method) in METHODS.iter().enumerate() {
        let summaries: Vec<Summary> = taken[m]
            .iter()
            .map(|s| Summary::of(s).ok_or_else(|| anyhow::anyhow!("no samples taken")))
            .collect::<anyhow::Result<_>>()?;
        let (public, gated) = (summaries[ENVOY_PUBLIC], summaries[ENVOY_GATED]);
        costs.push(Cost {
            method,
            added_median_ms: gated.median_ms - public.median_ms,
            added_p99_ms: gated.p99_ms - public.p99_ms,
            ratio_p99: gated.p99_ms / public.p99_ms,
        });
        rows.extend(ROUTES.iter().zip(summaries).map(|(route, latency)| Row {
            method,
            route,
            latency,
        }));
    }
    Ok(Overhead {
        rows,
        costs,
        extauth_cpu_us_per_check,
    })
}
