//! Step 1b: instructions per passed `Check`, a figure machine noise does not move. A second
//! hitl-extauth runs under `valgrind --tool=callgrind` behind its own Envoy (same plan, same
//! mock-db-mcp); after a warm-up its counters are zeroed (`callgrind_control --zero`), a fixed
//! number of `tools/list` POSTs go through the gated route, and the dump that follows
//! (`callgrind_control --dump`) says how many instructions hitl-extauth executed for them —
//! the whole process: gRPC, h2, prost, classifier, logging, runtime. Without `valgrind` and
//! `callgrind_control` on `PATH` the figure is "n/a".

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use serde::Serialize;

use super::{mcp, stack::Stack};
use hitl_lab::{components::extauth, envoy::Endpoint, net, proc::Spec};

/// Untimed, uncounted Checks first (connections, allocator, lazy statics).
const WARMUP: usize = 30;
/// Everything is slow under callgrind: how long a start may take.
const START_PATIENCE: Duration = Duration::from_secs(120);

/// Step 1b's figure.
#[derive(Debug, Clone, Serialize)]
pub struct Instructions {
    /// Checks counted.
    pub checks: usize,
    /// Instructions hitl-extauth executed per passed Check (callgrind's `Ir`), if measured.
    pub per_passed_check: Option<f64>,
    /// What was run, or why nothing was.
    pub note: String,
}

impl Instructions {
    /// `12345` or `n/a`.
    pub fn show(&self) -> String {
        self.per_passed_check
            .map_or_else(|| "n/a".into(), |ir| format!("{ir:.0}"))
    }
}

/// `name` on `PATH`, if it is there.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// Count `checks` passed Checks (after a warm-up) with hitl-extauth under callgrind.
pub async fn measure(
    stack: &Stack,
    checks: usize,
    park_timeout: Duration,
) -> anyhow::Result<Instructions> {
    let dir = stack.log_dir.join("callgrind");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    count(stack, &dir, checks, |valgrind_args| {
        let options = extauth::Options::new(net::free_port()?, net::free_port()?, &dir)
            .park_timeout(park_timeout)
            .credentials(&stack.credentials)
            .requester(extauth::RequesterTrust::of(&stack.issuer, &dir)?);
        let spec = extauth::spec(&options, &dir)?;
        Ok((
            under_callgrind(spec, valgrind_args),
            options.grpc_endpoint(),
        ))
    })
    .await
}

/// `spec` run by `valgrind` with `valgrind_args` (from [`count`]) before its own, and the
/// patience a start under callgrind needs.
pub fn under_callgrind(mut spec: Spec, valgrind_args: Vec<OsString>) -> Spec {
    let mut args = valgrind_args;
    args.push(spec.program.into_os_string());
    args.append(&mut spec.args);
    spec.program = PathBuf::from("valgrind");
    spec.args = args;
    spec.ready_timeout(START_PATIENCE)
}

/// Count `checks` passed Checks (after a warm-up) of the gate `start` describes — given the
/// valgrind arguments, the [`under_callgrind`] spec and its gRPC endpoint — behind its own
/// Envoy; dumps in `dir`.
pub async fn count(
    stack: &Stack,
    dir: &Path,
    checks: usize,
    start: impl FnOnce(Vec<OsString>) -> anyhow::Result<(Spec, Endpoint)>,
) -> anyhow::Result<Instructions> {
    let (Some(valgrind), Some(control)) = (on_path("valgrind"), on_path("callgrind_control"))
    else {
        return Ok(Instructions {
            checks: 0,
            per_passed_check: None,
            note: "n/a: valgrind (with callgrind_control) is not on PATH".into(),
        });
    };
    let (mut spec, endpoint) = start(vec![
        "--tool=callgrind".into(),
        format!("--callgrind-out-file={}/callgrind.out.%p", dir.display()).into(),
    ])?;
    spec.program = valgrind;
    let name = spec.name.clone();
    let gate = super::floor::start_floor(spec, endpoint.port)
        .await
        .with_context(|| format!("starting {name} under callgrind"))?;
    let pid = gate
        .pid()
        .with_context(|| format!("{name} under callgrind has no pid"))?;
    let (plan, gateway) = super::floor::gateway(stack, dir, endpoint).await?;
    let url = super::floor::gated_url(&plan);
    let http = mcp::http1(START_PATIENCE)?;
    super::floor::send(&http, &url, 1, WARMUP).await?;
    callgrind_control(&control, "--zero", pid).await?;
    super::floor::send(&http, &url, 1_000, checks).await?;
    callgrind_control(&control, "--dump", pid).await?;
    drop(gateway);
    drop(gate);
    let instructions = last_dump_total(dir, pid)?;
    Ok(Instructions {
        checks,
        per_passed_check: Some(instructions as f64 / checks as f64),
        note: format!(
            "{name} under callgrind behind its own Envoy; {checks} tools/list after \
             {WARMUP} warm-up; dumps in {}",
            dir.display()
        ),
    })
}

async fn callgrind_control(control: &Path, action: &str, pid: u32) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(control)
        .arg(action)
        .arg(pid.to_string())
        .output()
        .await
        .with_context(|| format!("running {} {action}", control.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "callgrind_control {action} {pid} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The `totals:` of the newest dump `callgrind.out.<pid>.<n>` in `dir`.
fn last_dump_total(dir: &Path, pid: u32) -> anyhow::Result<u64> {
    let prefix = format!("callgrind.out.{pid}.");
    let newest = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let n: u32 = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((n, entry.path()))
        })
        .max()
        .context("callgrind wrote no dump")?
        .1;
    let text = std::fs::read_to_string(&newest)
        .with_context(|| format!("reading {}", newest.display()))?;
    dump_total(&text).with_context(|| format!("no totals in {}", newest.display()))
}

/// The instruction count on a callgrind dump's `totals:` (or `summary:`) line.
pub fn dump_total(dump: &str) -> Option<u64> {
    dump.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_totals_of_a_dump() {
        let dump = "# callgrind format\nversion: 1\nevents: Ir\nfn=(1) main\n3 5\ntotals: 73250\n";
        assert_eq!(dump_total(dump), Some(73250));
        assert_eq!(dump_total("summary: 12 0\n"), Some(12));
        assert_eq!(dump_total("events: Ir\n"), None);
    }
}
