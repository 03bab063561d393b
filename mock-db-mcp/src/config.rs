//! Command line and environment: every setting has a flag and an environment variable.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use clap::Parser;
use hitl_wire::env::mockdb as env;

use crate::db::{Location, query::Budgets};

/// The orders database the agent works on, served as MCP over Streamable HTTP.
///
/// One port, two MCP servers by path: /public/mcp (cluster_db_query, truncate_table) and
/// /privileged/mcp (run_migration); plus GET /state (schema version, row counts, audit log),
/// GET /healthz and, with --enable-reset and its token, POST /reset. Both MCP endpoints are
/// stateless: every POST is self-contained, so a gateway may route each request
/// independently. Every route checks `Host` and `Origin` (DNS rebinding, cross-site pages).
#[derive(Debug, Parser)]
#[command(name = "mock-db-mcp", version)]
pub struct Config {
    /// TCP port to listen on.
    #[arg(long, env = env::PORT, default_value_t = env::DEFAULT_PORT)]
    pub port: u16,

    /// Address to bind: all interfaces by default (containers); tests pass 127.0.0.1.
    #[arg(long, env = env::BIND_ADDR, default_value = env::DEFAULT_BIND_ADDR)]
    pub bind_addr: IpAddr,

    /// SQLite file to keep the data in (created and seeded if missing, reused otherwise).
    /// Without it the database lives in memory and starts from the seed on every start.
    #[arg(long = "db", env = env::DB_PATH, value_name = "PATH")]
    pub db_path: Option<PathBuf>,

    /// Serve POST /reset, which restores the seed data and schema v2 (for scene runners), to
    /// callers that present --reset-token. Off by default: /reset answers 404. The variable
    /// takes 1/0, true/false, yes/no, on/off.
    #[arg(
        long,
        env = env::ENABLE_RESET,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub enable_reset: bool,

    /// The credential POST /reset demands as `Authorization: Bearer <token>`; required with
    /// --enable-reset. A cross-site form or `fetch` cannot send it, so no web page can reset
    /// the database.
    #[arg(long, env = env::RESET_TOKEN, hide_env_values = true, value_name = "TOKEN")]
    pub reset_token: Option<String>,

    /// RESET_TOKEN read from a file instead (a mounted Secret; not both; one trailing newline
    /// dropped).
    #[arg(long, env = env::RESET_TOKEN_FILE, value_name = "PATH")]
    pub reset_token_file: Option<PathBuf>,

    /// Accepted `Host` header values on every route (comma-separated `host` or `host:port`,
    /// e.g. `localhost,mock-db-mcp.hitl-lab.svc.cluster.local`): DNS-rebinding protection.
    /// Others get 421. The default is the loopback names on any port; `*` accepts any host
    /// (logged as a warning).
    #[arg(
        long,
        env = env::ALLOWED_HOSTS,
        default_value = hitl_serve::hosts::DEFAULT,
        value_name = "HOSTS"
    )]
    pub allowed_hosts: String,

    /// File holding the gate's Ed25519 verifying (public) key, hex. /privileged/mcp executes
    /// a tools/call only with an `x-hitl-approval` token that verifies against it, is
    /// unexpired and unused, and whose sha256 is that of the bytes received. Required unless
    /// --insecure-no-approval-key.
    #[arg(long, env = env::APPROVAL_VERIFYING_KEY_FILE, value_name = "PATH")]
    pub approval_verifying_key_file: Option<PathBuf>,

    /// Execute privileged tool calls without any approval token (anyone
    /// who reaches the port can run a migration). Logged as a warning at every start.
    #[arg(
        long,
        env = env::INSECURE_NO_APPROVAL_KEY,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_no_approval_key: bool,
    /// Browser origins allowed on every route (comma-separated `scheme://host[:port]`, port
    /// `*` for any, or `null`): DNS-rebinding and cross-site protection, as the MCP spec asks.
    /// A request without `Origin` (every non-browser client) passes; one whose Origin is not
    /// listed gets 403 and nothing runs. Empty (the default): only the server's own loopback
    /// origins, `http://localhost:PORT`, `http://127.0.0.1:PORT` and `http://[::1]:PORT`.
    #[arg(
        long,
        env = env::ALLOWED_ORIGINS,
        value_delimiter = ',',
        value_name = "ORIGINS"
    )]
    pub allowed_origins: Vec<String>,

    /// How long one cluster_db_query statement may run before it is stopped with an error
    /// naming this budget (`1s`, `500ms`).
    #[arg(
        long,
        env = env::QUERY_TIME_BUDGET,
        default_value = "1s",
        value_parser = |s: &str| hitl_wire::duration::parse_positive(env::QUERY_TIME_BUDGET, s),
        value_name = "DURATION"
    )]
    pub query_time_budget: Duration,

    /// SQLite's memory budget for the whole process (every query together): a query that
    /// needs more is stopped with an error naming this budget (`64MiB`, `512KiB`, bytes).
    #[arg(
        long,
        env = env::QUERY_MEMORY_BUDGET,
        default_value = "64MiB",
        value_parser = parse_bytes,
        value_name = "BYTES"
    )]
    pub query_memory_budget: u64,

    /// Connection limits (header-read and idle timeouts, body limit: 64 KiB unless set, the
    /// most the gate forwards).
    #[command(flatten)]
    pub http: hitl_serve::Limits,
}

