//! The command line of `cargo xtask`.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run and check the hitl-lab: two-tier human-in-the-loop gating of an agent's tool calls.
///
/// New here? `cargo xtask conformance` brings the Docker-free local lab up, replays every
/// scripted scene and reports; `cargo xtask test` runs the test suite (what CI runs).
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version)]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the services, then run every test (what `.ci/run` runs).
    Test(TestArgs),
    /// Bring the lab up: on kind by default (needs Docker, kind, helm, kubectl), or with
    /// `--local` as local processes (no Docker, no Kubernetes). Idempotent.
    Up(UpArgs),
    /// Stop what `up` started (the local processes by pid, or the kind cluster).
    Down,
    /// Show what is running, where, and what is waiting for a decision.
    Status,
    /// Print a component's log (local lab): mock-db-mcp, hitl-extauth, hitl-ui, lab-chat,
    /// agentgateway or envoy (whichever gateway runs; envoy logs one access line per
    /// request), kagent, kagent-langgraph, scripted-model. Without a name, list the lab's log
    /// files.
    Logs(LogsArgs),
    /// Chat with the agent in the terminal over A2A; tier-1 approvals show as cards.
    Chat(ChatArgs),
    /// Replay one scripted scene (or `all`) against the lab that is up, and assert every gate.
    Scene(SceneArgs),
    /// The main job: bring the lab up if needed, replay every scene with fresh state,
    /// report (transcripts, summary, JUnit + JSON under target/), tear down what it started.
    Conformance(ConformanceArgs),
    /// Check ANY ext_authz gate (`envoy.service.auth.v3.Authorization`): start a real gateway
    /// in front of mock-db-mcp asking the gate at --ext-authz, run the lifecycle checks and
    /// the attack catalogue, report (target/gate-check/). See docs/gate-contract.md.
    GateCheck(GateCheckArgs),
    /// Forward the kind lab's UIs to localhost (kagent UI :8080, hitl-ui :8090) until Ctrl-C.
    PortForward,
    /// Measure what the gates cost and how far they scale (prints a table, writes JSON).
    Bench(BenchArgs),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Test(_) => "test",
            Command::Up(_) => "up",
            Command::Down => "down",
            Command::Status => "status",
            Command::Logs(_) => "logs",
            Command::Chat(_) => "chat",
            Command::Scene(_) => "scene",
            Command::Conformance(_) => "conformance",
            Command::GateCheck(_) => "gate-check",
            Command::PortForward => "port-forward",
            Command::Bench(_) => "bench",
        }
    }
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Extra arguments passed to `cargo test` (after `--` for the test binaries' own flags).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cargo_args: Vec<String>,
}

/// Which model the agent talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ModelChoice {
    /// Our deterministic scripted model: no API key, scenes replay exactly.
    #[default]
    Scripted,
    /// Anthropic's API (needs ANTHROPIC_API_KEY).
    Anthropic,
    /// OpenAI's API (needs OPENAI_API_KEY).
    Openai,
}

impl From<ModelChoice> for hitl_manifests::ModelChoice {
    fn from(choice: ModelChoice) -> Self {
        match choice {
            ModelChoice::Scripted => Self::Scripted,
            ModelChoice::Anthropic => Self::Anthropic,
            ModelChoice::Openai => Self::Openai,
        }
    }
}

/// Which agent(s): kagent's declarative `dba-assistant`, the BYO LangGraph
/// `dba-assistant-langgraph`, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum AgentChoice {
    /// kagent's declarative agent (kagent-adk, `requireApproval`).
    Declarative,
    /// The BYO LangGraph agent (kagent-langgraph, `interrupt()`).
    Langgraph,
    /// Both.
    #[default]
    All,
}

impl From<AgentChoice> for hitl_lab::agents::AgentSelection {
    fn from(choice: AgentChoice) -> Self {
        use hitl_lab::agents::{AgentKind, AgentSelection};
        match choice {
            AgentChoice::Declarative => AgentSelection::One(AgentKind::Declarative),
            AgentChoice::Langgraph => AgentSelection::One(AgentKind::Langgraph),
            AgentChoice::All => AgentSelection::All,
        }
    }
}

