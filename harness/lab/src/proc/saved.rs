//! A process's [`Spec`] as the lab state file keeps it, so that one component can be started
//! again exactly as it was (`local::restart`).

use std::{collections::BTreeMap, ffi::OsString, path::Path, path::PathBuf, time::Duration};

use super::Spec;

/// A [`Spec`] as the lab state file keeps it (owner-only: the environment holds tokens).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub health_url: Option<String>,
    pub ready_timeout_ms: u64,
}

impl From<&Spec> for SavedSpec {
    fn from(spec: &Spec) -> Self {
        let text = |s: &OsString| s.to_string_lossy().into_owned();
        Self {
            program: spec.program.clone(),
            args: spec.args.iter().map(text).collect(),
            env: spec.env.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
            health_url: spec.health_url.clone(),
            ready_timeout_ms: u64::try_from(spec.ready_timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

impl SavedSpec {
    /// The spec again, named `name`, logging to `log`.
    pub fn spec(&self, name: &str, log: &Path) -> Spec {
        Spec {
            name: name.to_owned(),
            program: self.program.clone(),
            args: self.args.iter().map(OsString::from).collect(),
            env: self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), OsString::from(v)))
                .collect(),
            health_url: self.health_url.clone(),
            ready_timeout: Duration::from_millis(self.ready_timeout_ms),
            log: log.to_path_buf(),
        }
    }
}
