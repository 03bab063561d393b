//! mock-db-mcp: how to run the orders database.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
};

use hitl_wire::{env::mockdb as env, mockdb::paths};

use crate::{bins, proc::Spec};

/// Binary (and log file) name.
pub const NAME: &str = "mock-db-mcp";

/// How to run one mock-db-mcp.
#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    /// Loopback by default: the tests and the local lab reach it on 127.0.0.1.
    pub bind: IpAddr,
    /// Keep the data in this SQLite file (`--db`) instead of memory.
    pub db_path: Option<PathBuf>,
    /// Serve `POST /reset` (`ENABLE_RESET`) to callers that present this token
    /// (`RESET_TOKEN`): scene runners reset the data between scenes. `None`: /reset is off.
    pub reset_token: Option<String>,
    /// `ALLOWED_HOSTS`; unset: the binary's default (the loopback names).
    pub allowed_hosts: Option<String>,
    /// `APPROVAL_VERIFYING_KEY_FILE`: the gate's public key approvals are checked with.
    pub approval_verifying_key: Option<PathBuf>,
    /// `INSECURE_NO_APPROVAL_KEY`: execute privileged calls without approval.
    pub insecure_no_approval_key: bool,
    /// `ALLOWED_ORIGINS`: browser origins mock-db-mcp accepts (empty: its own loopback ones).
    pub allowed_origins: Vec<String>,
    /// `QUERY_TIME_BUDGET` (e.g. `1s`); unset: the binary's default.
    pub query_time_budget: Option<String>,
    /// `QUERY_MEMORY_BUDGET` (e.g. `64MiB`); unset: the binary's default.
    pub query_memory_budget: Option<String>,
    /// `HTTP_HEADER_READ_TIMEOUT` (e.g. `1s`); unset: the default.
    pub header_read_timeout: Option<String>,
}

impl Options {
    pub fn new(port: u16) -> Self {
        Self {
            port,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            db_path: None,
            reset_token: None,
            allowed_hosts: None,
            approval_verifying_key: None,
            insecure_no_approval_key: false,
            allowed_origins: Vec::new(),
            query_time_budget: None,
            query_memory_budget: None,
            header_read_timeout: None,
        }
    }

    /// Check approvals with this public key file.
    pub fn verifying_key(mut self, path: impl Into<PathBuf>) -> Self {
        self.approval_verifying_key = Some(path.into());
        self
    }

    pub fn header_read_timeout(mut self, timeout: &str) -> Self {
        self.header_read_timeout = Some(timeout.to_owned());
        self
    }

    pub fn allowed_origins(mut self, origins: &[&str]) -> Self {
        self.allowed_origins = origins.iter().map(|o| o.to_string()).collect();
        self
    }

    /// Both query budgets, as mock-db-mcp parses them (`1s`, `64MiB`).
    pub fn query_budgets(mut self, time: &str, memory: &str) -> Self {
        self.query_time_budget = Some(time.to_owned());
        self.query_memory_budget = Some(memory.to_owned());
        self
    }

    pub fn db_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.db_path = Some(path.into());
        self
    }

    /// Serve `/reset` to callers that present `token`.
    pub fn reset_token(mut self, token: impl Into<String>) -> Self {
        self.reset_token = Some(token.into());
        self
    }

    pub fn allowed_hosts(mut self, hosts: &str) -> Self {
        self.allowed_hosts = Some(hosts.to_owned());
        self
    }

    /// `http://127.0.0.1:PORT` (or the bind address, when it is a specific one).
    pub fn base_url(&self) -> String {
        crate::net::http_url(self.bind, self.port)
    }

    /// Full URL of one of [`paths`], e.g. `url(paths::PUBLIC_MCP)`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }
}

/// The process spec: our built binary, configured through its environment, healthy once
/// `/healthz` answers. Logs go to `<log_dir>/mock-db-mcp.log`.
pub fn spec(options: &Options, log_dir: &Path) -> anyhow::Result<Spec> {
    let mut spec = Spec::new(NAME, bins::path(NAME)?, log_dir)
        .env(env::PORT, options.port.to_string())
        .env(env::BIND_ADDR, options.bind.to_string())
        .health(options.url(paths::HEALTHZ));
    if let Some(db) = &options.db_path {
        spec = spec.env(env::DB_PATH, db.as_os_str());
    }
    if let Some(token) = &options.reset_token {
        spec = spec
            .env(env::ENABLE_RESET, "1")
            .env(env::RESET_TOKEN, token);
    }
    if let Some(hosts) = &options.allowed_hosts {
        spec = spec.env(env::ALLOWED_HOSTS, hosts);
    }
    if let Some(key) = &options.approval_verifying_key {
        spec = spec.env(env::APPROVAL_VERIFYING_KEY_FILE, key.as_os_str());
    }
    if options.insecure_no_approval_key {
        spec = spec.env(env::INSECURE_NO_APPROVAL_KEY, "1");
    }
    if !options.allowed_origins.is_empty() {
        spec = spec.env(env::ALLOWED_ORIGINS, options.allowed_origins.join(","));
    }
    if let Some(budget) = &options.query_time_budget {
        spec = spec.env(env::QUERY_TIME_BUDGET, budget);
    }
    if let Some(timeout) = &options.header_read_timeout {
        spec = spec.env(hitl_wire::env::http::HEADER_READ_TIMEOUT, timeout);
    }
    if let Some(budget) = &options.query_memory_budget {
        spec = spec.env(env::QUERY_MEMORY_BUDGET, budget);
    }
    Ok(spec)
}