/// Where the lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Target {
    /// Local processes on 127.0.0.1 (no Docker, no Kubernetes).
    #[default]
    Local,
    /// A kind cluster.
    Kind,
}

impl From<Target> for hitl_lab::lab::Target {
    fn from(target: Target) -> Self {
        match target {
            Target::Local => Self::Local,
            Target::Kind => Self::Kind,
        }
    }
}

/// Which gateway the local lab runs in front of mock-db-mcp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GatewayChoice {
    /// agentgateway, the kind lab's gateway: `AGENTGATEWAY_BIN`, `agentgateway` on PATH, or
    /// the pinned release downloaded into target/ (default when a binary is at hand).
    Agentgateway,
    /// Envoy from the project venv (default when no agentgateway binary is at hand).
    Envoy,
}

impl From<GatewayChoice> for hitl_lab::gateway::Gateway {
    fn from(choice: GatewayChoice) -> Self {
        match choice {
            GatewayChoice::Agentgateway => Self::Agentgateway,
            GatewayChoice::Envoy => Self::Envoy,
        }
    }
}

/// `--gateway`, or the default (agentgateway if a binary is at hand, else Envoy, saying so).
pub fn gateway_or_default(flag: Option<GatewayChoice>) -> hitl_lab::gateway::Gateway {
    match flag {
        Some(choice) => choice.into(),
        None => {
            let (gateway, note) = hitl_lab::gateway::Gateway::default_choice();
            if let Some(note) = note {
                eprintln!("{note}");
            }
            gateway
        }
    }
}

/// Where the gate keeps its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreFlag {
    /// One SQLite file: one gate replica (the local lab's default).
    Sqlite,
    /// PostgreSQL, shared by the gate's replicas (the kind lab's default; implied by
    /// `--replicas` above 1).
    Postgres,
}

impl From<StoreFlag> for hitl_manifests::StoreChoice {
    fn from(flag: StoreFlag) -> Self {
        match flag {
            StoreFlag::Sqlite => Self::Sqlite,
            StoreFlag::Postgres => Self::Postgres,
        }
    }
}

/// `--store` and `--replicas` for the local lab.
pub fn topology(
    store: Option<StoreFlag>,
    replicas: Option<u16>,
) -> anyhow::Result<hitl_lab::local::Topology> {
    hitl_lab::local::Topology::from_flags(store.map(Into::into), replicas)
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Run the lab as local processes instead of on kind.
    #[arg(long)]
    pub local: bool,
    /// Print every step `up` would take, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The model behind the agent.
    #[arg(long, value_enum, default_value_t)]
    pub model: ModelChoice,
    /// Local lab: the gateway (default agentgateway when its binary is at hand, else Envoy).
    #[arg(long, value_enum)]
    pub gateway: Option<GatewayChoice>,
    /// Which agents to start (local lab; the kind lab deploys both).
    #[arg(long, value_enum, default_value_t)]
    pub agent: AgentChoice,
    /// Local lab: how long the gate holds one call, in seconds (`PARK_TIMEOUT_SEC`; default
    /// the manifests' 600). Scene 7 waits for the hold to run out: try 20.
    #[arg(long, value_name = "SECS")]
    pub park_timeout: Option<u64>,
    /// The gate's store: local lab sqlite (default) or postgres (a PostgreSQL server the lab
    /// starts); kind postgres (default: two replicas) or sqlite (one, its file on a PVC).
    #[arg(long, value_enum)]
    pub store: Option<StoreFlag>,
    /// Local lab: how many hitl-extauth replicas (1-9, default 1); more than one implies
    /// `--store postgres`, and both gateways balance their Checks over them.
    #[arg(long, value_name = "N")]
    pub replicas: Option<u16>,
    /// Kind lab: build our images from this checkout (`hitl-lab/<service>:dev`) and `kind
    /// load` them, instead of pulling the published images of this version.
    #[arg(long, conflicts_with = "image_prefix")]
    pub build: bool,
    /// Kind lab: pull the published images from this registry path instead of
    /// ghcr.io/hitl-lab/hitl-lab (a fork's `ghcr.io/<owner>/<repo>`).
    #[arg(long, value_name = "REGISTRY/OWNER/REPO")]
    pub image_prefix: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Component whose log to print: mock-db-mcp, hitl-extauth, hitl-ui, lab-chat,
    /// agentgateway, envoy, kagent, kagent-langgraph, scripted-model.
    pub component: Option<String>,
    /// Keep printing as the log grows.
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The chat user's identity (sent as x-user-id).
    #[arg(long, default_value = "alice")]
    pub user: String,
    /// Which agent to chat with.
    #[arg(long, value_enum, default_value_t = AgentChoice::Declarative)]
    pub agent: AgentChoice,
}

