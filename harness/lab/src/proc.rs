//! Running one of the lab's processes for a test: spawn it with its output in a log file,
//! wait until it answers its health check, kill it when the handle is dropped.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio::process::{Child, Command};

mod detached;
mod saved;
pub use detached::how_it_ended;
pub use saved::SavedSpec;

/// How to start a process and how to tell it is ready.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Short name for messages and the log file name.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: BTreeMap<String, OsString>,
    /// `http://127.0.0.1:PORT/healthz`-style URL that answers 2xx once the process is ready.
    pub health_url: Option<String>,
    /// How long to wait for health before giving up.
    pub ready_timeout: Duration,
    /// Where stdout and stderr go (one file, appended).
    pub log: PathBuf,
}

impl Spec {
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>, log_dir: &Path) -> Self {
        let name = name.into();
        Self {
            log: log_dir.join(format!("{name}.log")),
            name,
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            health_url: None,
            ready_timeout: Duration::from_secs(30),
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<OsString>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn health(mut self, url: impl Into<String>) -> Self {
        self.health_url = Some(url.into());
        self
    }

    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }
}

/// A running child process, killed when dropped.
#[derive(Debug)]
pub struct Running {
    pub spec: Spec,
    child: Child,
}

impl Running {
    /// Spawn the process and wait for its health check (if any).
    pub async fn start(spec: Spec) -> anyhow::Result<Self> {
        let log = open_log(&spec.log)?;
        let child = Command::new(&spec.program)
            .args(&spec.args)
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} ({})", spec.name, spec.program.display()))?;
        let mut running = Self { spec, child };
        running.wait_healthy().await?;
        Ok(running)
    }

    /// OS process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The last `lines` lines of the process's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.spec.log, lines)
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let child = &mut self.child;
        wait_ready(&self.spec, || {
            child
                .try_wait()
                .ok()
                .flatten()
                .map(|status| status.to_string())
        })
        .await
    }

    /// Stop the process (SIGKILL) and wait for it to go.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Stop gracefully: SIGTERM, then SIGKILL after `grace`.
    pub async fn terminate(&mut self, grace: Duration) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            signal(pid, "TERM");
            if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
                return Ok(());
            }
        }
        self.kill().await
    }
}

