//! Configuration: command-line flags with environment-variable fallbacks
//! (`hitl_wire::env::extauth`).

use std::{net::IpAddr, path::PathBuf, time::Duration};

use clap::Parser;
use hitl_wire::env::extauth as env;

use anyhow::Context as _;

mod policy;

use crate::{
    classify::{AllowList, DEFAULT_ALLOWED_METHODS},
    requester::verify::Verifier,
    tls::GrpcTls,
};

/// hitl-extauth: the gateway gate. An Envoy ext_authz gRPC server that lets MCP housekeeping
/// through, parks every `tools/call` until a reviewer approves or rejects it on the admin
/// API, and denies anything it cannot prove harmless.
#[derive(Debug, Clone, Parser)]
#[command(name = "hitl-extauth", version, about, long_about)]
#[command(group(clap::ArgGroup::new("store").args(["store_url", "store_url_file"]).multiple(true)))]
pub struct Config {
    /// Address both listeners bind to.
    #[arg(long, env = env::BIND_ADDR, default_value = env::DEFAULT_BIND_ADDR)]
    pub bind_addr: IpAddr,

    /// Port of the gRPC `envoy.service.auth.v3.Authorization` service (h2c).
    #[arg(long, env = env::GRPC_PORT, default_value_t = env::DEFAULT_GRPC_PORT)]
    pub grpc_port: u16,

    /// Port of the admin HTTP API (/pending, /decide/{id}, /history, /events, /metrics,
    /// /healthz).
    #[arg(long, env = env::HTTP_PORT, default_value_t = env::DEFAULT_HTTP_PORT)]
    pub http_port: u16,

    /// How long a parked call waits for a decision before it is denied as expired: `10m`,
    /// `90s`, or a bare number of seconds (whole seconds).
    #[arg(long, env = env::PARK_TIMEOUT_SEC, default_value_t = env::DEFAULT_PARK_TIMEOUT_SEC, value_parser = |s: &str| hitl_wire::duration::parse_positive_seconds(env::PARK_TIMEOUT_SEC, s))]
    pub park_timeout_sec: u64,

    /// How long an approval request stays open for a decision, across retries and restarts
    /// (`24h`, `90m`; whole seconds).
    #[arg(long, env = env::APPROVAL_TTL, default_value = env::DEFAULT_APPROVAL_TTL, value_parser = |s: &str| hitl_wire::duration::parse_positive_seconds(env::APPROVAL_TTL, s))]
    pub approval_ttl_sec: u64,

    /// How long after the decision an approval may be used, once (`15m`; whole seconds).
    #[arg(long, env = env::APPROVAL_WINDOW, default_value = env::DEFAULT_APPROVAL_WINDOW, value_parser = |s: &str| hitl_wire::duration::parse_positive_seconds(env::APPROVAL_WINDOW, s))]
    pub approval_window_sec: u64,

    /// How long a re-send of a rejected action is refused at once with the same reason (`60s`,
    /// `0` for never, or a bare number of seconds).
    #[arg(long, env = env::REJECTION_HOLD_SEC, default_value_t = env::DEFAULT_REJECTION_HOLD_SEC, value_parser = |s: &str| hitl_wire::duration::parse_whole_seconds(env::REJECTION_HOLD_SEC, s))]
    pub rejection_hold_sec: u64,

    /// SQLite file of the audit trail (created if missing; `:memory:` keeps it in memory and
    /// loses it on exit).
    #[arg(long, env = env::AUDIT_DB, default_value = env::DEFAULT_AUDIT_DB)]
    pub audit_db: PathBuf,

    /// Keep the store on PostgreSQL instead of the SQLite file: `postgres://user@host/db`
    /// (the schema is created and migrated at start). Several gate replicas may share it:
    /// any replica admits calls and takes decisions for all of them.
    #[arg(long, env = env::STORE_URL, hide_env_values = true)]
    pub store_url: Option<String>,

    /// STORE_URL read from a file instead (a mounted Secret; not both; one trailing newline dropped).
    #[arg(long, env = env::STORE_URL_FILE, value_name = "PATH")]
    pub store_url_file: Option<PathBuf>,

    /// Comma-separated URLs that receive a signed JSON POST when an approval request opens,
    /// is decided or expires (needs NOTIFY_SECRET_FILE).
    #[arg(long, env = env::NOTIFY_WEBHOOK_URLS, hide_env_values = true, value_delimiter = ',')]
    pub notify_webhook_urls: Vec<String>,

