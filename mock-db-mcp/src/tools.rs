//! The two MCP servers: `/public/mcp` (`cluster_db_query`, `truncate_table`) and
//! `/privileged/mcp` (`run_migration`). Each tool validates its arguments, calls the
//! [`Store`], and answers with structured JSON.
//!
//! Error split: a call the tool understood but refuses or cannot do (bad SQL, a write, an
//! unknown table, …) is a tool result with `isError: true` and a message saying what was
//! wrong and what is allowed — the model sees it and can correct itself. Arguments that do
//! not fit the schema (missing, extra, mistyped, unknown version) are also `isError` results:
//! rmcp reports argument errors that way, as the MCP spec asks. An unknown tool is a
//! JSON-RPC `invalid params` error; a broken database is a JSON-RPC internal error.

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Extensions,
        Implementation, ServerCapabilities, ServerConfig,
    },
    schemars::{self, JsonSchema},
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use std::sync::Arc;

use hitl_wire::approval::{self, Claims, Refusal, Verifier};
use rmcp::model::ErrorCode;
use serde::Deserialize;
use serde_json::json;

use crate::{
    audit::{self, Caller},
    db::{QueryError, SchemaVersion, TruncateError, query::MAX_ROWS},
    http::ReceivedBody,
    store::Store,
};

const QUERY_DESCRIPTION: &str = "Run one read-only SQL query (SQLite dialect) on the orders \
database and get the rows back as JSON objects, plus the schema_version they were read at. Use \
it for any question about orders or customers: lookups, WHERE filters, JOINs, COUNT/SUM/GROUP \
BY. Tables: orders(id, customer, amount, status; shipped_at from schema v3), customers(name, \
tier), refunds(id, order_id, amount, reason, created_at; from schema v4). Join with \
orders.customer = customers.name. Send exactly one SELECT (or WITH … SELECT) statement of at \
most 8192 bytes; at most 200 rows come back (`truncated` says when more matched). It never \
changes anything: writes, schema changes, ATTACH and PRAGMA assignments are refused with an \
error. Safe to call at any time.";

const TRUNCATE_DESCRIPTION: &str = "Delete every row of one table in the orders database (the \
table itself and its columns stay). DESTRUCTIVE and irreversible: use it only when the user \
explicitly asks to empty, clear or truncate a table, never to answer a question (use \
cluster_db_query for that). `table` must be the exact name of an existing table: orders, \
customers, or refunds (from schema v4); any other name is refused with the list of valid \
ones. Returns how many rows were deleted. Every call is audited with the caller's identity.";

const MIGRATION_DESCRIPTION: &str = "Move the shared orders database schema to a version. \
Versions: v1 (base tables customers and orders), v2 (adds an index on orders.customer; the \
starting version), v3 (adds the column orders.shipped_at and its index), v4 (adds the refunds \
table). Applies each step between the current and the requested version in order, up or down; \
going down removes what the later versions added, including their data (e.g. v4 -> v3 drops \
the refunds table). Asking for the current version changes nothing and says so. DESTRUCTIVE \
and affects shared infrastructure: call it only when the user explicitly asks for a schema \
migration. Returns from, to and the steps applied. Every call is audited.";

/// `cluster_db_query` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryParams {
    /// Exactly one read-only SQL statement (SELECT or WITH … SELECT), at most 8192 bytes.
    pub sql: String,
}

/// `truncate_table` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TruncateParams {
    /// Exact name of an existing table: orders, customers, or refunds (from schema v4).
    pub table: String,
}

/// `run_migration` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrationParams {
    /// Target schema version, v1 to v4.
    pub version: SchemaVersion,
}

/// The identity headers of the HTTP request this call came in on (none when not over HTTP).
fn caller(extensions: &Extensions) -> Caller {
    extensions
        .get::<http::request::Parts>()
        .map(|parts| audit::caller_from_headers(&parts.headers))
        .unwrap_or_default()
}

fn tool_error(message: impl std::fmt::Display) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_string())])
}

fn internal(err: impl std::fmt::Display) -> ErrorData {
    tracing::error!(%err, "database failure");
    ErrorData::internal_error(format!("database failure: {err}"), None)
}

/// Answer an unknown tool name with what this endpoint does serve.
fn unknown_tool(name: &str, router: &ToolRouter<impl Send + Sync + 'static>) -> ErrorData {
    let served: Vec<String> = router
        .list_all()
        .into_iter()
        .map(|t| t.name.into())
        .collect();
    ErrorData::invalid_params(
        format!(
            "unknown tool {name:?}: this endpoint serves {}",
            served.join(", ")
        ),
        Some(json!({ "tools": served })),
    )
}

