//! hitl-extauth: how to run the gate.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use hitl_wire::env::extauth as env;

use crate::{
    bins, credentials::Credentials, envoy::Endpoint, gate_tls::GateTlsFiles, proc::Spec,
    requester::Issuer,
};

/// Binary (and log file) name.
pub const NAME: &str = "hitl-extauth";

/// Whose requester tokens the gate accepts: it verifies each token itself against this JWKS,
/// issuer and audiences (`REQUESTER_JWKS_FILE`, `REQUESTER_ISSUER`, `REQUESTER_AUDIENCES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequesterTrust {
    pub jwks_file: PathBuf,
    pub issuer: String,
    pub audiences: Vec<String>,
}

impl RequesterTrust {
    /// Trust `issuer`'s tokens: its JWKS written to `dir` ([`crate::requester::JWKS_FILE`]).
    pub fn of(issuer: &Issuer, dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let jwks_file = dir.join(crate::requester::JWKS_FILE);
        std::fs::write(&jwks_file, issuer.jwks().to_string())?;
        Ok(Self {
            jwks_file,
            issuer: issuer.issuer().to_owned(),
            audiences: vec![issuer.audience().to_owned()],
        })
    }
}

/// Whose reviewer ID tokens the gate believes (`REVIEWER_JWKS_FILE`, `REVIEWER_ISSUER`,
/// `REVIEWER_AUDIENCES`): the lab's OpenID Provider, for hitl-ui's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewerTrust {
    pub jwks_file: PathBuf,
    pub issuer: String,
    pub audiences: Vec<String>,
}

/// How to run one hitl-extauth.
#[derive(Debug, Clone)]
pub struct Options {
    /// Envoy's `Authorization/Check` (gRPC, h2c).
    pub grpc_port: u16,
    /// The admin API.
    pub http_port: u16,
    /// Loopback by default.
    pub bind: IpAddr,
    /// `PARK_TIMEOUT_SEC`.
    pub park_timeout: Duration,
    /// The SQLite audit trail (`AUDIT_DB`); keep it in a file to survive restarts.
    pub audit_db: PathBuf,
    /// `ALLOWED_METHODS`, if not the default.
    pub allowed_methods: Option<String>,
    /// `ADMIN_TOKEN`, if any.
    pub admin_token: Option<String>,
    /// `INSECURE_OPEN_ADMIN`: serve the admin API without a token.
    pub insecure_open_admin: bool,
    /// `APPROVAL_SIGNING_KEY_FILE`: the key approval tokens are signed with.
    pub approval_signing_key: Option<PathBuf>,
    /// `INSECURE_NO_APPROVAL_KEY`: run without one.
    pub insecure_no_approval_key: bool,
    /// `DENY_RESPONSE`: `http` (403, the default) or `mcp` (a denied `tools/call` answered
    /// with a tool result marked `isError` carrying the reason, which the agent's MCP client
    /// reads; see `hitl_wire::extauth::denial`).
    pub deny_response: Option<String>,
    /// `MAX_PARKED_PER_REQUESTER`, if not the default (load tests park thousands as one).
    pub max_parked_per_requester: Option<u64>,
    /// Whose requester tokens it verifies; without one it starts only with
    /// `require_verified_requester: Some(false)`.
    pub requester: Option<RequesterTrust>,
    /// `REQUIRE_VERIFIED_REQUESTER`, if set.
    pub require_verified_requester: Option<bool>,
    /// mTLS on the Check port (`GRPC_TLS_CERT_FILE`, `GRPC_TLS_KEY_FILE`,
    /// `GRPC_CLIENT_CA_FILE`): the server half of these files. `None`: h2c.
    pub grpc_tls: Option<GateTlsFiles>,
    /// `REJECTION_HOLD_SEC`, if not the default.
    pub rejection_hold: Option<Duration>,
    /// The store on PostgreSQL (`STORE_URL`, `STORE_PASSWORD_FILE`) instead of `audit_db`.
    pub postgres: Option<(String, PathBuf)>,
    /// `REPLICA_NAME`: this replica's name in a shared store, if set.
    pub replica_name: Option<String>,
    /// `APPROVAL_TTL` (whole seconds), if not the default: how long a request stays open.
    pub approval_ttl: Option<Duration>,
    /// `APPROVAL_WINDOW` (whole seconds), if not the default: how long an approval is usable.
    pub approval_window: Option<Duration>,
    /// `APPROVAL_POLICY_FILE`: who may approve what (unset: anyone, once).
    pub approval_policy: Option<PathBuf>,
    /// Signed notifications (`NOTIFY_WEBHOOK_URLS`, `NOTIFY_SECRET_FILE`, `REVIEW_URL`).
    pub notify: Option<Notify>,
    /// Reviewers' ID tokens from this provider are believed.
    pub reviewer: Option<ReviewerTrust>,
}

