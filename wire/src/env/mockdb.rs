//! mock-db-mcp's environment (the orders database), besides the connection limits of
//! [`super::http`].

pub use super::shared::{
    ALLOWED_HOSTS, BIND_ADDR, DEFAULT_BIND_ADDR, INSECURE_NO_APPROVAL_KEY, PORT,
};

/// [`PORT`]'s default.
pub const DEFAULT_PORT: u16 = 8080;
/// SQLite file to keep the data in (memory when unset).
pub const DB_PATH: &str = "DB_PATH";
/// Serve `POST /reset` (1/0, true/false, yes/no, on/off); needs [`RESET_TOKEN`].
pub const ENABLE_RESET: &str = "ENABLE_RESET";
/// The credential `POST /reset` demands (`Authorization: Bearer <token>`), so that no web page
/// the lab's user opens can reset the database with a cross-site POST. Required with
/// [`ENABLE_RESET`]; the lab generates it (a file in the local lab, a Secret in kind).
pub const RESET_TOKEN: &str = "RESET_TOKEN";
/// [`RESET_TOKEN`] read from a file (`crate::secret`; not both).
pub const RESET_TOKEN_FILE: &str = "RESET_TOKEN_FILE";
/// File holding the gate's Ed25519 verifying (public) key (32 bytes, hex).
pub const APPROVAL_VERIFYING_KEY_FILE: &str = "APPROVAL_VERIFYING_KEY_FILE";
/// Comma-separated browser origins allowed on every route (`scheme://host[:port]`, port `*`
/// for any, or `null`). A request without `Origin` always passes; one with an Origin not
/// listed gets 403. Empty (the default): only the server's own loopback origins
/// (`http://localhost:PORT`, `http://127.0.0.1:PORT`, `http://[::1]:PORT`).
pub const ALLOWED_ORIGINS: &str = "ALLOWED_ORIGINS";
/// Wall-clock budget of one `cluster_db_query` statement (`1s`, `500ms`; default 1 s).
pub const QUERY_TIME_BUDGET: &str = "QUERY_TIME_BUDGET";
/// SQLite heap budget of the process, so of all queries together (`64MiB`, bytes; default
/// 64 MiB).
pub const QUERY_MEMORY_BUDGET: &str = "QUERY_MEMORY_BUDGET";
