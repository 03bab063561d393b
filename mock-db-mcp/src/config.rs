//! Command line and environment: every setting has a flag and an environment variable.

use std::{net::IpAddr, path::PathBuf};

use clap::Parser;
use hitl_wire::approval;

use crate::db::Location;

/// The orders database the agent works on, served as MCP over Streamable HTTP.
///
/// One port, two MCP servers by path: /public/mcp (cluster_db_query, truncate_table) and
/// /privileged/mcp (run_migration); plus GET /state (schema version, row counts, audit log),
/// GET /healthz and, with --enable-reset, POST /reset. Both MCP endpoints are stateless: every
/// POST is self-contained, so a gateway may route each request independently.
#[derive(Debug, Parser)]
#[command(name = "mock-db-mcp", version)]
pub struct Config {
    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to bind: all interfaces by default (containers); tests pass 127.0.0.1.
    #[arg(long, env = "BIND_ADDR", default_value = "0.0.0.0")]
    pub bind_addr: IpAddr,

    /// SQLite file to keep the data in (created and seeded if missing, reused otherwise).
    /// Without it the database lives in memory and starts from the seed on every start.
    #[arg(long = "db", env = "DB_PATH", value_name = "PATH")]
    pub db_path: Option<PathBuf>,

    /// Serve POST /reset, which restores the seed data and schema v2 (for scene runners).
    /// Off by default: /reset answers 404. The variable takes 1/0, true/false, yes/no, on/off.
    #[arg(
        long,
        env = "ENABLE_RESET",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub enable_reset: bool,

    /// Accepted `Host` header values for the MCP endpoints (comma-separated, e.g.
    /// `localhost,mock-db-mcp:8080`): DNS-rebinding protection. Empty (the default) accepts
    /// any host, as a service behind a gateway must.
    #[arg(
        long,
        env = "ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOSTS"
    )]
    pub allowed_hosts: Vec<String>,

    /// File holding the gate's Ed25519 verifying (public) key, hex. /privileged/mcp executes
    /// a tools/call only with an `x-hitl-approval` token that verifies against it, is
    /// unexpired and unused, and whose sha256 is that of the bytes received. Required unless
    /// --insecure-no-approval-key.
    #[arg(long, env = approval::env::VERIFYING_KEY_FILE, value_name = "PATH")]
    pub approval_verifying_key_file: Option<PathBuf>,

    /// Execute privileged tool calls without any approval token, as the seed lab did (anyone
    /// who reaches the port can run a migration). Logged as a warning at every start.
    #[arg(
        long,
        env = approval::env::INSECURE_NO_KEY,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_no_approval_key: bool,
}

impl Config {
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
        assert_eq!(config.allowed_hosts, ["localhost", "mock-db-mcp:8080"]);
    }
}
