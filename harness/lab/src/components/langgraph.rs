//! The BYO LangGraph agent: how to run `python/langgraph-agent/main.py` (kagent-langgraph's
//! A2A app around our graph, in its local mode) from the project venv.

use std::path::Path;
use std::time::Duration;

use crate::{bins::workspace_root, proc::Spec, pyenv::Venv};

/// Log file name.
pub const NAME: &str = "kagent-langgraph";

/// The process spec: the venv's Python running the agent with `env` (its settings, see
/// `python/langgraph-agent/settings.py`); healthy once `/health` answers.
pub fn spec(venv: &Venv, port: u16, env: &[(String, String)], log_dir: &Path) -> Spec {
    let mut spec = Spec::new(NAME, venv.python(), log_dir)
        .arg(
            workspace_root()
                .join("python")
                .join("langgraph-agent")
                .join("main.py"),
        )
        .arg("--local")
        .arg("--host")
        .arg("127.0.0.1")
        .arg("--port")
        .arg(port.to_string())
        .env("PYTHONUNBUFFERED", "1")
        .health(format!("http://127.0.0.1:{port}/health"))
        .ready_timeout(Duration::from_secs(90));
    for (k, v) in env {
        spec = spec.env(k.clone(), v.clone());
    }
    spec
}
