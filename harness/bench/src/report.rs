//! The bench's report: one serialisable value, rendered as a table for people and written
//! as JSON under `target/bench/` (`<unix-time>.json` and `latest.json`) for machines.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use serde::Serialize;

use super::{
    Sizes, capacity::Capacity, floor::Floor, host::Host, instructions::Instructions,
    overhead::Overhead, release::Release, replicas::Replicas, stats::Summary,
    throughput::Throughput, token::TokenCost,
};
use hitl_lab::components::{agentgateway, envoy, extauth, mock_db};

/// The processes of the CPU table, in its column order.
const CPU_COLUMNS: [&str; 4] = [
    mock_db::NAME,
    extauth::NAME,
    envoy::NAME,
    agentgateway::NAME,
];

/// A figure with a target, and whether it was met.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub what: String,
    pub unit: &'static str,
    pub measured: f64,
    /// e.g. `< 1` or `<= 1.2`.
    pub target: String,
    pub met: bool,
}

impl Target {
    /// Met when `measured < limit`.
    pub fn below(what: impl Into<String>, unit: &'static str, measured: f64, limit: f64) -> Self {
        Self {
            what: what.into(),
            unit,
            measured,
            target: format!("< {limit}"),
            met: measured < limit,
        }
    }

    /// Met when `measured >= limit`.
    pub fn at_least(
        what: impl Into<String>,
        unit: &'static str,
        measured: f64,
        limit: f64,
    ) -> Self {
        Self {
            what: what.into(),
            unit,
            measured,
            target: format!(">= {limit}"),
            met: measured >= limit,
        }
    }

    /// Met when `measured <= limit`.
    pub fn at_most(what: impl Into<String>, unit: &'static str, measured: f64, limit: f64) -> Self {
        Self {
            what: what.into(),
            unit,
            measured,
            target: format!("<= {limit}"),
            met: measured <= limit,
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the run started (seconds since the Unix epoch).
    pub unix_time: u64,
    pub quick: bool,
    pub sizes: Sizes,
    /// Where mock-db-mcp and hitl-extauth came from (the release build, normally).
    pub binaries: String,
    /// How the measuring client was built (`release`, or `debug`: slower, noisier figures).
    pub client_build: &'static str,
    /// The Envoy binary and what `--version` says.
    pub envoy: String,
    /// The agentgateway binary measured in step 1, or why none was.
    pub agentgateway: String,
    pub host: Host,
    /// Step 1.
    pub gate_cost: Overhead,
    /// Step 1b.
    pub instructions: Instructions,
    /// Step 1d: hitl-extauth beside the floor under a passed Check.
    pub floor: Floor,
    /// Step 1c.
    pub token: TokenCost,
    /// Steps 2 and 3.
    pub release: Release,
    /// Step 4.
    pub capacity: Capacity,
    /// Step 5.
    pub throughput: Vec<Throughput>,
    /// Step 6.
    pub replicas: Replicas,
    /// Every target, met or not.
    pub targets: Vec<Target>,
    /// Wall time of the measurements (not the build).
    pub elapsed_s: f64,
}

impl Report {
    /// Write `<dir>/<unix_time>.json` and `<dir>/latest.json`, and append the headline
    /// figures as one line to `<dir>/history.jsonl` (every run, to compare); the path of the
    /// first.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        let path = dir.join(format!("{}.json", self.unix_time));
        for file in [&path, &dir.join("latest.json")] {
            std::fs::write(file, &json).with_context(|| format!("writing {}", file.display()))?;
        }
        let history = dir.join("history.jsonl");
        let mut line = serde_json::to_string(&self.headline())?;
        line.push('\n');
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&history)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .with_context(|| format!("appending to {}", history.display()))?;
        Ok(path)
    }