/// `/public/mcp`.
#[derive(Clone)]
pub struct PublicTools {
    store: Store,
    /// Built once: rmcp makes a new service per stateless request (and another to look up a
    /// tool's schema), and cloning an `Arc` costs nothing, unlike the tools and schemas.
    tool_router: Arc<ToolRouter<Self>>,
}

impl PublicTools {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            tool_router: Arc::new(Self::tool_router()),
        }
    }
}

#[tool_router]
impl PublicTools {
    #[tool(
        name = "cluster_db_query",
        description = QUERY_DESCRIPTION,
        annotations(
            title = "Query the orders database (read-only)",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn cluster_db_query(
        &self,
        Parameters(QueryParams { sql }): Parameters<QueryParams>,
    ) -> Result<CallToolResult, ErrorData> {
        match self.store.query(sql).await {
            Ok((output, version)) => {
                // Reads are most of the traffic: nothing above debug per query.
                tracing::debug!(
                    rows = output.row_count,
                    truncated = output.truncated,
                    "query"
                );
                let mut value = json!({ "schema_version": version });
                if let (Some(obj), Ok(serde_json::Value::Object(rest))) =
                    (value.as_object_mut(), serde_json::to_value(&output))
                {
                    obj.extend(rest);
                }
                if output.truncated {
                    value["note"] = json!(format!(
                        "more rows matched; only the first {} (or fewer, by size) are returned",
                        MAX_ROWS
                    ));
                }
                Ok(CallToolResult::structured(value))
            }
            Err(QueryError::Internal(err)) => Err(internal(err)),
            Err(refusal) => {
                tracing::info!(%refusal, "query refused");
                Ok(tool_error(refusal))
            }
        }
    }

    #[tool(
        name = "truncate_table",
        description = TRUNCATE_DESCRIPTION,
        annotations(
            title = "Empty a table (destructive)",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn truncate_table(
        &self,
        Parameters(TruncateParams { table }): Parameters<TruncateParams>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = caller(&extensions);
        match self.store.truncate(table.clone(), caller.clone()).await {
            Ok(entry) => {
                tracing::info!(%table, ?caller, detail = %entry.detail, "truncated");
                Ok(CallToolResult::structured(json!({
                    "table": table,
                    "rows_deleted": entry.detail["rows_deleted"],
                    "audit_seq": entry.seq,
                })))
            }
            Err(TruncateError::UnknownTable(err)) => Ok(tool_error(err)),
            Err(TruncateError::Internal(err)) => Err(internal(err)),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PublicTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mock-db-mcp/public",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "The orders database (SQLite). Read with cluster_db_query (safe, read-only). \
                 truncate_table empties a table: destructive, only on the user's explicit request.",
            )
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.tool_router.get(&request.name).is_none() {
            return Err(unknown_tool(&request.name, &*self.tool_router));
        }
        self.tool_router
            .call(ToolCallContext::new(self, request, context))
            .await
    }
}

/// `/privileged/mcp`. Every `tools/call` is checked against its approval token before
/// anything runs (see [`PrivilegedTools::approve`]).
#[derive(Clone)]
pub struct PrivilegedTools {
    store: Store,
    /// `None`: running with `--insecure-no-approval-key`, every call executes.
    approvals: Option<Arc<Verifier>>,
    /// Built once: rmcp makes a new service per stateless request (and another to look up a
    /// tool's schema), and cloning an `Arc` costs nothing, unlike the tools and schemas.
    tool_router: Arc<ToolRouter<Self>>,
}

/// The verified approval a call runs under (put into the call's extensions).
#[derive(Debug, Clone)]
struct Approved(Claims);

impl PrivilegedTools {
    pub fn new(store: Store, approvals: Option<Arc<Verifier>>) -> Self {
        Self {
            store,
            approvals,
            tool_router: Arc::new(Self::tool_router()),
        }
    }

    /// The approval check, at the point of dispatch, on what rmcp is about to run: the
    /// token in `x-hitl-approval` must verify against the gate's key, be unexpired and
    /// unused, name this tool, and carry the sha256 of the exact bytes this server
    /// received. A refusal is audited and answered with a JSON-RPC error naming the check.
    async fn approve(
        &self,
        request: &CallToolRequestParams,
        extensions: &Extensions,
    ) -> Result<Option<Claims>, ErrorData> {
        let Some(verifier) = &self.approvals else {
            return Ok(None);
        };
        let parts = extensions.get::<http::request::Parts>();
        let token = parts
            .and_then(|p| p.headers.get(approval::HEADER))
            .map(|v| v.to_str().unwrap_or("\u{0}not text"));
        let body = parts.and_then(|p| p.extensions.get::<ReceivedBody>());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let verdict = match body {
            Some(ReceivedBody(bytes)) => verifier.verify(token, bytes, &request.name, now),
            None => Err(Refusal::Malformed(
                "the request body was not read as JSON, so its bytes cannot be checked".into(),
            )),
        };
        let refusal = match verdict {
            Ok(claims) => return Ok(Some(claims)),
            Err(refusal) => refusal,
        };
        let caller = caller(extensions);
        let args = request
            .arguments
            .clone()
            .map_or(serde_json::Value::Null, serde_json::Value::Object);
        tracing::warn!(tool = %request.name, check = refusal.check(), %refusal, ?caller, "refused");
        self.store
            .refuse(
                request.name.to_string(),
                args,
                caller,
                refusal.check(),
                refusal.to_string(),
            )
            .await
            .map_err(internal)?;
        Err(ErrorData::new(
            ErrorCode(approval::REFUSED_CODE as i32),
            format!("refused: {refusal}; nothing was executed"),
            Some(json!({ "check": refusal.check() })),
        ))
    }
}

#[tool_router]
impl PrivilegedTools {
    #[tool(
        name = "run_migration",
        description = MIGRATION_DESCRIPTION,
        annotations(
            title = "Migrate the shared schema (destructive)",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn run_migration(
        &self,
        Parameters(MigrationParams { version }): Parameters<MigrationParams>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = caller(&extensions);
        let approval = extensions.get::<Approved>().map(|a| a.0.clone());
        let (migration, entry) = self
            .store
            .migrate(version, caller.clone(), approval.clone())
            .await
            .map_err(internal)?;
        tracing::info!(
            from = %migration.from, to = %migration.to, ?caller,
            approval = approval.as_ref().map(|a| a.id.as_str()).unwrap_or("-"),
            reviewer = approval.as_ref().map(|a| a.reviewer.as_str()).unwrap_or("-"),
            "migration"
        );
        let message = if migration.changed() {
            format!(
                "migrated the schema from {} to {}",
                migration.from, migration.to
            )
        } else {
            format!("already at {}; nothing to do", migration.to)
        };
        Ok(CallToolResult::structured(json!({
            "from": migration.from,
            "to": migration.to,
            "changed": migration.changed(),
            "steps": migration.steps,
            "message": message,
            "audit_seq": entry.seq,
        })))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PrivilegedTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mock-db-mcp/privileged",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Schema migrations for the shared orders database. run_migration changes shared \
                 infrastructure: destructive, only on the user's explicit request.",
            )
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        mut context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.tool_router.get(&request.name).is_none() {
            return Err(unknown_tool(&request.name, &*self.tool_router));
        }
        if let Some(claims) = self.approve(&request, &context.extensions).await? {
            context.extensions.insert(Approved(claims));
        }
        self.tool_router
            .call(ToolCallContext::new(self, request, context))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::query::MAX_SQL_BYTES;

    /// The `#[tool(name = …)]` attributes take only literals: they must spell the names of
    /// `hitl_wire::mockdb::tools`, which the gate, the harness and the UI use.
    #[test]
    fn each_endpoint_serves_the_wire_tool_names() {
        use hitl_wire::mockdb::tools;
        fn names<S: Send + Sync + 'static>(router: ToolRouter<S>) -> Vec<String> {
            let mut names: Vec<String> = router
                .list_all()
                .into_iter()
                .map(|t| t.name.into())
                .collect();
            names.sort();
            names
        }
        assert_eq!(names(PublicTools::tool_router()), tools::PUBLIC);
        assert_eq!(names(PrivilegedTools::tool_router()), tools::PRIVILEGED);
    }

    #[test]
    /// The descriptions quote the limits as text; keep them in step with the code.
    fn descriptions_state_the_real_limits() {
        assert!(QUERY_DESCRIPTION.contains(&format!("{MAX_SQL_BYTES} bytes")));
        assert!(QUERY_DESCRIPTION.contains(&format!("{MAX_ROWS} rows")));
    }
}
