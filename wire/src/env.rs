//! Each service's environment contract: the variables it reads and their defaults, one module
//! per service. The services' clap flags take their `env` names and defaults from here, and
//! the harness sets the same names for the processes it starts, so a launcher and a service
//! cannot disagree. The names and defaults are a published contract (`docs/decisions.md`):
//! deployments set them. No other module of the workspace spells one of these names
//! (`tests/tidy.rs`).

pub mod chat;
pub mod extauth;
pub mod http;
pub mod mockdb;
pub mod model;
pub mod oidc_provider;
pub mod ui;

/// Names more than one service reads, each defined once; the service modules re-export the
/// ones they take.
pub mod shared {
    /// Address to bind.
    pub const BIND_ADDR: &str = "BIND_ADDR";
    /// Where a container binds by default: all interfaces.
    pub const DEFAULT_BIND_ADDR: &str = "0.0.0.0";
    /// The TCP port of mock-db-mcp and the scripted model.
    pub const PORT: &str = "PORT";
    /// The HTTP port of hitl-extauth's admin API, hitl-ui and lab-chat.
    pub const HTTP_PORT: &str = "HTTP_PORT";
    /// Host names (optionally `host:port`) a server answers to, comma-separated.
    pub const ALLOWED_HOSTS: &str = "ALLOWED_HOSTS";
    /// Run without an approval key (hitl-extauth signs no tokens, mock-db-mcp requires
    /// none). Logged as a warning at every start.
    pub const INSECURE_NO_APPROVAL_KEY: &str = "INSECURE_NO_APPROVAL_KEY";
    /// The key that signs session cookies (random per start when unset).
    pub const SESSION_SECRET: &str = "SESSION_SECRET";
    /// [`SESSION_SECRET`] read from a file (`crate::secret`; not both).
    pub const SESSION_SECRET_FILE: &str = "SESSION_SECRET_FILE";
    /// Mark cookies `Secure` (behind TLS).
    pub const COOKIE_SECURE: &str = "COOKIE_SECURE";
    /// How every service writes its log: [`LOG_FORMAT_TEXT`] (the default) or
    /// [`LOG_FORMAT_JSON`]. Any other value refuses to start.
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
    /// One human-readable line per event; colours only when stdout is a terminal.
    pub const LOG_FORMAT_TEXT: &str = "text";
    /// One JSON object per line.
    pub const LOG_FORMAT_JSON: &str = "json";
}
