//! The local lab's loopback ports: documented defaults, each overridable by an environment
//! variable, or all picked free (tests).

use serde::{Deserialize, Serialize};

/// Every port the local lab listens on (all on 127.0.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    /// The MCP gateway, agentgateway or Envoy (`/public/mcp`, `/privileged/mcp`).
    pub gateway: u16,
    /// The gateway's admin interface (Envoy's `/ready` and stats; agentgateway's admin).
    pub gateway_admin: u16,
    /// agentgateway's metrics server.
    pub gateway_stats: u16,
    /// agentgateway's readiness probe.
    pub gateway_readiness: u16,
    /// mock-db-mcp.
    pub mock_db: u16,
    /// hitl-extauth gRPC (Envoy's ext_authz).
    pub extauth_grpc: u16,
    /// hitl-extauth admin API.
    pub extauth_http: u16,
    /// hitl-ui, the reviewer's queue.
    pub ui: u16,
    /// lab-chat, the chat user's page.
    pub chat: u16,
    /// The declarative agent's A2A endpoint (kagent-adk).
    pub agent: u16,
    /// The BYO LangGraph agent's A2A endpoint (kagent-langgraph).
    pub langgraph_agent: u16,
    /// The scripted model.
    pub model: u16,
    /// The gate's PostgreSQL (`--store postgres`).
    pub postgres: u16,
    /// The reviewers' OpenID Provider.
    #[serde(default = "default_oidc_port")]
    pub oidc: u16,
}

/// A state file from before the OpenID Provider: its documented port.
fn default_oidc_port() -> u16 {
    18096
}

/// How far apart the ports of consecutive gate replicas are: replica `k` (from 1) listens on
/// `extauth_grpc + STEP·(k−1)` and `extauth_http + STEP·(k−1)`, so replica 1 keeps the
/// documented ports and the others stay clear of every other default.
pub const REPLICA_PORT_STEP: u16 = 10;
/// The most gate replicas the local lab runs (their ports must stay below the gateway's admin
/// ports, 18901…).
pub const MAX_REPLICAS: u16 = 9;

/// `(field, env var, default)` for every port, in the order `up` prints them.
pub const DEFAULTS: [(&str, &str, u16); 14] = [
    ("agent", "HITL_LAB_AGENT_PORT", 18083),
    ("langgraph_agent", "HITL_LAB_LANGGRAPH_AGENT_PORT", 18084),
    ("chat", "HITL_LAB_CHAT_PORT", 18095),
    ("ui", "HITL_LAB_UI_PORT", 18090),
    ("extauth_http", "HITL_LAB_EXTAUTH_HTTP_PORT", 18092),
    ("extauth_grpc", "HITL_LAB_EXTAUTH_GRPC_PORT", 18091),
    ("gateway", "HITL_LAB_GATEWAY_PORT", 18080),
    ("gateway_admin", "HITL_LAB_GATEWAY_ADMIN_PORT", 18901),
    ("gateway_stats", "HITL_LAB_GATEWAY_STATS_PORT", 18902),
    (
        "gateway_readiness",
        "HITL_LAB_GATEWAY_READINESS_PORT",
        18903,
    ),
    ("mock_db", "HITL_LAB_MOCK_DB_PORT", 18081),
    ("model", "HITL_LAB_MODEL_PORT", 18070),
    ("postgres", "HITL_LAB_POSTGRES_PORT", 18432),
    ("oidc", "HITL_LAB_OIDC_PORT", 18096),
];

impl Ports {
    /// The documented defaults, with any `HITL_LAB_*_PORT` environment overrides applied.
    pub fn from_env() -> anyhow::Result<Self> {
        let get = |field: &str| -> anyhow::Result<u16> {
            let (_, var, default) = DEFAULTS
                .iter()
                .find(|(f, _, _)| *f == field)
                .expect("every field has a default");
            match std::env::var(var) {
                Ok(v) => v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{var}={v:?} is not a port number (1-65535)")),
                Err(_) => Ok(*default),
            }
        };
        Ok(Self {
            gateway: get("gateway")?,
            gateway_admin: get("gateway_admin")?,
            gateway_stats: get("gateway_stats")?,
            gateway_readiness: get("gateway_readiness")?,
            mock_db: get("mock_db")?,
            extauth_grpc: get("extauth_grpc")?,
            extauth_http: get("extauth_http")?,
            ui: get("ui")?,
            chat: get("chat")?,
            agent: get("agent")?,
            langgraph_agent: get("langgraph_agent")?,
            model: get("model")?,
            postgres: get("postgres")?,
            oidc: get("oidc")?,
        })
    }

    /// Ports the OS says are free right now (for tests that run beside a user's lab).
    pub fn free() -> std::io::Result<Self> {
        let mut ports = Vec::new();
        // Hold the listeners until all are picked, so no port is handed out twice.
        let mut held = Vec::new();
        for _ in 0..DEFAULTS.len() {
            let listener = crate::net::unclaimed()?;
            ports.push(listener.local_addr()?.port());
            held.push(listener);
        }
        drop(held);
        Ok(Self {
            gateway: ports[0],
            gateway_admin: ports[1],
            mock_db: ports[2],
            extauth_grpc: ports[3],
            extauth_http: ports[4],
            ui: ports[5],
            agent: ports[6],
            model: ports[7],
            langgraph_agent: ports[8],
            gateway_stats: ports[9],
            gateway_readiness: ports[10],
            chat: ports[11],
            postgres: ports[12],
            oidc: ports[13],
        })
    }

    /// The gateway's share of the ports.
    pub fn gateway_ports(&self) -> crate::envoy::GatewayPorts {
        crate::envoy::GatewayPorts {
            listen: self.gateway,
            admin: self.gateway_admin,
            stats: self.gateway_stats,
            readiness: self.gateway_readiness,
        }
    }

    /// The Check (gRPC) and admin (HTTP) ports of gate replica `k` (1 = the documented ones).
    pub fn extauth_replica(&self, k: u16) -> (u16, u16) {
        let offset = REPLICA_PORT_STEP * k.saturating_sub(1);
        (
            self.extauth_grpc.saturating_add(offset),
            self.extauth_http.saturating_add(offset),
        )
    }

    /// `(name, port)` of every port replicas 2..=`replicas` listen on, beyond [`Ports::named`].
    pub fn replica_ports(&self, replicas: u16) -> Vec<(String, u16)> {
        (2..=replicas)
            .flat_map(|k| {
                let (grpc, http) = self.extauth_replica(k);
                [
                    (format!("extauth_grpc (replica {k})"), grpc),
                    (format!("extauth_http (replica {k})"), http),
                ]
            })
            .collect()
    }

    /// `(name, env var, port)` for each, in display order.
    pub fn named(&self) -> Vec<(&'static str, &'static str, u16)> {
        DEFAULTS
            .iter()
            .map(|(field, var, _)| {
                let port = match *field {
                    "gateway" => self.gateway,
                    "gateway_admin" => self.gateway_admin,
                    "gateway_stats" => self.gateway_stats,
                    "gateway_readiness" => self.gateway_readiness,
                    "mock_db" => self.mock_db,
                    "extauth_grpc" => self.extauth_grpc,
                    "extauth_http" => self.extauth_http,
                    "ui" => self.ui,
                    "chat" => self.chat,
                    "agent" => self.agent,
                    "langgraph_agent" => self.langgraph_agent,
                    "postgres" => self.postgres,
                    "oidc" => self.oidc,
                    _ => self.model,
                };
                (*field, *var, port)
            })
            .collect()
    }
}
