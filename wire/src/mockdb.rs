//! mock-db-mcp's observable state: `GET /state`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// `GET /state`: the seed's shape (`schema_version`, `row_counts`, `audit`), audit newest last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub schema_version: String,
    pub row_counts: BTreeMap<String, u64>,
    /// Bounded: the most recent entries only, oldest first, newest last.
    pub audit: Vec<AuditEntry>,
}

/// One mutation that reached the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Monotonic per process start; lets observers tell "new since" without clocks.
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// MCP tool name, e.g. `truncate_table`.
    pub tool: String,
    /// The exact arguments the tool was called with.
    pub args: serde_json::Value,
    /// Identity headers that reached the server (see [`crate::headers::IDENTITY`]).
    pub caller: BTreeMap<String, String>,
    /// What changed, tool-specific: `{"rows_deleted": 3}`, `{"from": "v2", "to": "v3"}`.
    pub detail: serde_json::Value,
}