/// Where the gate's notifications go, and the key that signs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub webhooks: Vec<String>,
    pub secret_file: PathBuf,
    /// hitl-ui's address, for the card's link.
    pub review_url: Option<String>,
}

impl Options {
    /// Loopback, 600 s parks, audit in `<dir>/hitl-extauth.db`.
    pub fn new(grpc_port: u16, http_port: u16, dir: &Path) -> Self {
        Self {
            grpc_port,
            http_port,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            park_timeout: Duration::from_secs(600),
            audit_db: dir.join("hitl-extauth.db"),
            allowed_methods: None,
            admin_token: None,
            insecure_open_admin: false,
            approval_signing_key: None,
            insecure_no_approval_key: false,
            deny_response: None,
            max_parked_per_requester: None,
            requester: None,
            require_verified_requester: None,
            grpc_tls: None,
            rejection_hold: None,
            postgres: None,
            replica_name: None,
            approval_ttl: None,
            approval_window: None,
            approval_policy: None,
            notify: None,
            reviewer: None,
        }
    }

    /// Keep the store on PostgreSQL at `url`, its password in `password_file`.
    pub fn postgres(mut self, url: impl Into<String>, password_file: impl Into<PathBuf>) -> Self {
        self.postgres = Some((url.into(), password_file.into()));
        self
    }

    /// Sign approvals with the lab's key and demand its admin token.
    pub fn credentials(mut self, credentials: &Credentials) -> Self {
        self.approval_signing_key = Some(credentials.keys.signing.clone());
        self.admin_token = Some(credentials.admin_token.clone());
        self
    }

    /// Verify requester tokens as `trust` says.
    pub fn requester(mut self, trust: RequesterTrust) -> Self {
        self.requester = Some(trust);
        self
    }

    /// Serve the Check port over mTLS with the server half of `files`.
    pub fn grpc_tls(mut self, files: GateTlsFiles) -> Self {
        self.grpc_tls = Some(files);
        self
    }

    pub fn max_parked_per_requester(mut self, n: u64) -> Self {
        self.max_parked_per_requester = Some(n);
        self
    }

    /// Requests stay open `ttl` (`APPROVAL_TTL`) and approvals are usable `window`
    /// (`APPROVAL_WINDOW`) after the decision.
    pub fn approval_clocks(mut self, ttl: Duration, window: Duration) -> Self {
        self.approval_ttl = Some(ttl);
        self.approval_window = Some(window);
        self
    }

    pub fn park_timeout(mut self, timeout: Duration) -> Self {
        self.park_timeout = timeout;
        self
    }

    pub fn deny_response(mut self, style: impl Into<String>) -> Self {
        self.deny_response = Some(style.into());
        self
    }

    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// Where Envoy reaches the gRPC service.
    pub fn grpc_endpoint(&self) -> Endpoint {
        Endpoint::new(crate::net::reachable(self.bind).to_string(), self.grpc_port)
    }

    /// `http://127.0.0.1:HTTP_PORT`: the admin API.
    pub fn admin_url(&self) -> String {
        crate::net::http_url(self.bind, self.http_port)
    }
}