    /// NOTIFY_WEBHOOK_URLS, one a line, read from a file instead (a mounted Secret; not both; one trailing newline dropped).
    #[arg(long, env = env::NOTIFY_WEBHOOK_URLS_FILE, value_name = "PATH")]
    pub notify_webhook_urls_file: Option<PathBuf>,

    /// Comma-separated Slack incoming-webhook URLs that receive the same notifications as a
    /// Slack card (needs NOTIFY_SECRET_FILE).
    #[arg(long, env = env::NOTIFY_SLACK_URLS, hide_env_values = true, value_delimiter = ',')]
    pub notify_slack_urls: Vec<String>,

    /// NOTIFY_SLACK_URLS, one a line, read from a file instead (a mounted Secret; not both; one trailing newline dropped).
    #[arg(long, env = env::NOTIFY_SLACK_URLS_FILE, value_name = "PATH")]
    pub notify_slack_urls_file: Option<PathBuf>,

    /// File holding the key that signs every notification (HMAC-SHA256 over
    /// "<timestamp>.<body>", in x-hitl-signature; receivers check it).
    #[arg(long, env = env::NOTIFY_SECRET_FILE)]
    pub notify_secret_file: Option<PathBuf>,

    /// The approval policy (TOML): who may approve which calls, how many must, whether a
    /// reason is required. Unset: every gated call needs one approval from any reviewer.
    #[arg(long, env = env::APPROVAL_POLICY_FILE, value_name = "PATH")]
    pub approval_policy_file: Option<PathBuf>,

    /// JWKS (JSON file) of the identity provider that signs reviewers' ID tokens: decisions
    /// may then carry the reviewer's ID token, whose name and groups the gate believes.
    #[arg(long, env = env::REVIEWER_JWKS_FILE, value_name = "PATH")]
    pub reviewer_jwks_file: Option<PathBuf>,

    /// The `iss` of reviewers' ID tokens (required with --reviewer-jwks-file).
    #[arg(long, env = env::REVIEWER_ISSUER)]
    pub reviewer_issuer: Option<String>,

    /// Comma-separated audiences (hitl-ui's OIDC client id); an ID token's `aud` must name
    /// one (required with --reviewer-jwks-file).
    #[arg(long, env = env::REVIEWER_AUDIENCES, value_delimiter = ',')]
    pub reviewer_audiences: Vec<String>,

    /// The ID-token claim that lists the reviewer's groups.
    #[arg(long, env = env::REVIEWER_GROUPS_CLAIM, default_value = env::DEFAULT_REVIEWER_GROUPS_CLAIM)]
    pub reviewer_groups_claim: String,

    /// The ID-token claim that names the reviewer.
    #[arg(long, env = env::REVIEWER_NAME_CLAIM, default_value = env::DEFAULT_REVIEWER_NAME_CLAIM)]
    pub reviewer_name_claim: String,

    /// hitl-ui's address (e.g. https://review.example.com), for the link to the card.
    #[arg(long, env = env::REVIEW_URL)]
    pub review_url: Option<String>,

    /// This replica's name in a shared store (e.g. its pod's name), shown in logs and
    /// `/state`; a random suffix is added at each start.
    #[arg(long, env = env::REPLICA_NAME)]
    pub replica_name: Option<String>,

    /// File holding the PostgreSQL password (kept out of STORE_URL; trailing newline ignored).
    #[arg(long, env = env::STORE_PASSWORD_FILE, requires = "store")]
    pub store_password_file: Option<PathBuf>,

    /// PEM file of the CA that signs the PostgreSQL server's certificate: the connection is
    /// then TLS, required, and the certificate must name STORE_URL's host. Unset: plaintext.
    #[arg(long, env = env::STORE_CA_FILE, requires = "store")]
    pub store_ca_file: Option<PathBuf>,

    /// Comma-separated JSON-RPC methods that pass without review; `prefix/*` matches every
    /// method under `prefix/`. `tools/call` always parks and can't be listed.
    #[arg(long, env = env::ALLOWED_METHODS, default_value = DEFAULT_ALLOWED_METHODS)]
    pub allowed_methods: AllowList,

    /// /pending, /decide, /history and /events require `Authorization: Bearer <token>`
    /// (/healthz and /metrics stay open). Without it they are not served at all, unless
    /// --insecure-open-admin.
    #[arg(long, env = env::ADMIN_TOKEN, hide_env_values = true)]
    pub admin_token: Option<String>,

