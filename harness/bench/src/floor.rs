//! Step 1d: the floor under a passed `Check`. The same `tools/list` POSTs go through a fresh
//! Envoy to two gates in turn — hitl-extauth, and `check-floor`, a tonic Authorization server
//! with hitl-extauth's transport that decodes each Check and answers OK and does nothing
//! else — and the bench counts what each gate process spends per Check: CPU (user and kernel,
//! from `/proc`), and instructions under callgrind. The floor's figures are what any tonic
//! ext_authz gate pays on this machine; hitl-extauth's excess over them is the gate's own work.

use std::{path::Path, time::Duration};

use anyhow::Context as _;
use hitl_wire::mockdb::paths;
use serde::Serialize;

use super::{host, instructions, mcp, stack::Stack};
use hitl_lab::{
    bins,
    components::envoy,
    envoy::{Endpoint, GatewayPlan, GatewayPorts},
    net,
    proc::{Running, Spec},
};

/// The floor's binary name (a bin of this crate).
pub const FLOOR_BIN: &str = "check-floor";
/// Untimed Checks before counting (connections, allocator, lazy statics).
const WARMUP: usize = 30;

/// One gate's cost per passed Check.
#[derive(Debug, Clone, Serialize)]
pub struct GateCost {
    pub gate: &'static str,
    /// CPU of the gate process per Check, µs (all threads, user and kernel, from schedstat).
    pub cpu_us: Option<f64>,
    /// Instructions per Check under callgrind (user space only).
    pub instructions: Option<f64>,
}

/// Step 1d's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    pub checks: usize,
    /// hitl-extauth, then the floor.
    pub gates: Vec<GateCost>,
    pub note: String,
}

impl Floor {
    /// hitl-extauth's excess over the floor: (CPU µs, instructions) per Check.
    pub fn excess(&self) -> (Option<f64>, Option<f64>) {
        let [ours, floor] = [0, 1].map(|i| self.gates.get(i));
        let diff = |f: fn(&GateCost) -> Option<f64>| Some(f(ours?)? - f(floor?)?);
        (diff(|g| g.cpu_us), diff(|g| g.instructions))
    }

    /// Step 1d's lines of the report.
    pub fn render(&self, w: &mut String) {
        use std::fmt::Write as _;
        let or_na = |v: Option<f64>, show: &dyn Fn(f64) -> String| v.map_or("n/a".into(), show);
        for g in &self.gates {
            let _ = writeln!(
                w,
                "1d a passed Check, {:<13} CPU {}, {} instructions",
                g.gate,
                or_na(g.cpu_us, &|us| format!("{us:.1} µs")),
                or_na(g.instructions, &|ir| format!("{ir:.0}")),
            );
        }
        let (cpu, ir) = self.excess();
        let _ = writeln!(
            w,
            "1d hitl-extauth's own work per passed Check (over the floor): CPU {}, {} \
             instructions ({})",
            or_na(cpu, &|us| format!("{us:+.1} µs")),
            or_na(ir, &|ir| format!("{ir:+.0}")),
            self.note
        );
    }
}

