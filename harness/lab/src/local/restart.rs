//! One component of the running local lab, killed and started again on its own: the same
//! spec (same store, same credentials, same ports), the lab state's pid kept current. Scene 8
//! kills the gate with a call held and brings it back ([`restart_holding_gate`]: with several
//! replicas, the one holding the call, which its own `hitl_extauth_parked` gauge names;
//! replica 1 when none does); `up` brings back a component that died.

use std::path::Path;

use anyhow::Context as _;

use crate::{
    lab::{LabState, Target},
    proc,
};

/// Kill `component` of the local lab recorded in `dir` (SIGKILL, as `kill -9`: no clean
/// shutdown) if it runs, start it again with the spec it was started with, record its new
/// pid, and return once it answers its health check.
pub async fn restart(dir: &Path, component: &str) -> anyhow::Result<()> {
    let mut state = LabState::require(dir)?;
    anyhow::ensure!(
        state.target == Target::Local,
        "the lab in {} is a kind lab: its components are restarted by Kubernetes",
        dir.display()
    );
    let record = state
        .processes
        .iter()
        .find(|p| p.name == component)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the local lab has no component {component:?} (it runs: {})",
                names(&state)
            )
        })?;
    proc::kill_pid(record.pid, &record.argv)
        .with_context(|| format!("killing {component} (pid {})", record.pid))?;
    start_again(&mut state, dir, component).await
}

/// Kill and start again the gate replica that holds a call now (the first whose
/// `hitl_extauth_parked` gauge, which counts the calls that process holds, is above zero),
/// or replica 1 (`hitl-extauth`) when none does or the lab runs one; its name.
pub async fn restart_holding_gate(dir: &Path) -> anyhow::Result<String> {
    let state = LabState::require(dir)?;
    let replicas: Vec<&crate::lab::ProcessRecord> = state
        .processes
        .iter()
        .filter(|p| p.name.starts_with(crate::components::extauth::NAME))
        .collect();
    let mut chosen = crate::components::extauth::NAME.to_owned();
    if replicas.len() > 1 {
        for replica in replicas {
            if holds_a_call(&state, replica).await {
                chosen = replica.name.clone();
                break;
            }
        }
    }
    restart(dir, &chosen).await?;
    Ok(chosen)
}

/// Whether `replica` says (its admin `/metrics`) that it holds a call now.
async fn holds_a_call(state: &LabState, replica: &crate::lab::ProcessRecord) -> bool {
    let Some(port) = replica
        .spec
        .as_ref()
        .and_then(|s| s.env.get(hitl_wire::env::extauth::HTTP_PORT))
    else {
        return false;
    };
    let Ok(admin) = hitl_wire::extauth::client::AdminClient::new(
        &format!("http://127.0.0.1:{port}"),
        state.admin_token.clone(),
    ) else {
        return false;
    };
    admin.metrics().await.is_ok_and(|text| {
        text.lines()
            .filter_map(|l| l.strip_prefix("hitl_extauth_parked "))
            .any(|n| n.trim().parse::<f64>().is_ok_and(|n| n > 0.0))
    })
}

/// Start again, each with its recorded spec, the processes of the lab in `dir` that died
/// (e.g. the kind lab's port-forwards once the pod behind one restarted); their names.
pub async fn revive(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut state = LabState::require(dir)?;
    let dead: Vec<String> = state
        .processes
        .iter()
        .filter(|p| proc::live_cmdline(p.pid).as_deref() != Some(&p.argv[..]))
        .map(|p| p.name.clone())
        .collect();
    for name in &dead {
        start_again(&mut state, dir, name).await?;
    }
    Ok(dead)
}

/// Start `component` again (it is not running) with the spec it was started with; record its
/// new pid in `state` (saved in `dir`) before waiting for its health check.
pub(super) async fn start_again(
    state: &mut LabState,
    dir: &Path,
    component: &str,
) -> anyhow::Result<()> {
    let record = state
        .processes
        .iter_mut()
        .find(|p| p.name == component)
        .ok_or_else(|| anyhow::anyhow!("the local lab has no component {component:?}"))?;
    let saved = record.spec.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "the lab state does not record how {component} was started (a lab from before \
             restarts existed): take the lab down and up again"
        )
    })?;
    // What is left of its process group (a child whose waiting shell died) goes first: it
    // would hold the ports.
    proc::kill_pid(record.pid, &record.argv)?;
    let spec = saved.spec(component, &record.log);
    let (pid, argv) = proc::spawn_detached(&spec)?;
    record.pid = pid;
    record.argv = argv;
    // Recorded before waiting, so that `down` stops it even if it never becomes healthy.
    state.save(dir)?;
    proc::wait_ready(&spec, || {
        proc::live_cmdline(pid)
            .is_none()
            .then(|| "exited".to_owned())
    })
    .await
}

fn names(state: &LabState) -> String {
    state
        .processes
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