    /// ADMIN_TOKEN read from a file instead (a mounted Secret; not both; one trailing newline dropped).
    #[arg(long, env = env::ADMIN_TOKEN_FILE, value_name = "PATH")]
    pub admin_token_file: Option<PathBuf>,

    /// Serve the admin API without a token (for a UI that sends none):
    /// anyone who reaches the port can approve. Logged as a warning at every start, shown by
    /// /healthz; reviewer names are recorded as unverified.
    #[arg(
        long,
        env = env::INSECURE_OPEN_ADMIN,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_open_admin: bool,

    /// File holding the Ed25519 key (32-byte seed, hex) that signs approval tokens
    /// (`x-hitl-approval`). Required unless --insecure-no-approval-key.
    #[arg(long, env = env::APPROVAL_SIGNING_KEY_FILE, value_name = "PATH")]
    pub approval_signing_key_file: Option<PathBuf>,

    /// Print the public half of the approval signing key (hex Ed25519: what the MCP server's
    /// verifying key file holds) and exit, serving nothing. For a key generated where only
    /// the gate can read it, e.g. `kubectl exec deploy/hitl-extauth --
    /// /usr/local/bin/service --print-verifying-key`.
    #[arg(long)]
    pub print_verifying_key: bool,

    /// Run without a signing key: approvals carry no token, so a backend
    /// that verifies approvals refuses them. Logged as a warning at every start.
    #[arg(
        long,
        env = env::INSECURE_NO_APPROVAL_KEY,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_no_approval_key: bool,

    /// Most calls parked at once; further tool calls are denied until some are decided.
    #[arg(long, env = env::MAX_PARKED, default_value_t = env::DEFAULT_MAX_PARKED)]
    pub max_parked: usize,

    /// Most calls one requester may have parked at once; their further tool calls are denied
    /// (with that reason) until some are decided. Keeps one noisy or hostile client from
    /// filling the reviewers' queue and the gate's memory. Calls without a requester share one
    /// allowance.
    #[arg(long, env = env::MAX_PARKED_PER_REQUESTER, default_value_t = env::DEFAULT_MAX_PARKED_PER_REQUESTER, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_parked_per_requester: u64,

    /// Most bytes of requests (bodies, headers, paths) held by the parked calls together;
    /// further tool calls are denied until some are decided. What bounds the gate's memory
    /// when requests are large (and whatever requester names a caller uses).
    #[arg(long, env = env::MAX_PARKED_BYTES, default_value_t = env::DEFAULT_MAX_PARKED_BYTES, value_parser = clap::value_parser!(usize))]
    pub max_parked_bytes: usize,

    /// How a denial reaches the caller. `http` (the default): HTTP 403 with a JSON
    /// body `{"approved": false, "reason", "id"}`. `mcp` (HTTP 200, in MCP terms): a denied
    /// `tools/call` gets a tool result marked `isError` whose text is the reason (the 403 body
    /// under `_meta`), any other JSON-RPC request a JSON-RPC error (code -32003, the body as
    /// its `data`) — for MCP clients (such as kagent's Python one) that drop the body of any
    /// 4xx, so the agent would never learn why. Frames that are not JSON-RPC get the 403.
    #[arg(long, env = env::DENY_RESPONSE, value_enum, default_value_t = DenyStyle::Http)]
    pub deny_response: DenyStyle,

    /// Deny every `tools/call` that carries no requester token the gate verifies (the `sub`
    /// of a JWT signed by a key of --requester-jwks-file). `false` is an explicit opt-out,
    /// logged loudly: such calls park with no verified requester, and separation of duties
    /// cannot be checked for them.
    #[arg(
        long,
        env = env::REQUIRE_VERIFIED_REQUESTER,
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub require_verified_requester: bool,

    /// JWKS (JSON file) of the keys that sign requester tokens: the keys the gateway verifies
    /// with. Required unless --require-verified-requester false.
    #[arg(long, env = env::REQUESTER_JWKS_FILE, value_name = "PATH")]
    pub requester_jwks_file: Option<PathBuf>,

    /// The `iss` every requester token must carry (required with --requester-jwks-file).
    #[arg(long, env = env::REQUESTER_ISSUER)]
    pub requester_issuer: Option<String>,

