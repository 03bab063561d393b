//! The kind lab, reachable from this machine: background `kubectl port-forward`s for every
//! client the harness has (agent A2A, gateway, hitl-extauth's admin API, mock-db-mcp, hitl-ui,
//! the scripted model), recorded with their URLs in the lab state file (`target/lab`), so that
//! `scene`, `conformance`, `chat` and `status` work on kind as on the local lab, and `down`
//! stops them by pid.

use std::{fmt, time::Duration};

use anyhow::Context as _;

use hitl_lab::{
    agents::AgentKind,
    lab::{self, LabState, ProcessRecord, Target, Urls},
    proc,
};
use hitl_manifests::ModelChoice;

use super::wait;

/// Which client of the lab a forward serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// kagent's controller: the declarative agent's A2A endpoint and card.
    Agent,
    /// kagent's controller: the BYO LangGraph agent's A2A endpoint and card.
    LanggraphAgent,
    /// The Gateway's Service: MCP through the gates.
    Gateway,
    /// hitl-extauth's admin API (pending, decide, history, events).
    ExtauthAdmin,
    /// mock-db-mcp itself (`/state`, `/reset`).
    MockDb,
    /// hitl-ui.
    ReviewerUi,
    /// The scripted model's control endpoint.
    ScriptedModel,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::LanggraphAgent => "langgraph-agent",
            Role::Gateway => "gateway",
            Role::ExtauthAdmin => "extauth-admin",
            Role::MockDb => "mock-db",
            Role::ReviewerUi => "reviewer-ui",
            Role::ScriptedModel => "scripted-model",
        }
    }
}

/// One background port-forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientForward {
    pub role: Role,
    pub namespace: String,
    pub service: String,
    pub port: u16,
    /// Path that answers 2xx once the forward (and what is behind it) works; `None`: a TCP
    /// connection is enough.
    pub health: Option<String>,
    /// Path appended to the forwarded base URL for the role's URL (the agent's A2A path).
    pub path: String,
    /// The local port it must be on (hitl-ui answers only the `Host`s in its `ALLOWED_HOSTS`);
    /// `None`: any free one.
    pub local_port: Option<u16>,
}

/// Credentials the harness's clients need, read from the cluster, kept in the lab state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// hitl-extauth's admin token.
    pub admin_token: Option<String>,
    /// mock-db-mcp's reset token.
    pub reset_token: Option<String>,
    /// A reviewer's sign-in to hitl-ui (`user:password`).
    pub reviewer_login: Option<String>,
}

/// The local port for `forward`: its own, when it needs one (and it is free), else a free one.
fn local_port(forward: &ClientForward) -> anyhow::Result<u16> {
    let Some(port) = forward.local_port else {
        return Ok(hitl_lab::net::free_port()?);
    };
    std::net::TcpListener::bind(("127.0.0.1", port)).with_context(|| {
        format!(
            "the {} forward needs 127.0.0.1:{port} (the only local port its ALLOWED_HOSTS \
             accepts), which is in use: stop what holds it (a `cargo xtask port-forward`?)",
            forward.role.as_str()
        )
    })?;
    Ok(port)
}

impl fmt::Display for ClientForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<14} svc/{}:{} in {}",
            self.role.as_str(),
            self.service,
            self.port,
            self.namespace
        )
    }
}

