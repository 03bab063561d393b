//! Starting the local lab's processes: wait until its ports are free, spawn every process
//! detached and record it before waiting (so a failed start can still be taken down), then
//! wait until each is ready; on any failure, stop what had started.

use std::time::{Duration, Instant};

use super::{LocalConfig, Ports, down};
use crate::{
    credentials::Credentials,
    lab::{LabState, ProcessRecord, Target, Urls},
    proc::{self, Spec},
};

/// How long `up` waits for a port that is still held (by a lab process that is exiting, or
/// by a crashed one's leftover socket) before it gives up.
const PORT_WAIT: Duration = Duration::from_secs(20);

/// Wait, bounded by [`PORT_WAIT`], until every lab port can be bound; say which ones it waits
/// for. After a crash the previous lab's processes may still be closing their listeners.
pub(super) async fn wait_ports_free(config: &LocalConfig) -> anyhow::Result<()> {
    let taken = |ports: &Ports| -> Vec<(&'static str, &'static str, u16)> {
        ports
            .named()
            .into_iter()
            .filter(|(_, _, port)| std::net::TcpListener::bind(("127.0.0.1", *port)).is_err())
            .collect()
    };
    let deadline = Instant::now() + PORT_WAIT;
    let mut announced = false;
    loop {
        let busy = taken(&config.ports);
        if busy.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let lines: Vec<String> = busy
                .iter()
                .map(|(name, var, port)| {
                    format!("  port {port} ({name}) is taken: free it or set {var}")
                })
                .collect();
            anyhow::bail!(
                "cannot start the local lab (waited {} s for its ports):\n{}",
                PORT_WAIT.as_secs(),
                lines.join("\n")
            );
        }
        if !announced {
            let names: Vec<String> = busy
                .iter()
                .map(|(name, _, port)| format!("{port} ({name})"))
                .collect();
            config.note(format!(
                "==> waiting up to {} s for ports still in use: {}",
                PORT_WAIT.as_secs(),
                names.join(", ")
            ));
            announced = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Spawn every spec, record the lab in `config.dir`, and wait until each process is ready.
pub(super) async fn start(
    config: &LocalConfig,
    specs: &[Spec],
    urls: Urls,
    credentials: &Credentials,
    park_timeout: Duration,
) -> anyhow::Result<LabState> {
    let log_dir = config.log_dir();
    config.note(format!(
        "==> starting {} processes (logs in {})",
        specs.len(),
        log_dir.display()
    ));
    let mut state = LabState {
        target: Target::Local,
        model: config.model,
        gateway: Some(config.gateway),
        urls,
        processes: Vec::new(),
        log_dir: log_dir.clone(),
        admin_token: Some(credentials.admin_token.clone()),
        reset_token: Some(credentials.reset_token.clone()),
        reviewer_login: config
            .reviewer_credentials
            .split(',')
            .next()
            .filter(|login| login.contains(':'))
            .map(str::to_owned),
        requester_key: Some(config.dir.join(crate::requester::KEY_FILE)),
        agents: config.agents.clone(),
        park_timeout_sec: Some(park_timeout.as_secs()),
    };
    for spec in specs {
        let (pid, argv) = match proc::spawn_detached(spec) {
            Ok(started) => started,
            Err(e) => {
                state.save(&config.dir)?;
                let _ = down(&config.dir, false);
                return Err(e);
            }
        };
        state.processes.push(ProcessRecord {
            name: spec.name.clone(),
            pid,
            argv,
            log: spec.log.clone(),
            spec: Some(spec.into()),
        });
    }
    // Recorded before waiting, so a failed start can still be taken down by pid.
    state.save(&config.dir)?;
    wait_ready(config, specs, &state).await?;
    Ok(state)
}

/// Wait until every process is ready; if any is not, stop them all.
async fn wait_ready(config: &LocalConfig, specs: &[Spec], state: &LabState) -> anyhow::Result<()> {
    let waits = specs.iter().zip(&state.processes).map(|(spec, record)| {
        let pid = record.pid;
        async move {
            let t = Instant::now();
            proc::wait_ready(spec, || {
                proc::live_cmdline(pid)
                    .is_none()
                    .then(|| "exited".to_owned())
            })
            .await
            .map(|()| (spec.name.clone(), t.elapsed()))
        }
    });
    let results = futures::future::join_all(waits).await;
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok((name, took)) => {
                config.note(format!("  ✓ {name} ready ({:.1} s)", took.as_secs_f64()))
            }
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    if !failures.is_empty() {
        let _ = down(&config.dir, false);
        anyhow::bail!(
            "the local lab did not come up; stopped what had started.\n{}",
            failures.join("\n\n")
        );
    }
    Ok(())
}