/// Wait until `spec`'s health URL answers 2xx. `exited` reports the process's exit status
/// once it has died (so a crash fails fast, with the log tail, instead of timing out).
pub async fn wait_ready(
    spec: &Spec,
    mut exited: impl FnMut() -> Option<String>,
) -> anyhow::Result<()> {
    let Some(url) = spec.health_url.as_deref() else {
        return Ok(());
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = Instant::now() + spec.ready_timeout;
    loop {
        if let Some(status) = exited() {
            anyhow::bail!(
                "{} exited ({status}) before it became healthy; log {}:\n{}",
                spec.name,
                spec.log.display(),
                match log_tail(&spec.log, 30) {
                    tail if tail.trim().is_empty() => {
                        "(empty: it was stopped before it wrote a line, or never started)".into()
                    }
                    tail => tail,
                }
            );
        }
        if let Ok(resp) = client.get(url).send().await
            && resp.status().is_success()
            && exited().is_none()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{} did not answer {url} within {:?}; log {}:\n{}",
                spec.name,
                spec.ready_timeout,
                spec.log.display(),
                log_tail(&spec.log, 30)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Start `spec` detached from the caller: its own process group (a Ctrl-C in the terminal
/// that ran `cargo xtask up` does not reach it), output appended to its log, no stdin.
///
/// The process runs under a `/bin/sh` that only waits for it: Envoy sets a parent-death
/// signal (`PR_SET_PDEATHSIG`) on itself, so with `cargo xtask` as its parent it would die
/// the moment `up` returns. The waiting shell is a parent that outlives `up`; it and its
/// child share a process group, which is what [`stop_pid`] signals.
///
/// Returns the process group's pid and the argv `/proc` shows for it; the caller records
/// both and later stops the group with [`stop_pid`].
pub fn spawn_detached(spec: &Spec) -> anyhow::Result<(u32, Vec<String>)> {
    use std::os::unix::process::CommandExt as _;
    let log = open_log(&spec.log)?;
    let argv: Vec<String> = [SH, "-c", HOLD, spec.name.as_str()]
        .into_iter()
        .map(str::to_owned)
        .chain(argv(spec))
        .collect();
    let child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {} ({})", spec.name, spec.program.display()))?;
    let pid = child.id();
    detached::keep(child);
    Ok((pid, argv))
}

const SH: &str = "/bin/sh";
/// Run the arguments and wait for them (`; exit` keeps the shell from exec'ing them).
const HOLD: &str = "\"$@\"; exit $?";

fn open_log(path: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        hitl_wire::private::dir(dir)
            .with_context(|| format!("creating log directory {}", dir.display()))?;
    }
    // A service may log what a caller sent (tokens included): owner-only.
    hitl_wire::private::append(path).with_context(|| format!("opening log file {}", path.display()))
}

/// The command line of a live (non-zombie) process, from `/proc`.
pub fn live_cmdline(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state letter follows the parenthesised command name.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The argv `spec` runs with, as `/proc/<pid>/cmdline` will show it.
pub fn argv(spec: &Spec) -> Vec<String> {
    std::iter::once(spec.program.as_os_str())
        .chain(spec.args.iter().map(|a| a.as_os_str()))
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// What [`stop_pid`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was running and has stopped.
    Stopped,
    /// Nothing with that pid and command line was running.
    NotRunning,
}

/// Stop the process group `pid` leads if it is still the one we started: SIGTERM, then
/// SIGKILL after `grace`, and return only once **every** process of the group is gone (so
/// their ports are free). A pid reused by an unrelated process is left alone.
///
/// The group is ours while its leader still runs the argv we recorded; once the leader has
/// died (say a `kill -9` of the waiting shell), any process still in the group is an orphan
/// of ours: the kernel does not hand out a process-group id again while the group has members.
pub fn stop_pid(pid: u32, argv: &[String], grace: Duration) -> anyhow::Result<Stopped> {
    match live_cmdline(pid) {
        Some(cmdline) if cmdline == argv => {}
        Some(_) => return Ok(Stopped::NotRunning),
        None if group_members(pid).is_empty() => return Ok(Stopped::NotRunning),
        None => {}
    }
    signal_group(pid, "TERM");
    if wait_group_gone(pid, grace) {
        return Ok(Stopped::Stopped);
    }
    signal_group(pid, "KILL");
    if wait_group_gone(pid, Duration::from_secs(5)) {
        return Ok(Stopped::Stopped);
    }
    anyhow::bail!(
        "process group {pid} ({}) did not stop after SIGKILL: still {:?}",
        argv.join(" "),
        group_members(pid)
    )
}

/// Kill the process group `pid` leads at once (SIGKILL, no grace: a crash, as `kill -9`), if
/// it is still the one we started; return once every process of the group is gone.
pub fn kill_pid(pid: u32, argv: &[String]) -> anyhow::Result<Stopped> {
    match live_cmdline(pid) {
        Some(cmdline) if cmdline == argv => {}
        Some(_) => return Ok(Stopped::NotRunning),
        None if group_members(pid).is_empty() => return Ok(Stopped::NotRunning),
        None => {}
    }
    signal_group(pid, "KILL");
    anyhow::ensure!(
        wait_group_gone(pid, Duration::from_secs(5)),
        "process group {pid} ({}) did not stop after SIGKILL: still {:?}",
        argv.join(" "),
        group_members(pid)
    );
    Ok(Stopped::Stopped)
}

/// Wait up to `timeout` for the group `pgid` to have no live member.
fn wait_group_gone(pgid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if group_members(pgid).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The live (non-zombie) processes whose process group is `pgid`, from `/proc`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the parenthesised command name: state, ppid, pgrp, …
            let mut fields = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace())
                .into_iter()
                .flatten();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|f| f.parse::<u32>().ok());
            !matches!(state, Some("Z" | "X")) && pgrp == Some(pgid)
        })
        .collect()
}

/// Signal every process in the group `pgid` leads.
fn signal_group(pgid: u32, name: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Send a signal with the `kill` command (keeps the workspace free of `unsafe`).
fn signal(pid: u32, name: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The last `lines` lines of a log file ("" if unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
