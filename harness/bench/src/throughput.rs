//! Step 5: how many `tools/call cluster_db_query` mock-db-mcp answers per second, straight
//! (no gateway), with 1 and with 32 requests in flight, each for a fixed time; then the same
//! for `mcp-floor` (mock-db-mcp's MCP transport with a tool that answers without SQLite), the
//! floor under the query's CPU figure.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use hitl_wire::mockdb::{paths, tools};
use serde::Serialize;
use serde_json::json;

use super::{host, mcp, stack::Stack, stats::Summary};

/// The query: small, read-only, touches a table.
const SQL: &str = "SELECT COUNT(*) AS n FROM orders";
/// Hard cap on requests per run, whatever the duration (keeps the loop bounded).
const MAX_REQUESTS_PER_WORKER: usize = 1_000_000;

/// mock-db-mcp's CPU per `cluster_db_query` with one request in flight.
pub const CPU_TARGET_US: f64 = 60.0;

/// One concurrency level's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// The server measured: mock-db-mcp, or the floor.
    pub server: &'static str,
    pub concurrency: usize,
    pub requests: usize,
    pub errors: usize,
    pub elapsed_s: f64,
    pub requests_per_s: f64,
    pub latency: Summary,
    /// mock-db-mcp's CPU time per answered request, in microseconds.
    pub server_cpu_us_per_request: Option<f64>,
    /// CPU the bench's own client used over the run, in cores (it shares the machine).
    pub client_cpu_cores: Option<f64>,
}

impl Throughput {
    /// The CPU target, for the one-in-flight level.
    pub fn targets(&self) -> Vec<super::Target> {
        match self.server_cpu_us_per_request {
            Some(us) if self.concurrency == 1 && self.server == MOCK_DB => {
                vec![super::Target::at_most(
                    "mock-db-mcp CPU per cluster_db_query, one in flight",
                    "µs",
                    us,
                    CPU_TARGET_US,
                )]
            }
            _ => Vec::new(),
        }
    }
}

/// The server of the figures that count.
const MOCK_DB: &str = "mock-db-mcp";
/// The floor's binary name (a bin of this crate).
pub const FLOOR_BIN: &str = "mcp-floor";

/// mock-db-mcp: `concurrency` workers, each sending one request after another for `duration`.
pub async fn measure(
    stack: &Stack,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Throughput> {
    let pid = stack.db_pid().context("mock-db-mcp has no pid")?;
    let url = stack.direct_url(paths::PUBLIC_MCP);
    measure_at(MOCK_DB, &url, pid, concurrency, duration).await
}

/// `mcp-floor`, started on a free port in `log_dir`, at each of `levels`.
pub async fn measure_floor(
    log_dir: &std::path::Path,
    levels: &[usize],
    duration: Duration,
) -> anyhow::Result<Vec<Throughput>> {
    let port = hitl_lab::net::free_port()?;
    let spec = hitl_lab::proc::Spec::new(FLOOR_BIN, hitl_lab::bins::path(FLOOR_BIN)?, log_dir)
        .arg(port.to_string());
    // It has no health endpoint: the start waits for the port instead.
    let floor = super::floor::start_floor(spec, port).await?;
    let pid = floor.pid().context("mcp-floor has no pid")?;
    let url = format!("http://127.0.0.1:{port}{}", paths::PUBLIC_MCP);
    let mut out = Vec::new();
    for &concurrency in levels {
        out.push(measure_at(FLOOR_BIN, &url, pid, concurrency, duration).await?);
    }
    Ok(out)
}

/// `concurrency` workers against `url`, each sending one request after another for
/// `duration`; CPU of process `pid` (the server) and of this one.
async fn measure_at(
    server: &'static str,
    url: &str,
    pid: u32,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Throughput> {
    let url = url.to_owned();
    let http = mcp::http1(Duration::from_secs(10))?;
    // Warm the connections up.
    warm(&http, &url, concurrency).await?;
    let cpu = || host::cpu_seconds(pid).zip(host::cpu_seconds(std::process::id()));
    let cpu_before = cpu();
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let mut took = Vec::new();
                let mut errors = 0usize;
                for n in 0..MAX_REQUESTS_PER_WORKER {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let id = (w * MAX_REQUESTS_PER_WORKER + n) as u64;
                    let body = mcp::tools_call(id, tools::CLUSTER_DB_QUERY, json!({ "sql": SQL }));
                    match mcp::post(&http, &url, body, None).await {
                        Ok(reply) if answered(&reply, id) => took.push(reply.took),
                        _ => errors += 1,
                    }
                }
                (took, errors)
            })
        })
        .collect();
    let mut took = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (t, e) = worker.await.context("a load worker failed")?;
        took.extend(t);
        errors += e;
    }
    let elapsed = start.elapsed();
    let used = cpu_before
        .zip(cpu())
        .map(|((db0, me0), (db1, me1))| (db1 - db0, me1 - me0));
    Ok(Throughput {
        server,
        concurrency,
        requests: took.len(),
        errors,
        elapsed_s: elapsed.as_secs_f64(),
        requests_per_s: took.len() as f64 / elapsed.as_secs_f64(),
        latency: Summary::of(&took).context("no request succeeded")?,
        server_cpu_us_per_request: used.map(|(db, _)| db * 1e6 / took.len().max(1) as f64),
        client_cpu_cores: used.map(|(_, me)| me / elapsed.as_secs_f64()),
    })
}

/// A successful query result for request `id`.
fn answered(reply: &mcp::Reply, id: u64) -> bool {
    reply.rpc_result(id).is_ok() && !reply.body.contains("\"isError\":true")
}

async fn warm(http: &reqwest::Client, url: &str, concurrency: usize) -> anyhow::Result<()> {
    let warmups = (0..concurrency).map(|i| {
        let id = 1_000_000_000 + i as u64;
        async move {
            let body = mcp::tools_call(id, tools::CLUSTER_DB_QUERY, json!({ "sql": SQL }));
            let reply = mcp::post(http, url, body, None).await?;
            anyhow::ensure!(
                answered(&reply, id),
                "cluster_db_query failed: {}",
                reply.body
            );
            anyhow::Ok(())
        }
    });
    for result in futures::future::join_all(warmups).await {
        result?;
    }
    Ok(())
}
