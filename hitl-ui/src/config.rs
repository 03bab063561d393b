//! Command line and environment: everything hitl-ui can be told at start-up.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use clap::Parser;
use hitl_wire::env::ui as env;

/// The platform reviewer's approval queue for tool calls parked at the gateway.
///
/// Shows every call hitl-extauth is holding as a live card (pushed, not polled), lets a
/// signed-in reviewer approve or reject it with a reason that goes back to the agent verbatim,
/// and lists past decisions. The browser only ever talks to this process: the admin API of
/// hitl-extauth and its token stay server-side.
///
/// Who may decide: set TRUSTED_USER_HEADER when an auth proxy (e.g. oauth2-proxy) sits in front,
/// OIDC_ISSUER_URL (with OIDC_CLIENT_ID, OIDC_CLIENT_SECRET_FILE) to sign reviewers in at an
/// OpenID Provider, and/or REVIEWER_CREDENTIALS / REVIEWER_CREDENTIALS_FILE for the built-in
/// sign-in. With none, the queue is read-only.
#[derive(Debug, Clone, Parser)]
#[command(name = "hitl-ui", version)]
pub struct Config {
    /// Port to serve the UI on.
    #[arg(long, env = env::HTTP_PORT, default_value_t = env::DEFAULT_HTTP_PORT)]
    pub http_port: u16,

    /// Address to bind (all interfaces in a container; 127.0.0.1 for local runs and tests).
    #[arg(long, env = env::BIND_ADDR, default_value = env::DEFAULT_BIND_ADDR)]
    pub bind_addr: IpAddr,

    /// Base URL of hitl-extauth's admin API (`/pending`, `/decide`, `/history`, `/events`).
    #[arg(
        long,
        env = env::EXTAUTH_ADMIN_URL,
        default_value = env::DEFAULT_EXTAUTH_ADMIN_URL
    )]
    pub extauth_admin_url: String,

    /// Bearer token for hitl-extauth's admin API, if it requires one. Used server-side only;
    /// it never reaches a browser.
    #[arg(long, env = env::EXTAUTH_ADMIN_TOKEN, hide_env_values = true)]
    pub extauth_admin_token: Option<String>,

    /// HITL_EXTAUTH_ADMIN_TOKEN read from a file instead (a mounted Secret; not both; one trailing newline
    /// dropped).
    #[arg(long, env = env::EXTAUTH_ADMIN_TOKEN_FILE, value_name = "PATH")]
    pub extauth_admin_token_file: Option<PathBuf>,

    /// mock-db-mcp's `GET /state` URL, read live for the current schema version shown on
    /// `run_migration` cards ("Schema v2 → v3"). Unset or unreachable: shown as unknown.
    #[arg(long, env = env::MOCK_DB_STATE_URL)]
    pub mock_db_state_url: Option<String>,

    /// Request header that carries the reviewer's identity, set by a trusted auth proxy in
    /// front of this UI (e.g. `X-Forwarded-User` from oauth2-proxy). Off unless set: only set it
    /// when every request really passes through that proxy, since anyone can send the header.
    #[arg(long, env = env::TRUSTED_USER_HEADER)]
    pub trusted_user_header: Option<String>,

    /// The auth proxy's addresses (IPs or CIDRs, comma-separated): the trusted user header is
    /// believed only on connections from them, and ignored (logged) from anyone else. The
    /// default, loopback, fits a proxy beside hitl-ui (a sidecar in its pod).
    #[arg(long, env = env::TRUSTED_PROXY_ADDRS, value_delimiter = ',', default_value = env::DEFAULT_TRUSTED_PROXY_ADDRS)]
    pub trusted_proxy_addrs: Vec<String>,

    /// Built-in sign-in accounts, `user:password` pairs separated by commas
    /// (e.g. `alice:secret,bob:secret2`). For the lab; prefer REVIEWER_CREDENTIALS_FILE.
    #[arg(long, env = env::REVIEWER_CREDENTIALS, hide_env_values = true)]
    pub reviewer_credentials: Option<String>,

    /// File with built-in sign-in accounts, `user:password` one per line or comma-separated
    /// (e.g. a mounted Kubernetes Secret). `#` starts a comment line.
    #[arg(long, env = env::REVIEWER_CREDENTIALS_FILE)]
    pub reviewer_credentials_file: Option<PathBuf>,

    /// Refuse an approval by the reviewer who asked for the call (requester identity from the
    /// parked request's headers). Rejecting your own call is always allowed.
    #[arg(
        long,
        env = env::SEPARATION_OF_DUTIES,
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub separation_of_duties: bool,

    /// Key that signs session cookies and CSRF tokens. Random per start if unset (sign-ins
    /// then last until a restart); set it when running more than one replica.
    #[arg(long, env = env::SESSION_SECRET, hide_env_values = true)]
    pub session_secret: Option<String>,

    /// SESSION_SECRET read from a file instead (a mounted Secret; not both; one trailing newline
    /// dropped).
    #[arg(long, env = env::SESSION_SECRET_FILE, value_name = "PATH")]
    pub session_secret_file: Option<PathBuf>,

    /// How long a built-in sign-in lasts.
    #[arg(long, env = env::SESSION_TTL, default_value = env::DEFAULT_SESSION_TTL, value_parser = |s: &str| hitl_wire::duration::parse_positive(env::SESSION_TTL, s))]
    pub session_ttl: Duration,

    /// Mark cookies `Secure` (serve over HTTPS only). Off by default for the plain-http lab.
    #[arg(
        long,
        env = env::COOKIE_SECURE,
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub cookie_secure: bool,

    /// Host names (and optionally ports) this UI answers to, comma-separated, e.g.
    /// `hitl-ui.example.com,localhost:8090`: DNS-rebinding protection. A request naming
    /// another `Host` is refused (421). `*` accepts any host (loudly logged).
    #[arg(
        long,
        env = env::ALLOWED_HOSTS,
        default_value = hitl_serve::hosts::DEFAULT,
        value_name = "HOSTS"
    )]
    pub allowed_hosts: String,

    /// OpenID Connect sign-in: the provider's issuer URL (e.g. Dex, Keycloak, Okta, Entra).
    /// With it, the sign-in page offers the provider beside any built-in accounts; needs
    /// OIDC_CLIENT_ID and OIDC_CLIENT_SECRET_FILE.
    #[arg(long, env = env::OIDC_ISSUER_URL)]
    pub oidc_issuer_url: Option<String>,

    /// hitl-ui's client id at the provider (also the gate's REVIEWER_AUDIENCES).
    #[arg(long, env = env::OIDC_CLIENT_ID)]
    pub oidc_client_id: Option<String>,

    /// File holding hitl-ui's client secret at the provider (a mounted Secret).
    #[arg(long, env = env::OIDC_CLIENT_SECRET_FILE)]
    pub oidc_client_secret_file: Option<PathBuf>,

    /// Where the provider sends the browser back, `https://<hitl-ui>/oidc/callback`, as
    /// registered there. Unset: `/oidc/callback` on the allowed Host the browser used.
    #[arg(long, env = env::OIDC_REDIRECT_URL)]
    pub oidc_redirect_url: Option<String>,

    /// Scopes to ask for, space-separated (`groups` is Dex's and Okta's; Keycloak and Entra
    /// put groups in the token by their own configuration).
    #[arg(long, env = env::OIDC_SCOPES, default_value = env::DEFAULT_OIDC_SCOPES)]
    pub oidc_scopes: String,

    /// The ID-token claim that names the reviewer (as the gate's REVIEWER_NAME_CLAIM).
    #[arg(long, env = env::OIDC_NAME_CLAIM, default_value = env::DEFAULT_OIDC_NAME_CLAIM)]
    pub oidc_name_claim: String,

    /// The ID-token claim that lists the reviewer's groups (as the gate's
    /// REVIEWER_GROUPS_CLAIM).
    #[arg(long, env = env::OIDC_GROUPS_CLAIM, default_value = env::DEFAULT_OIDC_GROUPS_CLAIM)]
    pub oidc_groups_claim: String,

    /// Connection limits (header-read and idle timeouts, body limit: 64 KiB unless set).
    #[command(flatten)]
    pub http: hitl_serve::Limits,
}

