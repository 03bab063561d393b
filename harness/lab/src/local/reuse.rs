//! A local lab that is already up: kept when it is the one asked for; a component of it that
//! died is started again on its own (same spec, same store); taken down first when it is
//! another lab (another model, gateway, agent, store or number of gate replicas) or cannot be
//! mended; a kind lab refuses.

use super::{LocalConfig, down, restart};
use crate::{
    gateway::Gateway,
    lab::{LabState, Target},
    proc,
};

/// The recorded lab, if it can be kept (mended if need be); `None` when `up` must start one
/// (any other local lab is down by then).
pub(super) async fn already_up(config: &LocalConfig) -> anyhow::Result<Option<LabState>> {
    if let Some(state) = LabState::load(&config.dir)? {
        match state.target {
            Target::Kind => anyhow::bail!(
                "a kind lab is recorded in {}; take it down first (`cargo xtask down`)",
                crate::lab::state_path(&config.dir).display()
            ),
            Target::Local if state.model != config.model => {
                config.note(format!(
                    "==> the local lab is up with --model {}; restarting it with --model {}",
                    state.model,
                    config.model.as_str()
                ));
                down(&config.dir, config.progress)?;
            }
            Target::Local if state.gateway != Some(config.gateway) => {
                config.note(format!(
                    "==> the local lab is up with --gateway {}; restarting it with --gateway {}",
                    state.gateway.map_or("envoy", Gateway::as_str),
                    config.gateway
                ));
                down(&config.dir, config.progress)?;
            }
            Target::Local if !config.agents.iter().all(|a| state.agents.contains(a)) => {
                config.note(format!(
                    "==> the local lab is up without the {} agent; restarting it with {}",
                    config
                        .agents
                        .iter()
                        .find(|a| !state.agents.contains(a))
                        .expect("one is missing"),
                    config
                        .agents
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
                down(&config.dir, config.progress)?;
            }
            Target::Local if state.topology() != config.topology => {
                config.note(format!(
                    "==> the local lab is up with its gate on {}; restarting it on {}",
                    state.topology().describe(),
                    config.topology.describe()
                ));
                down(&config.dir, config.progress)?;
            }
            Target::Local
                if config
                    .park_timeout
                    .is_some_and(|t| state.park_timeout_sec != Some(t.as_secs())) =>
            {
                config.note(format!(
                    "==> the local lab is up with another hold (PARK_TIMEOUT_SEC {}); restarting \
                     it with {} s",
                    state
                        .park_timeout_sec
                        .map_or("unknown".to_owned(), |s| s.to_string()),
                    config.park_timeout.map_or(0, |t| t.as_secs())
                ));
                down(&config.dir, config.progress)?;
            }
            Target::Local => return mend(config, state).await,
        }
    }

    Ok(None)
}

/// The lab asked for is recorded: kept if all alive; its dead components started again on
/// their own if they can be (the rest keep running, the gate keeps its store); else down.
async fn mend(config: &LocalConfig, mut state: LabState) -> anyhow::Result<Option<LabState>> {
    let dead = dead(&state);
    if dead.is_empty() && !state.processes.is_empty() {
        config.note("==> the local lab is already up");
        return Ok(Some(state));
    }
    let mendable = dead.len() < state.processes.len()
        && state
            .processes
            .iter()
            .filter(|p| dead.contains(&p.name))
            .all(|p| p.spec.is_some());
    if mendable {
        for name in &dead {
            config.note(format!(
                "==> {name} of the local lab is down; starting it again"
            ));
            match restart::start_again(&mut state, &config.dir, name).await {
                Ok(()) => config.note(format!("  ✓ {name} ready")),
                Err(e) => {
                    config.note(format!(
                        "  {name} did not come back ({e:#}); restarting the lab"
                    ));
                    down(&config.dir, config.progress)?;
                    return Ok(None);
                }
            }
        }
        return Ok(Some(state));
    }
    config.note("==> the local lab is down or cannot be mended; restarting it");
    down(&config.dir, config.progress)?;
    Ok(None)
}

/// The recorded processes that no longer run what was started.
fn dead(state: &LabState) -> Vec<String> {
    state
        .processes
        .iter()
        .filter(|p| proc::live_cmdline(p.pid).as_deref() != Some(&p.argv[..]))
        .map(|p| p.name.clone())
        .collect()
}
