//! hitl-ui: how to run the reviewer queue.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
};

use hitl_wire::env::ui as env;

use crate::{bins, proc::Spec};

/// Binary (and log file) name.
pub const NAME: &str = "hitl-ui";

/// How to run one hitl-ui.
#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    /// Loopback by default: the tests and the local lab open it on 127.0.0.1.
    pub bind: IpAddr,
    /// hitl-extauth's admin API base URL (`HITL_EXTAUTH_ADMIN_URL`).
    pub extauth_admin_url: String,
    /// Bearer token for that API, if it needs one (`HITL_EXTAUTH_ADMIN_TOKEN`).
    pub extauth_admin_token: Option<String>,
    /// mock-db-mcp's `/state` URL, for the live schema version (`MOCK_DB_STATE_URL`).
    pub mock_db_state_url: Option<String>,
    /// Built-in sign-in accounts, `user:password,…` (`REVIEWER_CREDENTIALS`).
    pub reviewer_credentials: Option<String>,
    /// Header an auth proxy sets with the reviewer's name (`TRUSTED_USER_HEADER`).
    pub trusted_user_header: Option<String>,
    /// `SEPARATION_OF_DUTIES` (hitl-ui's default, on, when `None`).
    pub separation_of_duties: Option<bool>,
    /// Fixed `SESSION_SECRET` so sign-ins survive a restart (random when `None`).
    pub session_secret: Option<String>,
    /// `ALLOWED_HOSTS`; `None`: the bind address and `localhost`, on this port.
    pub allowed_hosts: Option<String>,
    /// Reviewers sign in at an OpenID Provider too (`OIDC_*`).
    pub oidc: Option<Oidc>,
}

/// hitl-ui's OpenID Connect client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oidc {
    /// `OIDC_ISSUER_URL`.
    pub issuer: String,
    /// `OIDC_CLIENT_ID`.
    pub client_id: String,
    /// `OIDC_CLIENT_SECRET_FILE`.
    pub client_secret_file: std::path::PathBuf,
}

impl Options {
    pub fn new(port: u16, extauth_admin_url: impl Into<String>) -> Self {
        Self {
            port,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            extauth_admin_url: extauth_admin_url.into(),
            extauth_admin_token: None,
            mock_db_state_url: None,
            reviewer_credentials: None,
            trusted_user_header: None,
            separation_of_duties: None,
            session_secret: None,
            allowed_hosts: None,
            oidc: None,
        }
    }

    /// Reviewers may sign in at this OpenID Provider.
    pub fn oidc(mut self, oidc: Oidc) -> Self {
        self.oidc = Some(oidc);
        self
    }

    /// The `Host` names the UI answers to (`ALLOWED_HOSTS`).
    pub fn allowed_hosts(mut self, hosts: impl Into<String>) -> Self {
        self.allowed_hosts = Some(hosts.into());
        self
    }

    /// What `ALLOWED_HOSTS` is set to: the configured list, else the bind address (loopback
    /// when bound to all interfaces) and `localhost`, on this port.
    pub fn allowed_hosts_value(&self) -> String {
        self.allowed_hosts
            .clone()
            .unwrap_or_else(|| loopback_hosts(self.bind, self.port))
    }

    pub fn mock_db_state_url(mut self, url: impl Into<String>) -> Self {
        self.mock_db_state_url = Some(url.into());
        self
    }

    pub fn reviewer_credentials(mut self, credentials: impl Into<String>) -> Self {
        self.reviewer_credentials = Some(credentials.into());
        self
    }

    pub fn trusted_user_header(mut self, header: impl Into<String>) -> Self {
        self.trusted_user_header = Some(header.into());
        self
    }

    pub fn extauth_admin_token(mut self, token: impl Into<String>) -> Self {
        self.extauth_admin_token = Some(token.into());
        self
    }

    /// `http://127.0.0.1:PORT`: what a browser opens.
    pub fn base_url(&self) -> String {
        crate::net::http_url(self.bind, self.port)
    }
}

/// `ALLOWED_HOSTS` for a page bound to `bind:port`: the bind address (loopback when bound to
/// all interfaces) and `localhost`, on that port.
pub fn loopback_hosts(bind: IpAddr, port: u16) -> String {
    let host = match bind {
        IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_owned(),
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    format!("{host}:{port},localhost:{port}")
}

/// The process spec: our built binary, configured through its environment, healthy once
/// `/healthz` answers. Logs go to `<log_dir>/hitl-ui.log`.
pub fn spec(options: &Options, log_dir: &Path) -> anyhow::Result<Spec> {
    let mut spec = Spec::new(NAME, bins::path(NAME)?, log_dir)
        .env(env::HTTP_PORT, options.port.to_string())
        .env(env::BIND_ADDR, options.bind.to_string())
        .env(env::EXTAUTH_ADMIN_URL, &options.extauth_admin_url)
        .env("RUST_LOG", "info")
        .env(env::ALLOWED_HOSTS, options.allowed_hosts_value())
        .health(format!(
            "{}{}",
            options.base_url(),
            hitl_wire::health::HEALTHZ
        ));
    let optional = [
        (env::EXTAUTH_ADMIN_TOKEN, &options.extauth_admin_token),
        (env::MOCK_DB_STATE_URL, &options.mock_db_state_url),
        (env::REVIEWER_CREDENTIALS, &options.reviewer_credentials),
        (env::TRUSTED_USER_HEADER, &options.trusted_user_header),
        (env::SESSION_SECRET, &options.session_secret),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            spec = spec.env(key, value);
        }
    }
    if let Some(oidc) = &options.oidc {
        spec = spec
            .env(env::OIDC_ISSUER_URL, &oidc.issuer)
            .env(env::OIDC_CLIENT_ID, &oidc.client_id)
            .env(
                env::OIDC_CLIENT_SECRET_FILE,
                oidc.client_secret_file.as_os_str(),
            );
    }
    if let Some(on) = options.separation_of_duties {
        spec = spec.env(env::SEPARATION_OF_DUTIES, on.to_string());
    }
    Ok(spec)
}