    /// Comma-separated audiences; a requester token's `aud` must name one (required with
    /// --requester-jwks-file).
    #[arg(long, env = env::REQUESTER_AUDIENCES, value_delimiter = ',')]
    pub requester_audiences: Vec<String>,

    /// The requester token's claim that names the person. Separation of duties compares it
    /// with the reviewer's name (--reviewer-name-claim): where `sub` is an opaque id, name
    /// both by the same claim (e.g. `preferred_username`).
    #[arg(long, env = env::REQUESTER_NAME_CLAIM, default_value = env::DEFAULT_REQUESTER_NAME_CLAIM)]
    pub requester_name_claim: String,

    /// Longest requester token lifetime accepted, in seconds (`exp - iat`, and `exp - now`).
    #[arg(long, env = env::REQUESTER_MAX_LIFETIME_SEC, default_value_t = env::DEFAULT_REQUESTER_MAX_LIFETIME_SEC, value_parser = |s: &str| hitl_wire::duration::parse_positive_seconds(env::REQUESTER_MAX_LIFETIME_SEC, s))]
    pub requester_max_lifetime_sec: u64,

    /// PEM certificate the Check port presents; with --grpc-tls-key-file and
    /// --grpc-client-ca-file the port speaks TLS only and demands a client certificate from
    /// that CA (mTLS: only the gateway holding one may ask). All three or none (plaintext).
    #[arg(long, env = env::GRPC_TLS_CERT_FILE, value_name = "PATH")]
    pub grpc_tls_cert_file: Option<PathBuf>,

    /// PEM private key of --grpc-tls-cert-file.
    #[arg(long, env = env::GRPC_TLS_KEY_FILE, value_name = "PATH")]
    pub grpc_tls_key_file: Option<PathBuf>,

    /// PEM CA certificate(s) the gateway's client certificate must chain to.
    #[arg(long, env = env::GRPC_CLIENT_CA_FILE, value_name = "PATH")]
    pub grpc_client_ca_file: Option<PathBuf>,

    /// The admin API's connection limits (header-read and idle timeouts, body limit: 64 KiB
    /// unless set).
    #[command(flatten)]
    pub http: hitl_serve::Limits,
}

/// How a denial is written back through the gateway (see [`Config::deny_response`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DenyStyle {
    /// HTTP 403 with the JSON deny body.
    #[default]
    Http,
    /// An MCP answer to the request's id (HTTP 200): a tool error for `tools/call`, a
    /// JSON-RPC error otherwise; the deny body rides along.
    Mcp,
}

impl Config {
    /// Each secret from its `*_FILE` variable where that is set (`hitl_wire::secret`): after
    /// this, the value fields hold the secrets whichever way they came.
    pub fn read_secret_files(mut self) -> Result<Self, hitl_wire::secret::SecretError> {
        use hitl_wire::secret::{list_or_file, value_or_file};
        self.admin_token = value_or_file(
            env::ADMIN_TOKEN,
            self.admin_token.take(),
            env::ADMIN_TOKEN_FILE,
            self.admin_token_file.as_deref(),
        )?;
        self.store_url = value_or_file(
            env::STORE_URL,
            self.store_url.take(),
            env::STORE_URL_FILE,
            self.store_url_file.as_deref(),
        )?;
        self.notify_webhook_urls = list_or_file(
            env::NOTIFY_WEBHOOK_URLS,
            std::mem::take(&mut self.notify_webhook_urls),
            env::NOTIFY_WEBHOOK_URLS_FILE,
            self.notify_webhook_urls_file.as_deref(),
        )?;
        self.notify_slack_urls = list_or_file(
            env::NOTIFY_SLACK_URLS,
            std::mem::take(&mut self.notify_slack_urls),
            env::NOTIFY_SLACK_URLS_FILE,
            self.notify_slack_urls_file.as_deref(),
        )?;
        Ok(self)
    }

