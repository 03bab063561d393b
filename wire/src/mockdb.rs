//! mock-db-mcp's HTTP surface: its paths, its tool names, and its observable state
//! (`GET /state`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Paths mock-db-mcp serves (one port, two MCP servers by path).
pub mod paths {
    /// MCP server with `cluster_db_query` and `truncate_table`.
    pub const PUBLIC_MCP: &str = "/public/mcp";
    /// MCP server with `run_migration` (gated at the gateway).
    pub const PRIVILEGED_MCP: &str = "/privileged/mcp";
    /// `GET`: [`super::State`].
    pub const STATE: &str = "/state";
    /// `GET`: 200 once the database is open.
    pub use crate::health::HEALTHZ;
    /// `GET`: 200 while the process serves.
    pub use crate::health::LIVEZ;
    /// `GET`: 200 while the database answers a query, else 503 with the reason.
    pub use crate::health::READYZ;
    /// `POST` (only with `--enable-reset`, and only with `Authorization: Bearer <RESET_TOKEN>`):
    /// restore the seed data and schema, answer [`super::State`].
    pub const RESET: &str = "/reset";
}

/// The JSON body of mock-db-mcp's own HTTP refusals (a bad `Origin`, …): `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// The MCP tool names, as they appear in `tools/list` and `tools/call`.
pub mod tools {
    /// Read-only SQL (`/public/mcp`).
    pub const CLUSTER_DB_QUERY: &str = "cluster_db_query";
    /// Empties one table (`/public/mcp`).
    pub const TRUNCATE_TABLE: &str = "truncate_table";
    /// Moves the schema to a version (`/privileged/mcp`).
    pub const RUN_MIGRATION: &str = "run_migration";
    /// Not an MCP tool: the `tool` of the audit entry `POST /reset` appends.
    pub const RESET: &str = "reset";
    /// The lab's three tools, by rising risk.
    pub const ALL: [&str; 3] = [CLUSTER_DB_QUERY, TRUNCATE_TABLE, RUN_MIGRATION];
    /// The tools of `/public/mcp`.
    pub const PUBLIC: [&str; 2] = [CLUSTER_DB_QUERY, TRUNCATE_TABLE];
    /// The tools of `/privileged/mcp`.
    pub const PRIVILEGED: [&str; 1] = [RUN_MIGRATION];
}

/// `GET /state`'s query: `?audit=none` answers the same shape with `audit: []`, for readers
/// that want only the schema version and row counts (hitl-ui reads it for every batch of
/// parked migrations, so it must stay cheap however long the audit is).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateQuery {
    #[serde(default)]
    pub audit: AuditPart,
}

/// How much of the audit `GET /state` carries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditPart {
    /// Every entry kept (the seed's `/state`).
    #[default]
    All,
    /// None.
    None,
}

/// `GET /state`: `schema_version`, `row_counts`, `audit` (newest last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub schema_version: String,
    pub row_counts: BTreeMap<String, u64>,
    /// Bounded: the most recent entries only, oldest first, newest last.
    pub audit: Vec<AuditEntry>,
}

/// One mutation that reached the database, or one privileged call refused before it could
/// (`refused` set: nothing ran).
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
    /// What changed, tool-specific: `{"rows_deleted": 3}`, `{"from": "v2", "to": "v3"}`;
    /// for a refusal `{"check": …, "reason": …}`.
    pub detail: serde_json::Value,
    /// The approval (hitl-extauth's parked-call id) whose verified token let a privileged
    /// call run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// Who approved that call, as its approval token names them (every approver when the
    /// rule needed several).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
    /// The approval policy's rule the approval was given under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Set when the call was refused and did not run: the approval check that failed
    /// (`missing`, `signature`, `expired`, `body-sha256`, `replayed`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl AuditEntry {
    /// Whether this entry is a call that ran (not a refusal).
    pub fn executed(&self) -> bool {
        self.refused.is_none()
    }
}
