//! The local lab: every part real but Kubernetes — our three services, the real gateway
//! (agentgateway or Envoy), the real kagent engine, and the scripted model — as processes on
//! 127.0.0.1, configured from
//! `manifests/`, tracked by pid in the lab state file so `down` stops exactly them.

pub mod generate;
pub mod ports;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;

use crate::{
    agents::AgentKind,
    components::{chat, extauth, kagent, langgraph, mock_db, scripted_model, ui},
    credentials::Credentials,
    gateway::Gateway,
    lab::{LabState, ProcessRecord, Target, Urls},
    manifests::{LabManifests, ModelChoice},
    proc::{self, Spec},
    pyenv,
};
pub use ports::Ports;

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
    /// `PARK_TIMEOUT_SEC` for the gate (default: what the manifests give hitl-extauth).
    pub park_timeout: Option<Duration>,
    /// hitl-ui's built-in sign-in, `user:password[,…]`.
    pub reviewer_credentials: String,
    /// lab-chat's sign-in, `user:password[,…]`.
    pub chat_credentials: String,
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
            park_timeout: None,
            reviewer_credentials: std::env::var("HITL_LAB_REVIEWER_CREDENTIALS")
                .unwrap_or_else(|_| DEFAULT_REVIEWER_CREDENTIALS.to_owned()),
            chat_credentials: std::env::var("HITL_LAB_CHAT_CREDENTIALS")
                .unwrap_or_else(|_| DEFAULT_CHAT_CREDENTIALS.to_owned()),
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
    }
}

