//! The lab that is up, as recorded in its state file (`target/lab/state.json`): which target
//! (local processes or kind), the URLs every client needs, and for the local lab the exact
//! processes it started. `scene`, `status`, `down`, `logs` and `chat` all start from here.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use hitl_wire::extauth::client::{AdminClient, AdminError};
use serde::{Deserialize, Serialize};

use crate::{agents::AgentKind, bins::target_dir};

/// Where a lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Local,
    Kind,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Local => "local",
            Target::Kind => "kind",
        }
    }
}

/// Every endpoint a client of the lab needs, as reachable from this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Urls {
    /// The declarative agent's A2A JSON-RPC endpoint.
    pub agent: String,
    /// The declarative agent's card.
    pub agent_card: String,
    /// The BYO LangGraph agent's A2A JSON-RPC endpoint (its card is under it).
    #[serde(default)]
    pub langgraph_agent: Option<String>,
    /// The reviewer's queue (hitl-ui).
    pub reviewer_ui: String,
    /// hitl-extauth's admin API (pending, decide, history, events, metrics).
    pub extauth_admin: String,
    /// The MCP gateway (`/public/mcp`, `/privileged/mcp`).
    pub gateway: String,
    /// mock-db-mcp itself (`/state`, `/reset`), not through the gateway.
    pub mock_db: String,
    /// The scripted model's control endpoint, when the agent uses it.
    #[serde(default)]
    pub scripted_model: Option<String>,
    /// The chat user's page (lab-chat), in the local lab (the kind lab has kagent's UI).
    #[serde(default)]
    pub chat: Option<String>,
    /// The reviewers' OpenID Provider (the local lab's own), its issuer URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_issuer: Option<String>,
}

/// One process the local lab started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub name: String,
    pub pid: u32,
    /// The argv it was started with; `down` only signals a pid that still runs exactly this.
    pub argv: Vec<String>,
    pub log: PathBuf,
    /// How it was started, so that it alone can be started again the same way (same store,
    /// same credentials): [`crate::local::restart`]. Absent in a state file from before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<crate::proc::SavedSpec>,
}

/// The state file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabState {
    pub target: Target,
    /// The model behind the agent.
    pub model: hitl_manifests::ModelChoice,
    /// Local lab: the gateway it runs (`None` in a state file from before the choice existed,
    /// which ran Envoy). The kind lab always runs agentgateway.
    #[serde(default)]
    pub gateway: Option<crate::gateway::Gateway>,
    pub urls: Urls,
    /// Local lab only: what to stop.
    #[serde(default)]
    pub processes: Vec<ProcessRecord>,
    /// Where the logs are.
    pub log_dir: PathBuf,
    /// hitl-extauth's admin token, for the harness's reviewer (scenes, `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// mock-db-mcp's reset token, for the scene runner's reset between scenes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_token: Option<String>,
    /// A reviewer's sign-in to hitl-ui (`user:password`), for the harness's checks that go
    /// through the UI: the local lab's first account; on kind, the generated one read from the
    /// cluster's Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer_login: Option<String>,
    /// The signing key of the lab's requester tokens (`cargo xtask chat` and the scene
    /// runner prove their user with it); absent for a lab whose gateway trusts another
    /// issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_key: Option<PathBuf>,
    /// The agents this lab runs (a state file from before the LangGraph agent: declarative).
    #[serde(default = "declarative_only")]
    pub agents: Vec<AgentKind>,
    /// How long the gate holds one call (`PARK_TIMEOUT_SEC`), when known: a scene whose
    /// reviewer waits for the hold to run out waits that long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub park_timeout_sec: Option<u64>,
    /// Local lab: the gate's store and replicas (`None` in a state file from before
    /// replicas: SQLite, one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreRecord>,
}

/// The local lab's gate store, as recorded: which store, how many replicas, and the
/// PostgreSQL server the lab runs for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRecord {
    pub topology: crate::local::Topology,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<crate::local::store::PostgresRecord>,
}

impl LabState {
    /// The gate's store and replicas (a state file from before them: SQLite, one).
    pub fn topology(&self) -> crate::local::Topology {
        self.store.as_ref().map(|s| s.topology).unwrap_or_default()
    }
}

fn declarative_only() -> Vec<AgentKind> {
    vec![AgentKind::Declarative]
}

impl Urls {
    /// The A2A endpoint of `agent`, if this lab has one.
    pub fn agent_url(&self, agent: AgentKind) -> Option<&str> {
        match agent {
            AgentKind::Declarative => Some(&self.agent),
            AgentKind::Langgraph => self.langgraph_agent.as_deref(),
        }
    }
}

impl LabState {
    /// A client for the lab's hitl-extauth admin API, with its token.
    pub fn gate_admin(&self) -> Result<AdminClient, AdminError> {
        AdminClient::new(&self.urls.extauth_admin, self.admin_token.clone())
    }

    /// A client for the lab's mock-db-mcp (directly, not through the gateway), with its
    /// reset token.
    pub fn db(&self) -> crate::clients::Db {
        crate::clients::Db::new(&self.urls.mock_db, self.reset_token.clone())
    }

    /// The A2A endpoint of `agent`, or an error that says how to start it.
    pub fn agent_url(&self, agent: AgentKind) -> anyhow::Result<&str> {
        match self.urls.agent_url(agent) {
            Some(url) if self.agents.contains(&agent) => Ok(url),
            _ => anyhow::bail!(
                "the lab that is up does not run the {agent} agent (it runs: {}); bring it up \
                 with `cargo xtask up --local --agent {agent}` (or `--agent all`)",
                self.agents
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The default lab directory: `target/lab`.
pub fn default_dir() -> PathBuf {
    target_dir().join("lab")
}

/// `<dir>/state.json`.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

impl LabState {
    /// The issuer of this lab's requester tokens, if it has one.
    pub fn requester_issuer(&self) -> anyhow::Result<Option<crate::requester::Issuer>> {
        self.requester_key
            .as_deref()
            .map(crate::requester::Issuer::load_file)
            .transpose()
    }

    /// The lab recorded in `dir`, if any.
    pub fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = state_path(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).with_context(|| {
                format!(
                    "reading the lab state {} (delete it if the lab is gone)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The lab recorded in `dir`, or an error that says how to bring one up.
    pub fn require(dir: &Path) -> anyhow::Result<Self> {
        Self::load(dir)?.ok_or_else(|| {
            anyhow::anyhow!(
                "no lab is up (no {}): start one with `cargo xtask up --local` (or `cargo \
                 xtask up` for kind)",
                state_path(dir).display()
            )
        })
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        // It holds the admin token: owner-only, as is the directory around it.
        hitl_wire::private::dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = state_path(dir);
        hitl_wire::private::write(&path, &serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn remove(dir: &Path) -> anyhow::Result<()> {
        match std::fs::remove_file(state_path(dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
