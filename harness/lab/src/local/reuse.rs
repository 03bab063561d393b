//! A local lab that is already up: kept when it is the one asked for and all alive, else
//! taken down first (another model, gateway or agent, or partly down); a kind lab refuses.

use super::{LocalConfig, down};
use crate::{
    gateway::Gateway,
    lab::{LabState, Target},
    proc,
};

/// The recorded lab, if it can be kept as it is; `None` when `up` must start one (any other
/// local lab is down by then).
pub(super) fn already_up(config: &LocalConfig) -> anyhow::Result<Option<LabState>> {
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
            Target::Local => {
                if all_alive(&state) {
                    config.note("==> the local lab is already up");
                    return Ok(Some(state));
                }
                config.note("==> the local lab is partly down; restarting it");
                down(&config.dir, config.progress)?;
            }
        }
    }

    Ok(None)
}

fn all_alive(state: &LabState) -> bool {
    !state.processes.is_empty()
        && state
            .processes
            .iter()
            .all(|p| proc::live_cmdline(p.pid).as_deref() == Some(&p.argv[..]))
}
