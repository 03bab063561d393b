//! The local lab: every part real but Kubernetes — our three services, the real gateway
//! (agentgateway or Envoy), the real kagent engine, and the scripted model — as processes on
//! 127.0.0.1, configured from
//! `manifests/`, tracked by pid in the lab state file so `down` stops exactly them.

pub mod generate;
pub mod ports;
mod report;
mod restart;
mod reuse;
pub mod runs;
mod specs;
mod start;
mod stop;
pub mod store;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use hitl_wire::model::Script;

use crate::{
    agents::AgentKind,
    components::scripted_model,
    credentials::Credentials,
    gateway::Gateway,
    lab::{LabState, Urls},
    pyenv,
};
use hitl_manifests::{LabManifests, ModelChoice};
pub use ports::Ports;
pub use report::{describe, status};
pub use restart::{restart, restart_holding_gate, revive};
pub use stop::down;
pub use store::{StoreChoice, Topology};

/// Default sign-in for the local reviewer UI (`user:password`); override with
/// `HITL_LAB_REVIEWER_CREDENTIALS`.
pub const DEFAULT_REVIEWER_CREDENTIALS: &str = "reviewer:reviewer";

/// Default sign-in for the local chat page (`user:password`); override with
/// `HITL_LAB_CHAT_CREDENTIALS`.
pub const DEFAULT_CHAT_CREDENTIALS: &str = "alice:alice";

/// How to bring the local lab up.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// State file, logs, generated configs, the gate's audit database.
    pub dir: PathBuf,
    pub ports: Ports,
    pub model: ModelChoice,
    /// The gateway in front of mock-db-mcp.
    pub gateway: Gateway,
    /// The agents to start (`--agent`; both by default).
    pub agents: Vec<AgentKind>,
    /// The gate's store and how many replicas share it (`--store`, `--replicas`).
    pub topology: Topology,
    /// `PARK_TIMEOUT_SEC` for the gate (default: what the manifests give hitl-extauth).
    pub park_timeout: Option<Duration>,
    /// hitl-ui's built-in sign-in, `user:password[,…]`.
    pub reviewer_credentials: String,
    /// lab-chat's sign-in, `user:password[,…]`.
    pub chat_credentials: String,
    /// The script the scripted model plays for free-form chat until a scene loads its own
    /// (`scenarios/chat/`, parsed by the caller: hitl-scenes' `scene::parse::chat_script`);
    /// `None` leaves the model without one.
    pub chat_script: Option<Script>,
    /// Print progress to stderr.
    pub progress: bool,
}

impl LocalConfig {
    /// The defaults for `cargo xtask up --local`: `target/lab`, documented ports (with env
    /// overrides), the scripted model, `gateway`.
    pub fn from_env(model: ModelChoice, gateway: Gateway) -> anyhow::Result<Self> {
        Ok(Self {
            dir: crate::lab::default_dir(),
            ports: Ports::from_env()?,
            model,
            gateway,
            agents: AgentKind::ALL.to_vec(),
            topology: Topology::default(),
            park_timeout: None,
            reviewer_credentials: std::env::var("HITL_LAB_REVIEWER_CREDENTIALS")
                .unwrap_or_else(|_| DEFAULT_REVIEWER_CREDENTIALS.to_owned()),
            chat_credentials: std::env::var("HITL_LAB_CHAT_CREDENTIALS")
                .unwrap_or_else(|_| DEFAULT_CHAT_CREDENTIALS.to_owned()),
            chat_script: None,
            progress: true,
        })
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    fn note(&self, text: impl AsRef<str>) {
        if self.progress {
            eprintln!("{}", text.as_ref());
        }
    }
}

/// The URLs of a local lab on `ports`.
pub fn urls(ports: &Ports, model: ModelChoice) -> Urls {
    let local = |port: u16| format!("http://127.0.0.1:{port}");
    Urls {
        agent: format!("{}/", local(ports.agent)),
        agent_card: format!("{}/.well-known/agent-card.json", local(ports.agent)),
        langgraph_agent: Some(format!("{}/", local(ports.langgraph_agent))),
        reviewer_ui: local(ports.ui),
        extauth_admin: local(ports.extauth_http),
        gateway: local(ports.gateway),
        mock_db: local(ports.mock_db),
        scripted_model: (model == ModelChoice::Scripted).then(|| local(ports.model)),
        chat: Some(local(ports.chat)),
        oidc_issuer: Some(local(ports.oidc)),
    }
}

/// Bring the local lab up (or confirm it is up): idempotent.
pub async fn up(config: &LocalConfig) -> anyhow::Result<LabState> {
    let was_down = LabState::load(&config.dir)?.is_none();
    if let Some(state) = reuse::already_up(config).await? {
        return Ok(state);
    }
    let kept = match was_down {
        true => runs::archive(&config.dir, &runs::stamp(time::OffsetDateTime::now_utc()))?,
        false => None,
    };
    if let Some(kept) = &kept {
        config.note(format!(
            "==> a new lab run: the last run's history and logs are kept in {}",
            kept.display()
        ));
    }
    if was_down && let Some(what) = store::archive(&config.dir, kept.as_deref())? {
        config.note(format!("==> {what}"));
    }
    let started = Instant::now();
    start::wait_ports_free(config).await?;
    let venv = pyenv::ensure()?;
    let manifests = LabManifests::load().context("loading manifests/")?;
    let lab = specs::translate(config, &manifests)?;
    let urls = urls(&config.ports, config.model);
    // Fresh approval keys and admin token for every start.
    let credentials = Credentials::generate(&config.dir)?;
    let server = match config.topology.store {
        StoreChoice::Postgres => Some(store::prepare(config)?),
        StoreChoice::Sqlite => None,
    };
    let record = server.as_ref().map(|s| &s.record);
    let (op_spec, op) = specs::identity_provider(config)?;
    let mut specs = vec![op_spec];
    specs.extend(specs::services(
        config,
        &manifests,
        &lab,
        &urls,
        &credentials,
        record,
        &op,
    )?);
    specs.extend(specs::agents(config, &manifests, &lab, &urls, &venv)?);
    let started_with = start::Started {
        urls,
        credentials: &credentials,
        park_timeout: lab.park_timeout,
        server: server.as_ref(),
    };
    let state = start::start(config, &specs, started_with).await?;
    if let (Some(url), Some(script)) = (&state.urls.scripted_model, &config.chat_script) {
        // Free-form chat works from the first prompt; scenes load their own scripts.
        scripted_model::Control::new(url).load(script).await?;
    }
    config.note(format!(
        "==> the local lab is up ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    Ok(state)
}
