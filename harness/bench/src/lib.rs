//! `cargo xtask bench`: what the gates cost and how far they scale, measured on loopback
//! against the real Envoy, hitl-extauth and mock-db-mcp (whichever binaries
//! [`hitl_lab::bins::bin_dir`] points at — xtask builds and points at the release ones).
//!
//! Six steps, one module each: [`overhead`] (1, the gate's cost on frames it passes, and
//! CPU per request of each of our processes, row by row), [`instructions`] (1b, callgrind's
//! instruction count per passed Check), [`floor`] (1d, the same Check costs of `check-floor`,
//! a bare tonic gate on hitl-extauth's transport), [`token`] (1c, the approval chain's
//! signing, verifying and hashing), [`release`] (2 and 3, decision → release and park →
//! visible), [`capacity`] (4, many parks at once), [`throughput`] (5, mock-db-mcp alone, and
//! `mcp-floor`, its transport with a tool that needs no SQLite), [`replicas`] (6, two gate
//! replicas on one PostgreSQL store, Checks sent straight to them). The floors are the binaries
//! in `src/bin`, never part of a lab. [`stack`] starts the processes,
//! [`mcp`] sends the requests, [`stats`] summarises, [`report`] prints and saves. The bench
//! only reports: a missed target is a figure in the table, not an error.

mod capacity;
pub mod cli;
mod floor;
mod host;
mod instructions;
mod mcp;
mod overhead;
mod release;
mod replicas;
mod report;
mod stack;
mod stats;
mod throughput;
mod token;

use std::{
    path::PathBuf,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use serde::Serialize;

pub use report::{Report, Target};

use hitl_lab::{bins, pyenv};

/// Parks outlast any run: nothing should expire while it is measured.
const PARK_TIMEOUT: Duration = Duration::from_secs(900);
/// Concurrency levels of step 5.
const THROUGHPUT_CONCURRENCY: [usize; 2] = [1, 32];

/// How much of everything to do.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    /// Timed requests per method and route in step 1 (after `gate_cost_warmup` rounds).
    pub gate_cost_samples: usize,
    pub gate_cost_warmup: usize,
    /// Requests per row of step 1 sent back to back for its CPU figures.
    pub cpu_requests_per_row: usize,
    /// Passed Checks counted under callgrind in step 1b.
    pub callgrind_checks: usize,
    /// Rounds of each operation in step 1c.
    pub token_rounds: usize,
    /// Timed park-and-approve rounds in steps 2 and 3.
    pub release_samples: usize,
    pub release_warmup: usize,
    /// Calls parked at once in step 4.
    pub capacity_calls: usize,
    /// Seconds per concurrency level in step 5.
    pub throughput_seconds: u64,
    /// Timed decision-on-B → release-on-A rounds in step 6a (after `release_warmup`); step
    /// 6b parks `capacity_calls`.
    pub replica_handoff_samples: usize,
    /// Open requests with no caller held in step 6c.
    pub replica_open_requests: usize,
    /// Rounds of racing decisions in step 6d.
    pub replica_race_rounds: usize,
}

impl Sizes {
    /// `--quick`: a couple of minutes at most.
    pub fn quick() -> Self {
        Self {
            gate_cost_samples: 300,
            gate_cost_warmup: 30,
            cpu_requests_per_row: 500,
            callgrind_checks: 200,
            token_rounds: 2_000,
            release_samples: 100,
            release_warmup: 10,
            capacity_calls: 1_000,
            throughput_seconds: 3,
            replica_handoff_samples: 100,
            replica_open_requests: 10_000,
            replica_race_rounds: 5,
        }
    }

    /// The full run.
    pub fn full() -> Self {
        Self {
            gate_cost_samples: 2_000,
            gate_cost_warmup: 100,
            cpu_requests_per_row: 2_000,
            callgrind_checks: 1_000,
            token_rounds: 20_000,
            release_samples: 500,
            release_warmup: 20,
            capacity_calls: 10_000,
            throughput_seconds: 10,
            replica_handoff_samples: 1_000,
            replica_open_requests: 100_000,
            replica_race_rounds: 20,
        }
    }
}

