//! `mcp-floor`: the bench's floor for one `cluster_db_query`: an MCP server with mock-db-mcp's
//! transport exactly (rmcp's stateless Streamable HTTP with JSON answers, on hitl-serve's
//! server loop, the same runtime) and one tool of the same name and schema that answers a
//! constant row without SQLite. What mock-db-mcp spends per query beyond this is SQLite, the
//! read-only guards and the store; this much any rmcp server pays per request.
//!
//! Not a database: the bench starts it on a free loopback port (`mcp-floor <port>`), never
//! the lab.

use std::{net::SocketAddr, sync::Arc};

use axum::Router;
use rmcp::{
    ErrorData, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ServerCapabilities, ServerConfig},
    schemars::{self, JsonSchema},
    tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
    },
};
use serde::Deserialize;
use serde_json::json;

/// `cluster_db_query`'s arguments, as mock-db-mcp declares them.
#[derive(Debug, Deserialize, JsonSchema)]
struct QueryParams {
    /// One read-only SQL statement.
    #[allow(dead_code)]
    sql: String,
}

/// The one tool, answering what a three-row count would, without a database.
#[derive(Clone)]
struct Floor {
    tool_router: Arc<ToolRouter<Self>>,
}

#[tool_router]
impl Floor {
    #[tool(
        name = "cluster_db_query",
        description = "Answers a constant row (bench floor)."
    )]
    async fn cluster_db_query(
        &self,
        Parameters(_): Parameters<QueryParams>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::structured(json!({
            "schema_version": "v2",
            "rows": [{"n": 3}],
            "row_count": 1,
            "truncated": false,
        })))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Floor {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: mcp-floor <port> (binds 127.0.0.1)"))?
        .parse()?;
    let floor = Floor {
        tool_router: Arc::new(Floor::tool_router()),
    };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts();
    let app = Router::new().route_service(
        hitl_wire::mockdb::paths::PUBLIC_MCP,
        StreamableHttpService::new(
            move || Ok(floor.clone()),
            NeverSessionManager::default().into(),
            config,
        ),
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    hitl_serve::serve(
        listener,
        app,
        &hitl_serve::Limits::default(),
        hitl_serve::DEFAULT_MAX_BODY_BYTES,
        hitl_serve::shutdown_signal(),
    )
    .await?;
    Ok(())
}
