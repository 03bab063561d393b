//! lab-chat: how to run the chat user's page (local lab only; the kind lab has kagent's UI).

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
};

use hitl_wire::env::chat as env;

use crate::{bins, proc::Spec};

/// Binary (and log file) name.
pub const NAME: &str = "lab-chat";

/// How to run one lab-chat.
#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    pub bind: IpAddr,
    /// `(name, A2A URL)` of each agent the user may pick, the default first (`AGENTS`).
    pub agents: Vec<(String, String)>,
    /// Sign-in accounts, `user:password,…` (`CHAT_CREDENTIALS`).
    pub credentials: String,
    /// The scripted model, whose chat script a new conversation loads (`SCRIPTED_MODEL_URL`).
    pub scripted_model_url: Option<String>,
    /// The lab's requester signing key (`REQUESTER_KEY_FILE`).
    pub requester_key_file: Option<std::path::PathBuf>,
    /// `ALLOWED_HOSTS`; `None`: the bind address and `localhost`, on this port.
    pub allowed_hosts: Option<String>,
    /// `NOTIFY_SECRET_FILE`: receive the gate's notifications (`/notify`, `/notifications`).
    pub notify_secret_file: Option<std::path::PathBuf>,
}

impl Options {
    pub fn new(port: u16, credentials: impl Into<String>) -> Self {
        Self {
            port,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            agents: Vec::new(),
            credentials: credentials.into(),
            scripted_model_url: None,
            requester_key_file: None,
            allowed_hosts: None,
            notify_secret_file: None,
        }
    }

    /// What `ALLOWED_HOSTS` is set to: the configured list, else the bind address and
    /// `localhost`, on this port (as for hitl-ui).
    pub fn allowed_hosts_value(&self) -> String {
        self.allowed_hosts
            .clone()
            .unwrap_or_else(|| crate::components::ui::loopback_hosts(self.bind, self.port))
    }

    pub fn agent(mut self, name: impl Into<String>, url: impl Into<String>) -> Self {
        self.agents.push((name.into(), url.into()));
        self
    }

    /// Where the gate posts its notifications to this page.
    pub fn notify_url(&self) -> String {
        format!("{}/notify", self.base_url())
    }

    /// `http://127.0.0.1:PORT`: what a browser opens.
    pub fn base_url(&self) -> String {
        crate::net::http_url(self.bind, self.port)
    }
}

/// The process spec: our built binary, healthy once `/healthz` answers.
pub fn spec(options: &Options, log_dir: &Path) -> anyhow::Result<Spec> {
    let agents: Vec<String> = options
        .agents
        .iter()
        .map(|(name, url)| format!("{name}={url}"))
        .collect();
    let mut spec = Spec::new(NAME, bins::path(NAME)?, log_dir)
        .env(env::HTTP_PORT, options.port.to_string())
        .env(env::BIND_ADDR, options.bind.to_string())
        .env(env::AGENTS, agents.join(","))
        .env(env::CHAT_CREDENTIALS, &options.credentials)
        .env(env::ALLOWED_HOSTS, options.allowed_hosts_value())
        .env("RUST_LOG", "info")
        .health(format!(
            "{}{}",
            options.base_url(),
            hitl_wire::health::HEALTHZ
        ));
    if let Some(file) = &options.notify_secret_file {
        spec = spec.env(env::NOTIFY_SECRET_FILE, file.as_os_str());
    }
    if let Some(url) = &options.scripted_model_url {
        spec = spec.env(env::SCRIPTED_MODEL_URL, url);
    }
    if let Some(key) = &options.requester_key_file {
        spec = spec.env(env::REQUESTER_KEY_FILE, key.display().to_string());
    }
    Ok(spec)
}