/// Where the bench writes: `<target>/bench` (JSON reports; process logs under `logs/`).
pub fn out_dir() -> PathBuf {
    bins::target_dir().join("bench")
}

/// Start the stack, run every step, save the report; the report and where it was saved.
/// Step 1 measures Envoy and, when `agentgateway` names a binary, agentgateway beside it;
/// steps 2–5 run through Envoy.
pub async fn run(quick: bool, agentgateway: Option<PathBuf>) -> anyhow::Result<(Report, PathBuf)> {
    let sizes = if quick { Sizes::quick() } else { Sizes::full() };
    let unix_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let out = out_dir();
    let log_dir = out.join("logs");
    let _ = std::fs::remove_dir_all(&log_dir);
    let host = host::Host::probe();
    let envoy = envoy_version()?;
    let binaries = bins::bin_dir().display().to_string();
    let started = Instant::now();

    eprintln!(
        "==> starting mock-db-mcp and hitl-extauth ({binaries}) and Envoy; logs in {}",
        log_dir.display()
    );
    let agentgateway_label = match &agentgateway {
        Some(bin) => bin.display().to_string(),
        None => "NOT MEASURED (no agentgateway binary; see `cargo xtask bench --help`)".into(),
    };
    let stack = stack::Stack::start(&log_dir, PARK_TIMEOUT, agentgateway.is_some()).await?;

    let Measured {
        gate_cost,
        instructions,
        floor,
        token,
        release,
        throughput,
        capacity,
    } = measure(&stack, &sizes, &log_dir).await?;
    drop(stack);
    let replicas = replicas::measure(&log_dir, &sizes).await?;

    let targets = [
        gate_cost.targets(),
        release.targets(),
        capacity.targets(),
        throughput.iter().flat_map(|t| t.targets()).collect(),
        replicas.targets(),
    ]
    .concat();
    let report = Report {
        unix_time,
        quick,
        sizes,
        binaries,
        client_build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        envoy,
        agentgateway: agentgateway_label,
        host,
        gate_cost,
        instructions,
        floor,
        token,
        release,
        capacity,
        throughput,
        replicas,
        targets,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    let path = report.write(&out)?;
    Ok((report, path))
}

/// Step 6 alone (`--step replicas`): its figures and targets as a table, and the JSON
/// written to `<target>/bench/replicas-<unix-time>.json`.
pub async fn run_replicas(quick: bool) -> anyhow::Result<(String, PathBuf)> {
    let sizes = if quick { Sizes::quick() } else { Sizes::full() };
    let unix_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let out = out_dir();
    let log_dir = out.join("logs");
    let started = Instant::now();
    let replicas = replicas::measure(&log_dir, &sizes).await?;
    let targets = replicas.targets();
    let json = serde_json::json!({
        "unix_time": unix_time, "quick": quick, "sizes": sizes, "host": host::Host::probe(),
        "binaries": bins::bin_dir().display().to_string(), "replicas": replicas,
        "targets": targets, "elapsed_s": started.elapsed().as_secs_f64(),
    });
    std::fs::create_dir_all(&out)?;
    let path = out.join(format!("replicas-{unix_time}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let mut table = String::new();
    replicas.render(&mut table);
    report::render_targets(&mut table, &targets);
    Ok((table, path))
}

/// Every step's figures.
struct Measured {
    gate_cost: overhead::Overhead,
    instructions: instructions::Instructions,
    floor: floor::Floor,
    token: token::TokenCost,
    release: release::Release,
    throughput: Vec<throughput::Throughput>,
    capacity: capacity::Capacity,
}

/// Run every step on `stack`, in the order of the progress lines (step 4, capacity, last).
async fn measure(
    stack: &stack::Stack,
    sizes: &Sizes,
    log_dir: &std::path::Path,
) -> anyhow::Result<Measured> {
    eprintln!(
        "==> [1/6] gate cost on un-gated frames ({} samples per series)",
        sizes.gate_cost_samples
    );
    let gate_cost = overhead::measure(
        stack,
        sizes.gate_cost_samples,
        sizes.gate_cost_warmup,
        sizes.cpu_requests_per_row,
    )
    .await?;

    eprintln!(
        "==> [1b,1d/6] a passed Check: hitl-extauth and the floor (check-floor), {} Checks \
         each natively, {} under callgrind",
        sizes.cpu_requests_per_row, sizes.callgrind_checks
    );
    let (floor, instructions) =
        floor::measure(stack, sizes.cpu_requests_per_row, sizes.callgrind_checks).await?;

    eprintln!(
        "==> [1c/6] the approval chain in process ({} rounds each)",
        sizes.token_rounds
    );
    let token = token::measure(sizes.token_rounds)?;

    eprintln!(
        "==> [2,3/6] park → visible and decision → release ({} calls, one at a time)",
        sizes.release_samples
    );
    let release = release::measure(stack, sizes.release_samples, sizes.release_warmup).await?;

    let throughput = measure_throughput(stack, sizes, log_dir).await?;

    eprintln!(
        "==> [4/6] capacity: {} calls parked at once through Envoy",
        sizes.capacity_calls
    );
    let capacity = capacity::measure(stack, sizes.capacity_calls, PARK_TIMEOUT).await?;

    Ok(Measured {
        gate_cost,
        instructions,
        floor,
        token,
        release,
        throughput,
        capacity,
    })
}

/// Step 5: mock-db-mcp at each concurrency level, then its floor (`mcp-floor`) the same way.
async fn measure_throughput(
    stack: &stack::Stack,
    sizes: &Sizes,
    log_dir: &std::path::Path,
) -> anyhow::Result<Vec<throughput::Throughput>> {
    let duration = Duration::from_secs(sizes.throughput_seconds);
    let mut throughput = Vec::new();
    for concurrency in THROUGHPUT_CONCURRENCY {
        eprintln!(
            "==> [5/6] mock-db-mcp cluster_db_query throughput, concurrency {concurrency}, {} s",
            sizes.throughput_seconds
        );
        throughput.push(throughput::measure(stack, concurrency, duration).await?);
    }
    eprintln!(
        "==> [5/6] the floor under those figures: mcp-floor (mock-db-mcp's transport, no \
         SQLite), {} s per level",
        sizes.throughput_seconds
    );
    throughput.extend(throughput::measure_floor(log_dir, &THROUGHPUT_CONCURRENCY, duration).await?);
    Ok(throughput)
}

/// The Envoy binary and the version it reports.
fn envoy_version() -> anyhow::Result<String> {
    let envoy = pyenv::envoy_binary().context("locating the Envoy binary")?;
    let version = std::process::Command::new(&envoy)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .and_then(|v| Some(v.split_once("version:")?.1.trim().to_owned()))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "version unknown".into());
    Ok(format!("{} ({version})", envoy.display()))
}

/// Progress on a long step, on stderr, at most every two seconds.
pub(crate) struct Progress {
    label: &'static str,
    total: usize,
    started: Instant,
    printed: Instant,
}

impl Progress {
    pub(crate) fn new(label: &'static str, total: usize) -> Self {
        let now = Instant::now();
        Self {
            label,
            total,
            started: now,
            printed: now,
        }
    }

    pub(crate) fn tick(&mut self, done: usize) {
        if self.printed.elapsed() >= Duration::from_secs(2) {
            self.printed = Instant::now();
            eprintln!(
                "    {}: {done}/{} ({:.0} s)",
                self.label,
                self.total,
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    pub(crate) fn finish(&self) {
        eprintln!(
            "    {}: {} in {:.1} s",
            self.label,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
    }
}