/// Measure both gates: `checks` passed Checks each, natively, then `callgrind_checks` under
/// callgrind; hitl-extauth's callgrind figure is also step 1b's.
pub async fn measure(
    stack: &Stack,
    checks: usize,
    callgrind_checks: usize,
) -> anyhow::Result<(Floor, instructions::Instructions)> {
    let dir = stack.log_dir.join("floor");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ours_pid = stack.extauth_pid().context("hitl-extauth has no pid")?;
    let ours = native(
        stack,
        &dir,
        stack.extauth.options.grpc_endpoint(),
        ours_pid,
        checks,
    )
    .await?;
    let floor_bin = bins::path(FLOOR_BIN)?;
    let port = net::free_port()?;
    let floor_proc = start_floor(
        Spec::new(FLOOR_BIN, &floor_bin, &dir).arg(port.to_string()),
        port,
    )
    .await?;
    let floor_pid = floor_proc.pid().context("check-floor has no pid")?;
    let floor = native(stack, &dir, Endpoint::loopback(port), floor_pid, checks).await?;
    drop(floor_proc);

    let ours_ir = instructions::measure(stack, callgrind_checks, super::PARK_TIMEOUT).await?;
    let floor_ir = instructions::count(stack, &dir, callgrind_checks, |valgrind_args| {
        let port = net::free_port()?;
        let spec = Spec::new(FLOOR_BIN, &floor_bin, &dir).arg(port.to_string());
        Ok((
            instructions::under_callgrind(spec, valgrind_args),
            Endpoint::loopback(port),
        ))
    })
    .await?;
    let floor = Floor {
        checks,
        gates: vec![
            GateCost {
                gate: "hitl-extauth",
                instructions: ours_ir.per_passed_check,
                ..ours
            },
            GateCost {
                gate: FLOOR_BIN,
                instructions: floor_ir.per_passed_check,
                ..floor
            },
        ],
        note: format!(
            "{checks} tools/list through a fresh Envoy per gate after {WARMUP} warm-up; \
             {callgrind_checks} under callgrind; {}",
            floor_ir.note
        ),
    };
    Ok((floor, ours_ir))
}

/// Start `check-floor` and wait until its port takes connections.
pub async fn start_floor(spec: Spec, port: u16) -> anyhow::Result<Running> {
    let patience = spec.ready_timeout;
    let running = Running::start(spec).await?;
    let deadline = tokio::time::Instant::now() + patience;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "check-floor did not listen on 127.0.0.1:{port} within {patience:?}; log:\n{}",
            running.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(running)
}

/// A fresh Envoy in front of the gate at `gate`; `checks` sequential `tools/list` POSTs on
/// the gated route after a warm-up; the gate process's CPU per Check.
async fn native(
    stack: &Stack,
    dir: &Path,
    gate: Endpoint,
    pid: u32,
    checks: usize,
) -> anyhow::Result<GateCost> {
    let (plan, gateway) = gateway(stack, dir, gate).await?;
    let url = gated_url(&plan);
    let http = mcp::http1(Duration::from_secs(30))?;
    send(&http, &url, 1, WARMUP).await?;
    let meter = host::CpuMeter::start(vec![("gate", pid)]);
    send(&http, &url, 1_000, checks).await?;
    let cpu_us = meter.per_request_us(checks).get("gate").copied();
    drop(gateway);
    Ok(GateCost {
        gate: "",
        cpu_us,
        instructions: None,
    })
}

/// Envoy, planned as the lab plans it, with its ext_authz cluster on `gate`.
pub async fn gateway(
    stack: &Stack,
    dir: &Path,
    gate: Endpoint,
) -> anyhow::Result<(GatewayPlan, Running)> {
    let plan = GatewayPlan::from_manifests(
        GatewayPorts::free()?,
        Endpoint::loopback(stack.db.options.port),
        gate,
        super::PARK_TIMEOUT,
    )?
    .with_requester_jwt(stack.requester_jwt());
    let running =
        Running::start(envoy::spec(&plan, dir)?.ready_timeout(Duration::from_secs(120))).await?;
    Ok((plan, running))
}

/// The gated route's URL on `plan`'s listener.
pub fn gated_url(plan: &GatewayPlan) -> String {
    format!(
        "http://{}:{}{}",
        plan.listen.host,
        plan.listen.port,
        paths::PRIVILEGED_MCP
    )
}

/// `n` sequential `tools/list` POSTs with ids from `first`, each answered with a result.
pub async fn send(http: &reqwest::Client, url: &str, first: u64, n: usize) -> anyhow::Result<()> {
    for id in first..first + n as u64 {
        mcp::post(http, url, mcp::tools_list(id), None)
            .await?
            .rpc_result(id)
            .context("tools/list through the gate")?;
    }
    Ok(())
}