/// The process spec: our built binary configured through its environment, healthy once the
/// admin `/healthz` answers. Logs go to `<log_dir>/hitl-extauth.log`.
pub fn spec(options: &Options, log_dir: &Path) -> anyhow::Result<Spec> {
    let mut spec = Spec::new(NAME, bins::path(NAME)?, log_dir)
        .env(env::BIND_ADDR, options.bind.to_string())
        .env(env::GRPC_PORT, options.grpc_port.to_string())
        .env(env::HTTP_PORT, options.http_port.to_string())
        .env(
            env::PARK_TIMEOUT_SEC,
            options.park_timeout.as_secs().max(1).to_string(),
        )
        .env(env::AUDIT_DB, options.audit_db.as_os_str())
        .env("RUST_LOG", "info")
        .health(format!(
            "{}{}",
            options.admin_url(),
            hitl_wire::health::HEALTHZ
        ));
    spec = reviewers(spec, options);
    if let Some((url, password_file)) = &options.postgres {
        // One name per replica (else one per gRPC port on this host): a restart is a new
        // life of it, which closes its previous life's held calls at once.
        let name = options
            .replica_name
            .clone()
            .unwrap_or_else(|| format!("{NAME}-{}", options.grpc_port));
        spec = spec
            .env(env::STORE_URL, url)
            .env(env::STORE_PASSWORD_FILE, password_file.as_os_str())
            .env(env::REPLICA_NAME, name);
    }
    if let Some(name) = &options.replica_name {
        // Its own log beside the others'.
        spec.name = format!("{NAME}-{name}");
        spec.log = log_dir.join(format!("{}.log", spec.name));
    }
    if let Some(hold) = options.rejection_hold {
        spec = spec.env(env::REJECTION_HOLD_SEC, hold.as_secs().to_string());
    }
    if let Some(ttl) = options.approval_ttl {
        spec = spec.env(env::APPROVAL_TTL, format!("{}s", ttl.as_secs()));
    }
    if let Some(window) = options.approval_window {
        spec = spec.env(env::APPROVAL_WINDOW, format!("{}s", window.as_secs()));
    }
    if let Some(methods) = &options.allowed_methods {
        spec = spec.env(env::ALLOWED_METHODS, methods);
    }
    if let Some(token) = &options.admin_token {
        spec = spec.env(
            env::ADMIN_TOKEN_FILE,
            admin_token_file(options, token, log_dir)?,
        );
    }
    if let Some(key) = &options.approval_signing_key {
        spec = spec.env(env::APPROVAL_SIGNING_KEY_FILE, key.as_os_str());
    }
    if options.insecure_open_admin {
        spec = spec.env(env::INSECURE_OPEN_ADMIN, "1");
    }
    if options.insecure_no_approval_key {
        spec = spec.env(env::INSECURE_NO_APPROVAL_KEY, "1");
    }
    if let Some(style) = &options.deny_response {
        spec = spec.env(env::DENY_RESPONSE, style);
    }
    if let Some(n) = options.max_parked_per_requester {
        spec = spec.env(env::MAX_PARKED_PER_REQUESTER, n.to_string());
    }
    spec = trust_env(spec, options);
    if let Some(tls) = &options.grpc_tls {
        spec = spec
            .env(env::GRPC_TLS_CERT_FILE, tls.server_cert.as_os_str())
            .env(env::GRPC_TLS_KEY_FILE, tls.server_key.as_os_str())
            .env(env::GRPC_CLIENT_CA_FILE, tls.ca.as_os_str());
    }
    if let Some(require) = options.require_verified_requester {
        spec = spec.env(env::REQUIRE_VERIFIED_REQUESTER, require.to_string());
    }
    Ok(spec)
}

/// Who may approve what, and who is told a call waits: the policy file and notifications.
fn reviewers(mut spec: Spec, options: &Options) -> Spec {
    if let Some(policy) = &options.approval_policy {
        spec = spec.env(env::APPROVAL_POLICY_FILE, policy.as_os_str());
    }
    if let Some(notify) = &options.notify {
        spec = spec
            .env(env::NOTIFY_WEBHOOK_URLS, notify.webhooks.join(","))
            .env(env::NOTIFY_SECRET_FILE, notify.secret_file.as_os_str());
        if let Some(url) = &notify.review_url {
            spec = spec.env(env::REVIEW_URL, url);
        }
    }
    spec
}

/// Whose tokens the gate verifies: requesters' and reviewers'.
fn trust_env(mut spec: Spec, options: &Options) -> Spec {
    if let Some(trust) = &options.requester {
        spec = spec
            .env(env::REQUESTER_JWKS_FILE, trust.jwks_file.as_os_str())
            .env(env::REQUESTER_ISSUER, &trust.issuer)
            .env(env::REQUESTER_AUDIENCES, trust.audiences.join(","));
    }
    if let Some(trust) = &options.reviewer {
        spec = spec
            .env(env::REVIEWER_JWKS_FILE, trust.jwks_file.as_os_str())
            .env(env::REVIEWER_ISSUER, &trust.issuer)
            .env(env::REVIEWER_AUDIENCES, trust.audiences.join(","));
    }
    spec
}

/// The admin token in a file for `ADMIN_TOKEN_FILE`, as a mounted Secret would be (with the
/// newline an editor leaves): the token is in no process's environment.
fn admin_token_file(options: &Options, token: &str, log_dir: &Path) -> anyhow::Result<PathBuf> {
    let file = log_dir.join(format!("admin-token-{}", options.http_port));
    // The spec is made before the lab creates its log directory (a fresh lab's first start).
    std::fs::create_dir_all(log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    hitl_wire::private::write(&file, format!("{token}\n").as_bytes())
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}