impl Config {
    /// Each secret from its `*_FILE` variable where that is set (`hitl_wire::secret`).
    pub fn read_secret_files(mut self) -> Result<Self, hitl_wire::secret::SecretError> {
        use hitl_wire::secret::value_or_file;
        self.reset_token = value_or_file(
            env::RESET_TOKEN,
            self.reset_token.take(),
            env::RESET_TOKEN_FILE,
            self.reset_token_file.as_deref(),
        )?;
        Ok(self)
    }
}

/// `64MiB`, `512KiB`, or a bare number of bytes.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 64MiB, 512KiB or 1048576"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        "GiB" => 1024 * 1024 * 1024,
        _ => return Err(format!("`{text}`: unit must be KiB, MiB or GiB")),
    };
    match n.checked_mul(scale) {
        Some(0) | None => Err(format!("`{text}` must be positive and fit in 64 bits")),
        Some(bytes) => Ok(bytes),
    }
}

impl Config {
    pub fn budgets(&self) -> Budgets {
        Budgets {
            time: self.query_time_budget,
            memory_bytes: self.query_memory_budget,
        }
    }

    /// The reset token, when /reset is served; an error naming the fix when the two
    /// settings disagree.
    pub fn reset(&self) -> Result<Option<&str>, String> {
        let token = self.reset_token.as_deref().filter(|t| !t.trim().is_empty());
        match (self.enable_reset, token) {
            (true, Some(token)) => Ok(Some(token)),
            (false, None) => Ok(None),
            (true, None) => Err(format!(
                "{} is set but {} is not: /reset needs a credential (a long random token) \
                 so that no web page can reset the database",
                env::ENABLE_RESET,
                env::RESET_TOKEN
            )),
            (false, Some(_)) => Err(format!(
                "{} is set but {} is not: set both to serve /reset, or neither",
                env::RESET_TOKEN,
                env::ENABLE_RESET
            )),
        }
    }

    pub fn location(&self) -> Location {
        match &self.db_path {
            Some(path) => Location::File(path.clone()),
            None => Location::Memory,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Config::command().debug_assert();
    }

    #[test]
    fn defaults_suit_a_container() {
        let config = Config::try_parse_from(["mock-db-mcp"]).unwrap();
        assert_eq!(config.bind_addr.to_string(), "0.0.0.0");
        assert!(!config.enable_reset);
        assert_eq!(config.location(), Location::Memory);
        assert_eq!(config.budgets(), Budgets::DEFAULT);
        assert!(config.allowed_origins.is_empty());
        assert_eq!(config.allowed_hosts, hitl_serve::hosts::DEFAULT);
        assert_eq!(config.reset(), Ok(None));
    }

    #[test]
    fn reset_needs_its_token() {
        let config = Config::try_parse_from(["mock-db-mcp", "--enable-reset"]).unwrap();
        assert!(config.reset().unwrap_err().contains(env::RESET_TOKEN));
        let config = Config::try_parse_from(["mock-db-mcp", "--reset-token", "t"]).unwrap();
        assert!(config.reset().unwrap_err().contains(env::ENABLE_RESET));
        let config =
            Config::try_parse_from(["mock-db-mcp", "--enable-reset", "--reset-token", "t"])
                .unwrap();
        assert_eq!(config.reset(), Ok(Some("t")));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("1MB").is_err());
    }

    #[test]
    fn flags_override_the_defaults() {
        let config = Config::try_parse_from([
            "mock-db-mcp",
            "--enable-reset",
            "--db",
            "/tmp/orders.db",
            "--port",
            "9000",
            "--allowed-hosts",
            "localhost,mock-db-mcp:8080",
        ])
        .unwrap();
        assert!(config.enable_reset);
        assert_eq!(config.port, 9000);
        assert_eq!(config.location(), Location::File("/tmp/orders.db".into()));
        assert_eq!(config.allowed_hosts, "localhost,mock-db-mcp:8080");
    }
}