impl Config {
    /// Each secret from its `*_FILE` variable where that is set (`hitl_wire::secret`).
    pub fn read_secret_files(mut self) -> Result<Self, hitl_wire::secret::SecretError> {
        use hitl_wire::secret::value_or_file;
        self.extauth_admin_token = value_or_file(
            env::EXTAUTH_ADMIN_TOKEN,
            self.extauth_admin_token.take(),
            env::EXTAUTH_ADMIN_TOKEN_FILE,
            self.extauth_admin_token_file.as_deref(),
        )?;
        self.session_secret = value_or_file(
            env::SESSION_SECRET,
            self.session_secret.take(),
            env::SESSION_SECRET_FILE,
            self.session_secret_file.as_deref(),
        )?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn command_line_is_consistent() {
        Config::command().debug_assert();
    }

    #[test]
    fn durations() {
        let ttl = |text: &str| {
            Config::try_parse_from(["hitl-ui", "--session-ttl", text])
                .map(|c| c.session_ttl)
                .map_err(|e| e.to_string())
        };
        assert_eq!(ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(ttl("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(
            ttl("90"),
            Ok(Duration::from_secs(90)),
            "a bare number is seconds"
        );
        for bad in ["0s", "h"] {
            let error = ttl(bad).unwrap_err();
            assert!(error.contains(env::SESSION_TTL), "{error}");
        }
    }

    #[test]
    fn separation_of_duties_defaults_on_and_can_be_turned_off() {
        let on = Config::try_parse_from(["hitl-ui"]).unwrap();
        assert!(on.separation_of_duties);
        let off = Config::try_parse_from(["hitl-ui", "--separation-of-duties", "false"]).unwrap();
        assert!(!off.separation_of_duties);
    }
}