/// Bring the local lab up (or confirm it is up): idempotent.
pub async fn up(config: &LocalConfig) -> anyhow::Result<LabState> {
    if let Some(state) = LabState::load(&config.dir)? {
        match state.target {
            Target::Kind => anyhow::bail!(
                "a kind lab is recorded in {}; take it down first (`cargo xtask down`)",
                crate::lab::state_path(&config.dir).display()
            ),
            Target::Local if state.model != config.model.as_str() => {
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
                    return Ok(state);
                }
                config.note("==> the local lab is partly down; restarting it");
                down(&config.dir, config.progress)?;
            }
        }
    }

    let started = Instant::now();
    wait_ports_free(config).await?;
    let venv = pyenv::ensure()?;
    let manifests = LabManifests::load().context("loading manifests/")?;
    let park_timeout = config
        .park_timeout
        .or_else(|| manifests.park_timeout())
        .unwrap_or(Duration::from_secs(600));
    let ports = &config.ports;
    // The lab issues its own requester tokens: one key pair, kept across restarts.
    let issuer = crate::requester::Issuer::load_or_create(&config.dir)?;
    // The public half as a file, for gateways that read their JWKS from one (agentgateway).
    std::fs::write(
        config.dir.join(crate::requester::JWKS_FILE),
        issuer.jwks().to_string(),
    )?;
    let mut plan = generate::gateway_plan(&manifests, ports, park_timeout)?;
    plan.requester_jwt = generate::requester_jwt(&manifests, &issuer)?;
    let api_key = config
        .model
        .api_key_env()
        .and_then(|v| std::env::var(v).ok());
    let agent = generate::agent_plan(&manifests, ports, config.model, api_key)?;

    let log_dir = config.log_dir();
    let conf_dir = config.dir.join("config");
    std::fs::create_dir_all(&conf_dir)?;
    let agent_config = conf_dir.join("agent-config.json");
    let agent_card = conf_dir.join("agent-card.json");
    std::fs::write(&agent_config, serde_json::to_vec_pretty(&agent.config)?)?;
    std::fs::write(&agent_card, serde_json::to_vec_pretty(&agent.card)?)?;

    let urls = urls(ports, config.model);
    // Fresh approval keys and admin token for every start.
    let credentials = Credentials::generate(&config.dir)?;
    let mut specs: Vec<Spec> = vec![
        mock_db::spec(
            &mock_db::Options::new(ports.mock_db)
                .enable_reset(true)
                .verifying_key(&credentials.keys.verifying)
                .query_budgets("1s", "64MiB"),
            &log_dir,
        )?,
        extauth::spec(
            &{
                let mut gate =
                    extauth::Options::new(ports.extauth_grpc, ports.extauth_http, &config.dir)
                        .park_timeout(park_timeout)
                        .credentials(&credentials);
                gate.deny_response = manifests.deny_response().map(str::to_owned);
                gate
            },
            &log_dir,
        )?,
        config.gateway.spec(&plan, &log_dir)?,
        ui::spec(
            &ui::Options::new(ports.ui, &urls.extauth_admin)
                .mock_db_state_url(format!(
                    "{}{}",
                    urls.mock_db,
                    hitl_wire::mockdb::paths::STATE
                ))
                .reviewer_credentials(&config.reviewer_credentials)
                .extauth_admin_token(&credentials.admin_token),
            &log_dir,
        )?,
    ];
    if config.model == ModelChoice::Scripted {
        specs.push(scripted_model::spec(ports.model, &log_dir)?);
    }
    if config.agents.contains(&AgentKind::Declarative) {
        specs.push(kagent::spec(
            &venv,
            &kagent::Options {
                port: ports.agent,
                config: agent_config,
                card: agent_card,
                app_name: agent.app_name.clone(),
                env: agent.env.clone(),
            },
            &log_dir,
        ));
    }
    if config.agents.contains(&AgentKind::Langgraph) {
        let env = generate::langgraph_env(
            &agent,
            AgentKind::Langgraph.resource_name(),
            &manifests.agent.namespace,
        );
        specs.push(langgraph::spec(
            &venv,
            ports.langgraph_agent,
            &env,
            &log_dir,
        ));
    }
    // The chat user's page, offering every agent that runs (the declarative one first).
    let mut chat_page = chat::Options::new(ports.chat, &config.chat_credentials);
    for kind in AgentKind::ALL
        .into_iter()
        .filter(|k| config.agents.contains(k))
    {
        if let Some(url) = urls.agent_url(kind) {
            chat_page = chat_page.agent(kind.resource_name(), url);
        }
    }
    chat_page.scripted_model_url = urls.scripted_model.clone();
    chat_page.requester_key_file = Some(config.dir.join(crate::requester::KEY_FILE));
    specs.push(chat::spec(&chat_page, &log_dir)?);

    config.note(format!(
        "==> starting {} processes (logs in {})",
        specs.len(),
        log_dir.display()
    ));
    let mut state = LabState {
        target: Target::Local,
        model: config.model.as_str().to_owned(),
        gateway: Some(config.gateway),
        urls,
        processes: Vec::new(),
        log_dir: log_dir.clone(),
        admin_token: Some(credentials.admin_token.clone()),
        requester_key: Some(config.dir.join(crate::requester::KEY_FILE)),
        agents: config.agents.clone(),
    };
    for spec in &specs {
        let (pid, argv) = match proc::spawn_detached(spec) {
            Ok(started) => started,
            Err(e) => {
                state.save(&config.dir)?;
                let _ = down(&config.dir, false);
                return Err(e);
            }
        };
        state.processes.push(ProcessRecord {
            name: spec.name.clone(),
            pid,
            argv,
            log: spec.log.clone(),
        });
    }
    // Recorded before waiting, so a failed start can still be taken down by pid.
    state.save(&config.dir)?;

    let waits = specs.iter().zip(&state.processes).map(|(spec, record)| {
        let pid = record.pid;
        async move {
            let t = Instant::now();
            proc::wait_ready(spec, || {
                proc::live_cmdline(pid)
                    .is_none()
                    .then(|| "exited".to_owned())
            })
            .await
            .map(|()| (spec.name.clone(), t.elapsed()))
        }
    });
    let results = futures::future::join_all(waits).await;
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok((name, took)) => {
                config.note(format!("  ✓ {name} ready ({:.1} s)", took.as_secs_f64()))
            }
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    if !failures.is_empty() {
        let _ = down(&config.dir, false);
        anyhow::bail!(
            "the local lab did not come up; stopped what had started.\n{}",
            failures.join("\n\n")
        );
    }
    if let Some(url) = &state.urls.scripted_model {
        // Free-form chat works from the first prompt; scenes load their own scripts.
        scripted_model::Control::new(url)
            .load(&crate::scene::parse::chat_script()?)
            .await?;
    }
    config.note(format!(
        "==> the local lab is up ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    Ok(state)
}

/// What `up` prints at the end: where everything is.
pub fn describe(
    state: &LabState,
    reviewer_credentials: Option<&str>,
    chat_credentials: Option<&str>,
) -> String {
    let u = &state.urls;
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<24} {v}\n"));
    let sign_in = |credentials: Option<&str>| {
        credentials
            .and_then(|c| c.split(',').next())
            .map(|c| format!("  (sign in as {})", c.replacen(':', " / ", 1)))
            .unwrap_or_default()
    };
    if let Some(chat) = &u.chat {
        line(
            "chat page (chat user)",
            format!("{chat}{}", sign_in(chat_credentials)),
        );
    }
    line(
        "reviewer UI (reviewer)",
        format!("{}{}", u.reviewer_ui, sign_in(reviewer_credentials)),
    );
    for agent in &state.agents {
        if let Some(url) = u.agent_url(*agent) {
            line(&format!("{agent} agent (A2A)"), url.to_owned());
            line(
                &format!("{agent} agent card"),
                format!("{url}.well-known/agent-card.json"),
            );
        }
    }
    line(
        "ext-auth admin",
        format!(
            "{}/pending  (Authorization: Bearer <admin_token in target/lab/state.json>)",
            u.extauth_admin
        ),
    );
    line(
        "gateway (MCP)",
        format!("{0}/public/mcp  {0}/privileged/mcp", u.gateway),
    );
    line("database state", format!("{}/state", u.mock_db));
    if let Some(model) = &u.scripted_model {
        line("scripted model", format!("{model}/v1"));
    }
    line("model", state.model.clone());
    if let Some(gateway) = state.gateway {
        line("gateway", gateway.to_string());
    }
    line(
        "logs",
        format!(
            "{}  (`cargo xtask logs <component>`)",
            state.log_dir.display()
        ),
    );
    out
}