    /// Where notifications go, if anywhere: every URL http(s), and a signing key.
    pub fn notify_receivers(&self) -> anyhow::Result<Option<crate::notify::Receivers>> {
        let clean = |urls: &[String]| -> Vec<String> {
            urls.iter()
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect()
        };
        let (webhooks, slack) = (
            clean(&self.notify_webhook_urls),
            clean(&self.notify_slack_urls),
        );
        if webhooks.is_empty() && slack.is_empty() {
            return Ok(None);
        }
        if let Some(bad) = webhooks
            .iter()
            .chain(&slack)
            .find(|u| !(u.starts_with("https://") || u.starts_with("http://")))
        {
            let shown: String = bad.chars().take(12).collect();
            anyhow::bail!(
                "{}/{}: every receiver must be an http(s):// URL (one starts {shown:?})",
                env::NOTIFY_WEBHOOK_URLS,
                env::NOTIFY_SLACK_URLS
            );
        }
        let Some(path) = &self.notify_secret_file else {
            anyhow::bail!(
                "notifications are signed: set {} to a file holding the signing key (e.g. \
                 `openssl rand -hex 32 > notify.key`)",
                env::NOTIFY_SECRET_FILE
            );
        };
        let secret = hitl_wire::notify::secret_from_file(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", env::NOTIFY_SECRET_FILE))?;
        Ok(Some(crate::notify::Receivers {
            webhooks,
            slack,
            secret,
            review_url: self.review_url.clone(),
        }))
    }

    /// Where the store lives: PostgreSQL when `STORE_URL` is set, else the SQLite file.
    pub fn store_location(&self) -> anyhow::Result<crate::store::Location> {
        let Some(url) = &self.store_url else {
            return Ok(crate::store::Location::Sqlite(self.audit_db.clone()));
        };
        anyhow::ensure!(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "{} must be a postgres:// URL (got {:?}); leave it unset to keep the store in the \
             SQLite file {}",
            env::STORE_URL,
            crate::store::postgres::redacted(url),
            env::AUDIT_DB
        );
        let password = match &self.store_password_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| {
                        format!("reading {} {}", env::STORE_PASSWORD_FILE, path.display())
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
            None => None,
        };
        Ok(crate::store::Location::Postgres {
            url: url.clone(),
            password,
            ca_file: self.store_ca_file.clone(),
        })
    }
}

impl Config {
    pub fn park_timeout(&self) -> Duration {
        Duration::from_secs(self.park_timeout_sec)
    }

    /// The admin token, unless it is unset or blank.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref().filter(|t| !t.trim().is_empty())
    }

    /// Who may use the admin API.
    pub fn admin_access(&self) -> AdminAccess {
        match (self.admin_token(), self.insecure_open_admin) {
            (Some(token), _) => AdminAccess::Token(token.trim().to_owned()),
            (None, true) => AdminAccess::Open,
            (None, false) => AdminAccess::Closed,
        }
    }
}

/// Who may use the admin API's reviewer endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAccess {
    /// The holder of this bearer token (hitl-ui).
    Token(String),
    /// Anyone (`--insecure-open-admin`).
    Open,
    /// Nobody: no token configured and no opt-out. Parks can only expire.
    Closed,
}

impl Config {
    /// The Check port's mTLS files, if all three are set; an error if only some are.
    pub fn grpc_tls(&self) -> Result<Option<GrpcTls>, crate::tls::TlsError> {
        GrpcTls::from_parts(
            self.grpc_tls_cert_file.as_deref(),
            self.grpc_tls_key_file.as_deref(),
            self.grpc_client_ca_file.as_deref(),
        )
    }

