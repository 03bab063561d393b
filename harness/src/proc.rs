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
        if let Some(dir) = spec.log.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating log directory {}", dir.display()))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .with_context(|| format!("opening log file {}", spec.log.display()))?;
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
        let Some(url) = self.spec.health_url.clone() else {
            return Ok(());
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + self.spec.ready_timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "{} exited with {status} before it became healthy; log {}:\n{}",
                    self.spec.name,
                    self.spec.log.display(),
                    self.log_tail(30)
                );
            }
            if let Ok(resp) = client.get(&url).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "{} did not answer {url} within {:?}; log {}:\n{}",
                    self.spec.name,
                    self.spec.ready_timeout,
                    self.spec.log.display(),
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop the process (SIGKILL) and wait for it to go.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Stop gracefully: SIGTERM, then SIGKILL after `grace`.
    pub async fn terminate(&mut self, grace: Duration) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            // The `kill` command rather than libc keeps the workspace free of `unsafe`.
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
            if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
                return Ok(());
            }
        }
        self.kill().await
    }
}

/// The last `lines` lines of a log file ("" if unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
