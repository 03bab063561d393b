//! Step 1: what the gate costs the frames it lets through. MCP `initialize` and `tools/list`
//! POSTs straight to mock-db-mcp, through each gateway (Envoy, and agentgateway when it runs)
//! on `/public/mcp` (no ext_authz) and on `/privileged/mcp` (ext_authz asks hitl-extauth,
//! which passes them). The routes are interleaved request by request, so drift on a shared
//! machine hits them alike.

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
    pub route: String,
    pub latency: Summary,
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
            .collect()
    }
}

const METHODS: [&str; 2] = ["initialize", "tools/list"];

/// `samples` timed requests per method and route, after `warmup` untimed rounds.
pub async fn measure(stack: &Stack, samples: usize, warmup: usize) -> anyhow::Result<Overhead> {
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
    // (gateway, index of its /public route, index of its gated route)
    let mut pairs: Vec<(&'static str, usize, usize)> = vec![("envoy", 2, 3)];
    if let (Some(public), Some(gated)) = (
        stack.agentgateway_url(paths::PUBLIC_MCP),
        stack.agentgateway_url(paths::PRIVILEGED_MCP),
    ) {
        routes.push(("agentgateway /public/mcp".into(), public));
        routes.push(("agentgateway+gate /privileged/mcp".into(), gated));
        pairs.push(("agentgateway", 4, 5));
    }
    let labels: Vec<&str> = routes.iter().map(|(l, _)| l.as_str()).collect();
    let urls: Vec<&str> = routes.iter().map(|(_, u)| u.as_str()).collect();
    let http = mcp::http1(Duration::from_secs(10))?;
    let mut taken: Vec<Vec<Vec<Duration>>> = vec![vec![Vec::new(); urls.len()]; METHODS.len()];
    let mut progress = Progress::new("gate cost", warmup + samples);
    let mut id = 0u64;
    let extauth_cpu = || stack.extauth_pid().and_then(host::cpu_seconds);
    let cpu_before = extauth_cpu();
    for round in 0..warmup + samples {
        for (m, method) in METHODS.iter().enumerate() {
            for k in 0..urls.len() {
                // Rotate which route goes first, so none always follows another.
                let r = (round + k) % urls.len();
                id += 1;
                let body = match *method {
                    "initialize" => mcp::initialize(id),
                    _ => mcp::tools_list(id),
                };
                let reply: Reply = mcp::post(&http, urls[r], body, None).await?;
                reply.rpc_result(id).map_err(|e| {
                    anyhow::anyhow!("{method} on {}: {e:#}\n{}", labels[r], stack.log_tails())
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
        rows.extend(labels.iter().zip(summaries).map(|(route, latency)| Row {
            method,
            route: (*route).to_owned(),
            latency,
        }));
    }
    Ok(Overhead {
        rows,
        costs,
        extauth_cpu_us_per_check,
    })
}
