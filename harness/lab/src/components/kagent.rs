//! kagent: how to run the real kagent engine (`kagent-adk`, in its in-memory local mode)
//! through `python/kagent_local.py`, from the project venv.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{bins::workspace_root, proc::Spec, pyenv::Venv};

/// Log file name.
pub const NAME: &str = "kagent";

/// How to run the agent.
#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    /// kagent `AgentConfig` JSON (as kagent's controller would write it).
    pub config: PathBuf,
    /// A2A agent card JSON.
    pub card: PathBuf,
    /// `<namespace>__NS__<name>` with `-` → `_`.
    pub app_name: String,
    /// Extra environment (model API keys).
    pub env: Vec<(String, String)>,
}

/// kagent's app-name convention for an agent.
pub fn app_name(namespace: &str, name: &str) -> String {
    format!("{namespace}__NS__{name}").replace('-', "_")
}

/// The process spec: the venv's Python running the launcher; healthy once `/health` answers.
/// The first start after the venv was built takes ~10 s (imports), later ones ~5 s.
pub fn spec(venv: &Venv, options: &Options, log_dir: &Path) -> Spec {
    let mut spec = Spec::new(NAME, venv.python(), log_dir)
        .arg(workspace_root().join("python").join("kagent_local.py"))
        .arg("--config")
        .arg(&options.config)
        .arg("--card")
        .arg(&options.card)
        .arg("--host")
        .arg("127.0.0.1")
        .arg("--port")
        .arg(options.port.to_string())
        .arg("--app-name")
        .arg(&options.app_name)
        .env("PYTHONUNBUFFERED", "1")
        .health(format!("http://127.0.0.1:{}/health", options.port))
        .ready_timeout(Duration::from_secs(90));
    for (k, v) in &options.env {
        spec = spec.env(k.clone(), v.clone());
    }
    spec
}