fn all_alive(state: &LabState) -> bool {
    !state.processes.is_empty()
        && state
            .processes
            .iter()
            .all(|p| proc::live_cmdline(p.pid).as_deref() == Some(&p.argv[..]))
}

/// How long `up` waits for a port that is still held (by a lab process that is exiting, or
/// by a crashed one's leftover socket) before it gives up.
const PORT_WAIT: Duration = Duration::from_secs(20);

/// Wait, bounded by [`PORT_WAIT`], until every lab port can be bound; say which ones it waits
/// for. After a crash the previous lab's processes may still be closing their listeners.
async fn wait_ports_free(config: &LocalConfig) -> anyhow::Result<()> {
    let taken = |ports: &Ports| -> Vec<(&'static str, &'static str, u16)> {
        ports
            .named()
            .into_iter()
            .filter(|(_, _, port)| std::net::TcpListener::bind(("127.0.0.1", *port)).is_err())
            .collect()
    };
    let deadline = Instant::now() + PORT_WAIT;
    let mut announced = false;
    loop {
        let busy = taken(&config.ports);
        if busy.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let lines: Vec<String> = busy
                .iter()
                .map(|(name, var, port)| {
                    format!("  port {port} ({name}) is taken: free it or set {var}")
                })
                .collect();
            anyhow::bail!(
                "cannot start the local lab (waited {} s for its ports):\n{}",
                PORT_WAIT.as_secs(),
                lines.join("\n")
            );
        }
        if !announced {
            let names: Vec<String> = busy
                .iter()
                .map(|(name, _, port)| format!("{port} ({name})"))
                .collect();
            config.note(format!(
                "==> waiting up to {} s for ports still in use: {}",
                PORT_WAIT.as_secs(),
                names.join(", ")
            ));
            announced = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stop every process the local lab in `dir` started (by pid, only if it still runs the
/// argv we recorded), and forget the lab. Nothing recorded: nothing to do.
pub fn down(dir: &Path, progress: bool) -> anyhow::Result<()> {
    let Some(state) = LabState::load(dir)? else {
        if progress {
            eprintln!("==> no local lab is up");
        }
        return Ok(());
    };
    anyhow::ensure!(
        state.target == Target::Local,
        "the lab in {} is a kind lab",
        dir.display()
    );
    let mut errors = Vec::new();
    for process in state.processes.iter().rev() {
        match proc::stop_pid(process.pid, &process.argv, Duration::from_secs(5)) {
            Ok(proc::Stopped::Stopped) if progress => {
                eprintln!("  stopped {} (pid {})", process.name, process.pid)
            }
            Ok(_) => {}
            Err(e) => errors.push(format!("{}: {e:#}", process.name)),
        }
    }
    LabState::remove(dir)?;
    if progress {
        eprintln!("==> the local lab is down");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("some processes did not stop:\n{}", errors.join("\n"))
    }
}

/// One line per process (running or not), the URLs, and what waits for a reviewer.
pub async fn status(state: &LabState) -> String {
    let mut out = String::from("processes:\n");
    for p in &state.processes {
        let alive = proc::live_cmdline(p.pid).as_deref() == Some(&p.argv[..]);
        out.push_str(&format!(
            "  {:<16} pid {:<8} {}\n",
            p.name,
            p.pid,
            if alive { "running" } else { "NOT RUNNING" }
        ));
    }
    out.push_str("endpoints:\n");
    out.push_str(&describe(state, None, None));
    let pending = match state.gate_admin() {
        Ok(admin) => admin.pending().await,
        Err(e) => Err(e),
    };
    match pending {
        Ok(list) => {
            out.push_str(&format!("waiting for a reviewer: {}\n", list.pending.len()));
            for call in list.pending {
                out.push_str(&format!(
                    "  {} {} {} (from {})\n",
                    call.id,
                    call.tool_name,
                    call.tool_args,
                    call.requester.as_deref().unwrap_or("?")
                ));
            }
        }
        Err(e) => out.push_str(&format!("waiting for a reviewer: unknown ({e:#})\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_names_the_two_roles_pages_first_with_their_sign_ins() {
        let ports = Ports::from_env().expect("default ports");
        let state = LabState {
            target: Target::Local,
            model: "scripted".into(),
            gateway: Some(Gateway::Envoy),
            urls: urls(&ports, ModelChoice::Scripted),
            processes: Vec::new(),
            log_dir: PathBuf::from("logs"),
            admin_token: None,
            requester_key: None,
            agents: AgentKind::ALL.to_vec(),
        };
        let text = describe(&state, Some("reviewer:pw,bob:x"), Some("alice:secret"));
        let lines: Vec<&str> = text.lines().collect();
        let chat = format!("http://127.0.0.1:{}", ports.chat);
        let ui = format!("http://127.0.0.1:{}", ports.ui);
        assert!(
            lines[0].contains("chat page (chat user)")
                && lines[0].contains(&chat)
                && lines[0].ends_with("(sign in as alice / secret)"),
            "{text}"
        );
        assert!(
            lines[1].contains("reviewer UI (reviewer)")
                && lines[1].contains(&ui)
                && lines[1].ends_with("(sign in as reviewer / pw)"),
            "{text}"
        );
        assert!(text.contains("langgraph agent (A2A)"), "{text}");
    }
}