    /// The requester-token verifier, if a JWKS is configured; an error when it cannot be
    /// built, or when none is and the opt-out is not given.
    pub fn requester_verifier(&self) -> anyhow::Result<Option<Verifier>> {
        let Some(path) = &self.requester_jwks_file else {
            anyhow::ensure!(
                !self.require_verified_requester,
                "no requester JWKS: set {} (with {} and {}) to the keys that sign requester \
                 tokens, or {}=false to park calls without a verified requester as the seed did",
                env::REQUESTER_JWKS_FILE,
                env::REQUESTER_ISSUER,
                env::REQUESTER_AUDIENCES,
                env::REQUIRE_VERIFIED_REQUESTER
            );
            return Ok(None);
        };
        let issuer = self.requester_issuer.as_deref().unwrap_or_default();
        let verifier = Verifier::from_file(
            path,
            issuer,
            &self.requester_audiences,
            Duration::from_secs(self.requester_max_lifetime_sec),
        )
        .with_context(|| {
            format!(
                "loading the requester JWKS {} ({} {issuer:?}, {} {:?})",
                path.display(),
                env::REQUESTER_ISSUER,
                env::REQUESTER_AUDIENCES,
                self.requester_audiences
            )
        })?;
        if self.reviewer_jwks_file.is_some()
            && self.requester_name_claim != self.reviewer_name_claim
        {
            tracing::warn!(
                requester_claim = %self.requester_name_claim,
                reviewer_claim = %self.reviewer_name_claim,
                "requesters are named by one claim and reviewers by another: separation of duties \
                 holds only if both name a person the same way (set {} and {} to one claim \
                 where `sub` is an opaque id)",
                env::REQUESTER_NAME_CLAIM,
                env::REVIEWER_NAME_CLAIM
            );
        }
        Ok(Some(verifier.naming(&self.requester_name_claim)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_seed() {
        let config = Config::try_parse_from(["hitl-extauth"]).unwrap();
        assert_eq!(config.grpc_port, 9001);
        assert_eq!(config.http_port, 8081);
        assert_eq!(config.park_timeout(), Duration::from_secs(600));
        assert_eq!(config.allowed_methods, AllowList::default());
        assert_eq!(config.admin_token(), None);
        assert_eq!(config.admin_access(), AdminAccess::Closed);
        assert!(!config.insecure_no_approval_key);
        assert!(config.require_verified_requester, "safe by default");
        assert!(
            config.grpc_tls().unwrap().is_none(),
            "plaintext Check port, as the seed"
        );
    }

    #[test]
    fn the_admin_api_opens_only_with_a_token_or_the_opt_out() {
        let config = Config::try_parse_from(["x", "--admin-token", "t0k"]).unwrap();
        assert_eq!(config.admin_access(), AdminAccess::Token("t0k".into()));
        let config = Config::try_parse_from(["x", "--insecure-open-admin"]).unwrap();
        assert_eq!(config.admin_access(), AdminAccess::Open);
    }

    #[test]
    fn the_requester_opt_out_is_explicit() {
        let config =
            Config::try_parse_from(["x", "--require-verified-requester", "false"]).unwrap();
        assert!(!config.require_verified_requester);
        assert!(Config::try_parse_from(["x", "--require-verified-requester", "no"]).is_err());
    }

    #[test]
    fn without_a_jwks_only_the_opt_out_starts() {
        let config = Config::try_parse_from(["x"]).unwrap();
        let err = config.requester_verifier().unwrap_err().to_string();
        assert!(err.contains(env::REQUESTER_JWKS_FILE), "{err}");
        let config =
            Config::try_parse_from(["x", "--require-verified-requester", "false"]).unwrap();
        assert!(config.requester_verifier().unwrap().is_none());
    }

    #[test]
    fn a_jwks_needs_its_issuer_and_audience() {
        let dir = std::env::temp_dir().join(format!("hitl-jwks-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwks.json");
        let issuer = crate::requester::verify::tests::TestIssuer::new();
        std::fs::write(&path, issuer.jwks()).unwrap();
        let file = path.to_str().unwrap();
        let config = Config::try_parse_from(["x", "--requester-jwks-file", file]).unwrap();
        assert!(config.requester_verifier().is_err());
        let config = Config::try_parse_from([
            "x",
            "--requester-jwks-file",
            file,
            "--requester-issuer",
            "https://issuer.test",
            "--requester-audiences",
            "a,gateway.test",
        ])
        .unwrap();
        let verifier = config.requester_verifier().unwrap().unwrap();
        assert_eq!(
            verifier.verify(&issuer.mint("bob")).unwrap().as_str(),
            "bob"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn half_a_tls_setup_is_refused() {
        let config = Config::try_parse_from(["x", "--grpc-tls-cert-file", "c.pem"]).unwrap();
        let err = config.grpc_tls().unwrap_err().to_string();
        assert!(err.contains(env::GRPC_TLS_KEY_FILE), "{err}");
        let config = Config::try_parse_from([
            "x",
            "--grpc-tls-cert-file",
            "c.pem",
            "--grpc-tls-key-file",
            "k.pem",
            "--grpc-client-ca-file",
            "ca.pem",
        ])
        .unwrap();
        assert!(config.grpc_tls().unwrap().is_some());
    }

    #[test]
    fn refuses_a_bad_allow_list_and_zero_timeout() {
        assert!(Config::try_parse_from(["x", "--allowed-methods", "tools/*"]).is_err());
        assert!(Config::try_parse_from(["x", "--park-timeout-sec", "0"]).is_err());
    }

    #[test]
    fn blank_token_means_none() {
        let config = Config::try_parse_from(["x", "--admin-token", " "]).unwrap();
        assert_eq!(config.admin_token(), None);
    }

    #[test]
    fn help_renders() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}
