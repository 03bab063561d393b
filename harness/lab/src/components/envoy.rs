//! Envoy, the local gateway: its generated config and how to run it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::{envoy::GatewayPlan, proc::Spec, pyenv};

/// Log file (and config file) name.
pub const NAME: &str = "envoy";

/// Write the rendered config of `plan` to `<log_dir>/envoy-<port>.yaml` and return where.
pub fn write_config(plan: &GatewayPlan, log_dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let path = log_dir.join(format!("{NAME}-{}.yaml", plan.listen.port));
    std::fs::write(&path, crate::envoy::render(plan))
        .with_context(|| format!("writing the Envoy config {}", path.display()))?;
    Ok(path)
}

/// The process spec: the real Envoy ([`pyenv::envoy_binary`]) with the plan's config, healthy
/// once its admin `/ready` answers. `--use-dynamic-base-id` keeps parallel Envoys (tests,
/// a local lab) from colliding on shared memory.
pub fn spec(plan: &GatewayPlan, log_dir: &Path) -> anyhow::Result<Spec> {
    let config = write_config(plan, log_dir)?;
    let envoy = pyenv::envoy_binary().context("locating the Envoy binary")?;
    Ok(Spec::new(NAME, envoy, log_dir)
        .arg("--config-path")
        .arg(config)
        .arg("--use-dynamic-base-id")
        .arg("--log-level")
        .arg("info")
        .health(format!(
            "http://{}:{}/ready",
            plan.admin.host, plan.admin.port
        )))
}