#[derive(Debug, Args)]
pub struct SceneArgs {
    /// Scene number (as in `scenarios/`), or `all`.
    pub scene: String,
    /// Local lab: run it with this gateway (restarting the lab if it runs the other one).
    #[arg(long, value_enum)]
    pub gateway: Option<GatewayChoice>,
    /// Which agents to replay it against (those the lab runs).
    #[arg(long, value_enum, default_value_t)]
    pub agent: AgentChoice,
}

#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// Where to run the lab.
    #[arg(long, value_enum, default_value_t)]
    pub target: Target,
    /// The model behind the agent; with a real model assertions stay on gates and DB state.
    #[arg(long, value_enum, default_value_t)]
    pub model: ModelChoice,
    /// Leave the lab running afterwards (by default conformance stops what it started).
    #[arg(long)]
    pub keep_up: bool,
    /// Local lab: the gateway (default agentgateway when its binary is at hand, else Envoy).
    #[arg(long, value_enum)]
    pub gateway: Option<GatewayChoice>,
    /// Which agents every scene runs against.
    #[arg(long, value_enum, default_value_t)]
    pub agent: AgentChoice,
    /// Local lab: the gate's store (default sqlite; postgres with `--replicas` above 1).
    #[arg(long, value_enum)]
    pub store: Option<StoreFlag>,
    /// Local lab: how many hitl-extauth replicas (default 1): every scene and attack runs
    /// on that topology.
    #[arg(long, value_name = "N")]
    pub replicas: Option<u16>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Smaller sizes (1 000 parked calls instead of 10 000): under 3 minutes.
    #[arg(long)]
    pub quick: bool,
    /// Measure only this gateway (by default: both, agentgateway if a binary is at hand).
    #[arg(long, value_enum)]
    pub gateway: Option<GatewayChoice>,
    /// Run only this step (`replicas`: step 6, two gate replicas on one PostgreSQL, with no
    /// gateway); its JSON goes to target/bench/replicas-<unix-time>.json.
    #[arg(long, value_enum)]
    pub step: Option<hitl_bench::cli::Step>,
}

#[derive(Debug, Args)]
pub struct GateCheckArgs {
    /// The gate's Check port (h2c gRPC), e.g. 127.0.0.1:9001.
    #[arg(long, value_name = "HOST:PORT")]
    pub ext_authz: String,
    /// hitl-extauth's admin API: decisions go through it, and its /pending and /history
    /// join the checks.
    #[arg(long, value_name = "URL")]
    pub admin: Option<String>,
    /// A file holding the admin API's bearer token (else $HITL_EXTAUTH_ADMIN_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<std::path::PathBuf>,
    /// For gates that decide elsewhere: a shell command, with {id} (the parked call's id from
    /// --admin, else the call's x-hitl-check-id), {approve} (true|false), {reason} and
    /// {reviewer} filled in; exit 0 = decided.
    #[arg(long, value_name = "TEMPLATE")]
    pub decide_cmd: Option<String>,
    /// The gateway in front of the gate (default agentgateway when its binary is at hand).
    #[arg(long, value_enum)]
    pub gateway: Option<GatewayChoice>,
    /// The gate's approval-token public key (hex Ed25519): mock-db-mcp then verifies
    /// approvals, and the token checks run.
    #[arg(long, value_name = "FILE")]
    pub approval_key: Option<std::path::PathBuf>,
    /// The requester-token signing key (PKCS#8 DER, e.g. target/lab/requester-signing-key.p8)
    /// whose tokens the gate trusts; the gateway is configured with its public half.
    #[arg(long, value_name = "FILE")]
    pub requester_key: Option<std::path::PathBuf>,
    /// The gate's park timeout in seconds: enables the expiry check.
    #[arg(long, value_name = "SECS")]
    pub park_timeout: Option<u64>,
}
