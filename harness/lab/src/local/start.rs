//! Starting the local lab's processes: wait until its ports are free, spawn every process
//! detached and record it before waiting (so a failed start can still be taken down), then
//! wait until each is ready; on any failure, stop what had started.

use std::time::{Duration, Instant};

use super::{LocalConfig, down, store::LabPostgres};
use crate::{
    credentials::Credentials,
    lab::{LabState, ProcessRecord, StoreRecord, Target, Urls},
    proc::{self, Spec},
};

/// How long `up` waits for a port that is still held (by a lab process that is exiting, or
/// by a crashed one's leftover socket) before it gives up.
const PORT_WAIT: Duration = Duration::from_secs(20);

/// Wait, bounded by [`PORT_WAIT`], until every lab port can be bound; say which ones it waits
/// for. After a crash the previous lab's processes may still be closing their listeners.
pub(super) async fn wait_ports_free(config: &LocalConfig) -> anyhow::Result<()> {
    let postgres = config.topology.store == super::StoreChoice::Postgres;
    let mut wanted: Vec<(String, String, u16)> = config
        .ports
        .named()
        .into_iter()
        .filter(|(name, _, _)| postgres || *name != "postgres")
        .map(|(name, var, port)| (name.to_owned(), var.to_owned(), port))
        .collect();
    wanted.extend(
        config
            .ports
            .replica_ports(config.topology.replicas)
            .into_iter()
            .map(|(name, port)| {
                (
                    name,
                    "HITL_LAB_EXTAUTH_GRPC_PORT / _HTTP_PORT".to_owned(),
                    port,
                )
            }),
    );
    let taken = |_: &()| -> Vec<(String, String, u16)> {
        wanted
            .iter()
            .filter(|(_, _, port)| std::net::TcpListener::bind(("127.0.0.1", *port)).is_err())
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + PORT_WAIT;
    let mut announced = false;
    loop {
        let busy = taken(&());
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

/// What the lab is started with besides its processes.
pub(super) struct Started<'a> {
    pub(super) urls: Urls,
    pub(super) credentials: &'a Credentials,
    pub(super) park_timeout: Duration,
    /// The gate's PostgreSQL, started (and ready) before everything else.
    pub(super) server: Option<&'a LabPostgres>,
}

/// Spawn the store's server if any and wait for it, then every spec; record the lab in
/// `config.dir` as it goes, and wait until each process is ready.
pub(super) async fn start(
    config: &LocalConfig,
    specs: &[Spec],
    with: Started<'_>,
) -> anyhow::Result<LabState> {
    let Started {
        urls,
        credentials,
        park_timeout,
        server,
    } = with;
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
        store: Some(StoreRecord {
            topology: config.topology,
            postgres: server.map(|s| s.record.clone()),
        }),
    };
    if let Some(server) = server {
        spawn_store(config, server, &mut state).await?;
    }
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
    // The specs' own records: the last ones (the store's server, if any, came first).
    let records = &state.processes[state.processes.len() - specs.len()..];
    wait_ready(config, specs, records).await?;
    Ok(state)
}

/// Start the store's server, record it, and wait until it takes connections (the gate's
/// replicas open the store as they start); on failure, stop it.
async fn spawn_store(
    config: &LocalConfig,
    server: &LabPostgres,
    state: &mut LabState,
) -> anyhow::Result<()> {
    let (pid, argv) = proc::spawn_detached(&server.spec)?;
    state.processes.push(ProcessRecord {
        name: server.spec.name.clone(),
        pid,
        argv,
        log: server.spec.log.clone(),
        spec: Some((&server.spec).into()),
    });
    state.save(&config.dir)?;
    let t = Instant::now();
    if let Err(e) = server
        .wait_ready(|| proc::live_cmdline(pid).is_some())
        .await
    {
        let _ = down(&config.dir, false);
        return Err(e.context("the lab's PostgreSQL did not come up; stopped it"));
    }
    config.note(format!(
        "  ✓ {} ready ({:.1} s)",
        server.spec.name,
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Wait until every process is ready; if any is not, stop them all.
async fn wait_ready(
    config: &LocalConfig,
    specs: &[Spec],
    records: &[ProcessRecord],
) -> anyhow::Result<()> {
    let waits = specs.iter().zip(records).map(|(spec, record)| {
        let pid = record.pid;
        async move {
            let t = Instant::now();
            proc::wait_ready(spec, || {
                proc::live_cmdline(pid)
                    .is_none()
                    .then(|| proc::how_it_ended(pid).unwrap_or_else(|| "exited".to_owned()))
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