    /// The figures a run is compared by, for `history.jsonl`.
    pub fn headline(&self) -> serde_json::Value {
        serde_json::json!({
            "unix_time": self.unix_time,
            "quick": self.quick,
            "binaries": self.binaries,
            "extauth_cpu_us_per_check": self.gate_cost.extauth_cpu_us_per_check,
            "extauth_instructions_per_check": self.instructions.per_passed_check,
            "floor": self.floor.gates,
            "gate_cost": self.gate_cost.costs,
            "cpu_us_per_query": self
                .throughput
                .iter()
                .map(|t| (format!("{} c{}", t.server, t.concurrency), t.server_cpu_us_per_request))
                .collect::<std::collections::BTreeMap<_, _>>(),
            "targets_missed": self.targets.iter().filter(|t| !t.met).map(|t| &t.what).collect::<Vec<_>>(),
        })
    }

    /// The report as a table (milliseconds unless said otherwise).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        self.render_header(w);
        self.render_latency(w);
        self.render_costs(w);
        self.render_cpu(w);
        self.capacity.render(w);
        self.render_throughput(w);
        self.replicas.render(w);
        render_targets(w, &self.targets);
        let _ = writeln!(w, "measured in {:.1} s", self.elapsed_s);
        out
    }

    /// Where and how it was measured.
    fn render_header(&self, w: &mut String) {
        let _ = writeln!(
            w,
            "hitl-lab bench ({}) — {} cores, open-files limit {}, loopback",
            if self.quick { "quick" } else { "full" },
            self.host.cores,
            self.host
                .open_files_limit
                .map_or("unknown".into(), |n| n.to_string())
        );
        let _ = writeln!(w, "binaries: {}", self.binaries);
        let _ = writeln!(w, "client:   {} build", self.client_build);
        let _ = writeln!(w, "envoy:    {}", self.envoy);
        let _ = writeln!(w, "agentgw:  {}", self.agentgateway);
        let _ = writeln!(w);
    }

    /// The latency table: steps 1, 2, 3 and 5.
    fn render_latency(&self, w: &mut String) {
        let _ = writeln!(
            w,
            "{:<58} {:>7} {:>9} {:>9} {:>9}",
            "latency (ms)", "n", "median", "p99", "max"
        );
        let row = |w: &mut String, label: &str, s: &Summary| {
            let _ = writeln!(
                w,
                "{label:<58} {:>7} {:>9.3} {:>9.3} {:>9.3}",
                s.n, s.median_ms, s.p99_ms, s.max_ms
            );
        };
        for r in &self.gate_cost.rows {
            row(
                w,
                &format!("1 gate cost  {:<11} {}", r.method, r.route),
                &r.latency,
            );
        }
        row(
            w,
            "2 decision → release (POST /decide → result at client)",
            &self.release.decision_to_release,
        );
        row(
            w,
            "  (POST /decide round trip alone)",
            &self.release.decide_round_trip,
        );
        row(
            w,
            "3 park → visible (client sends → parked event on /events)",
            &self.release.park_to_visible,
        );
        for t in &self.throughput {
            row(
                w,
                &format!(
                    "5 cluster_db_query {}, concurrency {}",
                    t.server, t.concurrency
                ),
                &t.latency,
            );
        }
        let _ = writeln!(w);
    }

    /// Step 1's added cost per gateway, 1b's instructions, 1c's approval chain.
    fn render_costs(&self, w: &mut String) {
        for c in &self.gate_cost.costs {
            let _ = writeln!(
                w,
                "1 gate cost {:<11} via {:<12} added median {:+.3} ms, added p99 {:+.3} ms, p99 ratio {:.2}",
                c.method, c.gateway, c.added_median_ms, c.added_p99_ms, c.ratio_p99
            );
        }
        if let Some(us) = self.gate_cost.extauth_cpu_us_per_check {
            let _ = writeln!(
                w,
                "1 gate cost: hitl-extauth used {us:.1} µs CPU per Check it passed"
            );
        }
        let _ = writeln!(
            w,
            "1b instructions per passed Check (hitl-extauth, callgrind): {} ({})",
            self.instructions.show(),
            self.instructions.note
        );
        let t = &self.token;
        let _ = writeln!(
            w,
            "1c approval chain per approved call: {:.1} µs (sign {:.1} µs at the gate; verify \
             {:.1} µs + sha256 {:.1} µs of 1 KiB, {:.1} µs of 64 KiB at mock-db-mcp)",
            t.per_approved_call_us(),
            t.sign_us,
            t.verify_us,
            t.sha256_1k_us,
            t.sha256_64k_us
        );
        self.floor.render(w);
        let _ = writeln!(w);
    }

    /// CPU per request, per process.
    fn render_cpu(&self, w: &mut String) {
        let _ = writeln!(
            w,
            "{:<58} {:>12} {:>12} {:>12} {:>12}",
            "CPU per request (µs)", CPU_COLUMNS[0], CPU_COLUMNS[1], CPU_COLUMNS[2], CPU_COLUMNS[3]
        );
        let cpu_row = |w: &mut String, label: &str, cpu: &std::collections::BTreeMap<&str, f64>| {
            let cell = |name: &str| cpu.get(name).map_or("-".into(), |us| format!("{us:.1}"));
            let _ = writeln!(
                w,
                "{label:<58} {:>12} {:>12} {:>12} {:>12}",
                cell(CPU_COLUMNS[0]),
                cell(CPU_COLUMNS[1]),
                cell(CPU_COLUMNS[2]),
                cell(CPU_COLUMNS[3])
            );
        };
        for r in &self.gate_cost.rows {
            cpu_row(
                w,
                &format!("1 gate cost  {:<11} {}", r.method, r.route),
                &r.cpu_us_per_request,
            );
        }
        cpu_row(
            w,
            "2,3 park → decide → release (per call)",
            &self.release.cpu_us_per_call,
        );
        for t in &self.throughput {
            let cpu = t
                .server_cpu_us_per_request
                .map(|us| (mock_db::NAME, us))
                .into_iter()
                .collect();
            cpu_row(
                w,
                &format!(
                    "5 cluster_db_query {}, concurrency {}",
                    t.server, t.concurrency
                ),
                &cpu,
            );
        }
    }

    /// Step 5: mock-db-mcp alone.
    fn render_throughput(&self, w: &mut String) {
        for t in &self.throughput {
            let _ = writeln!(
                w,
                "5 throughput, {:<11} concurrency {:>2}: {:.0} requests/s ({} in {:.1} s, {} \
                 errors); {} µs CPU per request, bench client {} cores",
                t.server,
                t.concurrency,
                t.requests_per_s,
                t.requests,
                t.elapsed_s,
                t.errors,
                t.server_cpu_us_per_request
                    .map_or("?".into(), |us| format!("{us:.0}")),
                t.client_cpu_cores.map_or("?".into(), |c| format!("{c:.2}")),
            );
        }
    }
}

/// Each target, met or missed.
pub fn render_targets(w: &mut String, targets: &[Target]) {
    let _ = writeln!(w);
    let _ = writeln!(w, "targets:");
    for t in targets {
        let _ = writeln!(
            w,
            "  {:<6} {:<58} {:>9.3} {:<3} (target {})",
            if t.met { "met" } else { "MISSED" },
            t.what,
            t.measured,
            t.unit,
            t.target
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_compare_strictly_or_not() {
        assert!(Target::below("x", "ms", 0.99, 1.0).met);
        assert!(!Target::below("x", "ms", 1.0, 1.0).met);
        assert!(Target::at_most("x", "x", 1.2, 1.2).met);
        assert!(!Target::at_most("x", "x", 1.21, 1.2).met);
        assert_eq!(Target::at_most("x", "", 0.0, 0.0).target, "<= 0");
        assert!(Target::at_least("x", "/s", 1000.0, 1000.0).met);
        assert!(!Target::at_least("x", "/s", 999.9, 1000.0).met);
        assert_eq!(Target::at_least("x", "", 2.0, 1.0).target, ">= 1");
    }
}