/// The kubectl argv for a forward to local `port`.
fn argv(context: &str, f: &ClientForward, port: u16) -> Vec<String> {
    [
        "port-forward",
        "--context",
        context,
        "--namespace",
        &f.namespace,
        "--address",
        "127.0.0.1",
        &format!("svc/{}", f.service),
        &format!("{port}:{}", f.port),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Stop the background forwards of a kind lab recorded in `dir` and forget it.
pub fn stop(dir: &std::path::Path) -> anyhow::Result<()> {
    let Some(state) = LabState::load(dir)? else {
        return Ok(());
    };
    if state.target != Target::Kind {
        return Ok(());
    }
    for p in &state.processes {
        proc::stop_pid(p.pid, &p.argv, Duration::from_secs(5))
            .with_context(|| format!("stopping {} (pid {})", p.name, p.pid))?;
    }
    LabState::remove(dir)
}

/// Start every forward, wait until each works, record the lab. Replaces the forwards of an
/// earlier `up`.
pub async fn start(
    context: &str,
    model: ModelChoice,
    forwards: &[ClientForward],
    access: Access,
) -> anyhow::Result<LabState> {
    let dir = lab::default_dir();
    stop(&dir)?;
    let log_dir = dir.join("kind");
    let mut urls = Urls {
        agent: String::new(),
        agent_card: String::new(),
        langgraph_agent: None,
        reviewer_ui: String::new(),
        extauth_admin: String::new(),
        gateway: String::new(),
        mock_db: String::new(),
        scripted_model: None,
        chat: None,
        oidc_issuer: None,
    };
    let mut state = LabState {
        target: Target::Kind,
        model,
        gateway: Some(hitl_lab::gateway::Gateway::Agentgateway),
        urls: urls.clone(),
        processes: Vec::new(),
        log_dir: log_dir.clone(),
        admin_token: access.admin_token,
        reset_token: access.reset_token,
        reviewer_login: access.reviewer_login,
        requester_key: Some(dir.join(hitl_lab::requester::KEY_FILE)),
        agents: Vec::new(),
        store: None,
        park_timeout_sec: hitl_manifests::LabManifests::load()
            .ok()
            .and_then(|m| m.park_timeout())
            .map(|t| t.as_secs()),
    };
    let mut bases = Vec::new();
    for forward in forwards {
        let port = local_port(forward)?;
        let name = format!("port-forward-{}", forward.role.as_str());
        let spec = argv(context, forward, port)
            .into_iter()
            .fold(proc::Spec::new(&name, "kubectl", &log_dir), proc::Spec::arg);
        let (pid, argv) = proc::spawn_detached(&spec)?;
        state.processes.push(ProcessRecord {
            name,
            pid,
            argv,
            log: spec.log.clone(),
            spec: Some((&spec).into()),
        });
        // Recorded at once, so that `down` can stop what did start if a later one fails.
        state.save(&dir)?;
        let base = format!("http://127.0.0.1:{port}");
        let url = format!("{base}{}", forward.path);
        record_url(&mut urls, &mut state.agents, forward.role, url);
        bases.push((forward, base, pid, spec.log));
    }
    wait_working(&bases).await?;
    state.urls = urls;
    state.save(&dir)?;
    Ok(state)
}

/// Where the forward for `role` lands in the lab's URLs (and which agents it brings).
fn record_url(urls: &mut Urls, agents: &mut Vec<AgentKind>, role: Role, url: String) {
    match role {
        Role::Agent => {
            urls.agent_card = format!("{url}.well-known/agent-card.json");
            urls.agent = url;
            agents.push(AgentKind::Declarative);
        }
        Role::LanggraphAgent => {
            urls.langgraph_agent = Some(url);
            agents.push(AgentKind::Langgraph);
        }
        Role::Gateway => urls.gateway = url,
        Role::ExtauthAdmin => urls.extauth_admin = url,
        Role::MockDb => urls.mock_db = url,
        Role::ReviewerUi => urls.reviewer_ui = url,
        Role::ScriptedModel => urls.scripted_model = Some(url),
    }
}

/// Until every forward works: its health path answers 2xx, or (without one) its port
/// accepts a connection; fail when its kubectl has exited.
async fn wait_working(
    bases: &[(&ClientForward, String, u32, std::path::PathBuf)],
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?;
    for (forward, base, pid, log) in bases {
        let what = format!("{} on {base} ({})", forward.role.as_str(), forward);
        wait::until(&what, Duration::from_secs(60), || async {
            if proc::live_cmdline(*pid).is_none() {
                return Err(format!(
                    "kubectl port-forward exited; its log ({}): {}",
                    log.display(),
                    proc::log_tail(log, 5)
                ));
            }
            match &forward.health {
                Some(path) => {
                    let resp = http
                        .get(format!("{base}{path}"))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if resp.status().is_success() {
                        Ok(())
                    } else {
                        Err(format!("{path} answers {}", resp.status()))
                    }
                }
                None => tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
            }
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(local_port: Option<u16>) -> ClientForward {
        ClientForward {
            role: Role::ReviewerUi,
            namespace: "hitl-lab".into(),
            service: "hitl-ui".into(),
            port: 8080,
            health: Some(hitl_wire::health::HEALTHZ.into()),
            path: String::new(),
            local_port,
        }
    }

    #[test]
    fn a_forward_that_needs_its_port_gets_it_and_says_so_when_it_is_taken() {
        let held = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        let error = local_port(&forward(Some(port))).unwrap_err();
        assert!(format!("{error:#}").contains("is in use"), "{error:#}");
        drop(held);
        assert_eq!(local_port(&forward(Some(port))).unwrap(), port);
        let argv = argv("kind-hitl-lab", &forward(Some(port)), port);
        assert!(argv.contains(&format!("{port}:8080")), "{argv:?}");
        assert!(local_port(&forward(None)).unwrap() > 0);
    }
}
