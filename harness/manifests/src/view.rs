//! The typed view of the lab's manifests: what the kind lab applies and what the local lab
//! generates its Envoy and kagent-adk configs from. Plain data; built and checked by
//! `read.rs` and `validate.rs`.

use std::{collections::BTreeMap, fmt, time::Duration};

use super::{ModelChoice, error::Location};

/// A port on a Kubernetes Service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
    pub port: u16,
}

impl ServiceRef {
    /// In-cluster DNS name, `name.namespace.svc.cluster.local`.
    pub fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.name, self.namespace)
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.name, self.port)
    }
}

/// A key in a Secret.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretKeyRef {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePortView {
    pub name: Option<String>,
    pub port: u16,
    /// `targetPort` as written (a number or a container port name).
    pub target_port: Option<String>,
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub location: Location,
    pub namespace: String,
    pub name: String,
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePortView>,
    pub model: Option<ModelChoice>,
}

impl ServiceView {
    pub fn port(&self, port: u16) -> Option<&ServicePortView> {
        self.ports.iter().find(|p| p.port == port)
    }
}

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    Value(String),
    Secret(SecretKeyRef),
    /// ConfigMap, field or resource references: not used by the lab, kept opaque.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub image_pull_policy: Option<String>,
    pub env: BTreeMap<String, EnvSource>,
    /// Container ports by name (unnamed ports are listed under their number).
    pub ports: BTreeMap<String, u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentView {
    pub location: Location,
    pub namespace: String,
    pub name: String,
    pub pod_labels: BTreeMap<String, String>,
    pub containers: Vec<ContainerView>,
    /// Secrets mounted as volumes, by secret name.
    pub secret_volumes: Vec<String>,
    pub model: Option<ModelChoice>,
}

impl DeploymentView {
    /// A plain (`value:`) environment variable of any container.
    pub fn env_value(&self, var: &str) -> Option<&str> {
        self.containers.iter().find_map(|c| match c.env.get(var) {
            Some(EnvSource::Value(v)) => Some(v.as_str()),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerView {
    pub name: String,
    pub protocol: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayView {
    pub location: Location,
    pub namespace: String,
    pub name: String,
    pub class: String,
    pub listeners: Vec<ListenerView>,
}

impl GatewayView {
    /// The Service the gateway controller creates for this Gateway (same name and namespace),
    /// on the first listener's port: how in-cluster clients (the agent) reach the gateway.
    pub fn service(&self) -> ServiceRef {
        ServiceRef {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            port: self.listeners.first().map_or(80, |l| l.port),
        }
    }
}

/// An HTTPRoute of the lab: one path prefix, one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteView {
    pub location: Location,
    pub namespace: String,
    pub name: String,
    /// The Gateway it attaches to (same namespace).
    pub gateway: String,
    pub path_prefix: String,
    pub backend: ServiceRef,
}

impl RouteView {
    /// Whether a request path falls under this route's prefix (Gateway API PathPrefix
    /// semantics: element-wise, so `/public` matches `/public/mcp` but not `/publicity`).
    pub fn matches(&self, path: &str) -> bool {
        let prefix = self.path_prefix.trim_end_matches('/');
        prefix.is_empty()
            || path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// What the gateway does when the ext-auth server cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Deny the request (the only acceptable mode for a gate).
    FailClosed,
    /// Let the request through.
    FailOpen,
}

/// The ext-auth wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtAuthProtocol {
    Grpc,
    Http,
}

/// An AgentgatewayPolicy, as far as the lab cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyView {
    pub location: Location,
    pub namespace: String,
    pub name: String,
    /// `(kind, name)` of every target, e.g. `("HTTPRoute", "privileged-mcp")`.
    pub targets: Vec<(String, String)>,
    pub ext_auth: Option<ExtAuthView>,
    /// `traffic.jwtAuthentication`: who the route accepts as a requester.
    pub jwt: Option<JwtView>,
    /// `traffic.timeouts.request`.
    pub request_timeout: Option<Duration>,
    /// `backend.http.requestTimeout`.
    pub backend_request_timeout: Option<Duration>,
    /// `traffic.phase: PreRouting` (runs before any route is picked, and before route policies).
    pub pre_routing: bool,
    /// `traffic.transformation.request.remove`, lower-cased.
    pub removes_request_headers: Vec<String>,
}

impl PolicyView {
    pub fn targets_route(&self, route: &str) -> bool {
        self.targets
            .iter()
            .any(|(kind, name)| kind == "HTTPRoute" && name == route)
    }

    pub fn targets_service(&self, service: &str) -> bool {
        self.targets
            .iter()
            .any(|(kind, name)| kind == "Service" && name == service)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtAuthView {
    pub backend: ServiceRef,
    pub protocol: ExtAuthProtocol,
    /// `forwardBody.maxSize` in bytes; `None`: the body is not sent to the gate.
    pub forward_body_max_bytes: Option<u64>,
    /// `failureMode` (the CRD's default, FailClosed, when unset).
    pub failure_mode: FailureMode,
    /// Whether a decision `cache` is configured.
    pub cache: bool,
    /// `grpc.contextExtensions`: sent with every Check (the gate reads `route`).
    pub context_extensions: BTreeMap<String, String>,
    /// `grpc.requestMetadata`: `metadata_context` namespace → CEL expression, evaluated by
    /// agentgateway for every Check (the gate reads the requester's raw token there).
    pub request_metadata: BTreeMap<String, String>,
}

/// `traffic.jwtAuthentication` of a policy: the requester's token, verified by the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtView {
    /// `Strict` (the CRD's default): a request without a valid token is refused. `Optional`:
    /// a request with no token passes on (an invalid one is still refused).
    /// `Permissive`: nothing is refused.
    pub mode: JwtMode,
    pub providers: Vec<JwtProviderView>,
}

/// `jwtAuthentication.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtMode {
    Strict,
    Optional,
    Permissive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtProviderView {
    pub issuer: String,
    pub audiences: Vec<String>,
    /// `jwks.inline` (JSON text); `None` when the keys are fetched (`jwks.remote`).
    pub jwks_inline: Option<String>,
    /// Whether the keys are fetched (`jwks.remote`).
    pub jwks_remote: bool,
}

/// The tier-2 gate, assembled from the ext-auth policy and the backend policy on the
/// ext-auth Service. Everything the local lab needs to configure Envoy the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateView {
    /// The AgentgatewayPolicy carrying `extAuth`.
    pub policy: String,
    /// The HTTPRoute it targets.
    pub route: String,
    /// The route's path prefix (e.g. `/privileged`).
    pub path_prefix: String,
    pub ext_auth: ExtAuthView,
    /// The requester's token as the gated route verifies it (`jwtAuthentication` of the
    /// gate's policy), if it does.
    pub jwt: Option<JwtView>,
    /// How long the gateway waits for the whole gated request (`traffic.timeouts.request`).
    pub request_timeout: Option<Duration>,
    /// How long the gateway waits for the ext-auth server (`backend.http.requestTimeout` of a
    /// policy targeting its Service): must outlast a human's decision.
    pub ext_auth_timeout: Option<Duration>,
}

/// A RemoteMCPServer: an MCP endpoint the agent can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolServerView {
    pub location: Location,
    pub namespace: String,
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    /// Parsed from `url`.
    pub host: String,
    pub port: u16,
    pub path: String,
    /// `STREAMABLE_HTTP` or `SSE` (CRD default STREAMABLE_HTTP).
    pub protocol: String,
    /// `timeout` (CRD default 30s).
    pub timeout: Duration,
    pub sse_read_timeout: Option<Duration>,
}

/// The agent's use of one MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentToolsView {
    /// RemoteMCPServer name.
    pub server: String,
    pub namespace: String,
    pub tool_names: Vec<String>,
    /// Tier 1: tools kagent pauses on for the chat user's approval.
    pub require_approval: Vec<String>,
    /// Request headers propagated from the A2A request to the MCP calls.
    pub allowed_headers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentView {
    pub location: Location,
    pub namespace: String,
    pub name: String,
    pub description: String,
    pub system_message: String,
    /// The ModelConfig it names (always the same; `--model` picks which definition applies).
    pub model_config: String,
    /// `python` or `go` (CRD default `go`).
    pub runtime: String,
    pub stream: bool,
    pub tools: Vec<AgentToolsView>,
}

/// A BYO Agent: kagent runs the image; the lab builds it (`python/<name>/Dockerfile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByoAgentView {
    pub location: Location,
    pub namespace: String,
    pub name: String,
    pub image: String,
    pub env: BTreeMap<String, EnvSource>,
}

impl AgentView {
    /// kagent's app name for this agent: `<namespace>__NS__<name>`, `-` → `_`.
    pub fn app_name(&self) -> String {
        format!("{}__NS__{}", self.namespace, self.name).replace('-', "_")
    }
}

/// Model providers the lab's ModelConfigs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
}

impl Provider {
    /// As kagent's `provider` field spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "OpenAI",
            Provider::Anthropic => "Anthropic",
        }
    }
}

/// One `models/<choice>.yaml` ModelConfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfigView {
    pub location: Location,
    pub choice: ModelChoice,
    pub namespace: String,
    pub name: String,
    pub provider: Provider,
    pub model: String,
    /// The provider's base URL override (the scripted model's in-cluster URL).
    pub base_url: Option<String>,
    pub api_key: Option<SecretKeyRef>,
}

/// How one of the agent's tools is gated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolGating {
    pub tool: String,
    /// The RemoteMCPServer it comes from.
    pub server: String,
    /// The HTTPRoute that server's URL goes through.
    pub route: Option<String>,
    /// Tier 1: in the agent's `requireApproval`.
    pub tier1: bool,
    /// Tier 2: its route carries the ext-auth gate.
    pub tier2: bool,
}

impl ToolGating {
    pub fn gated(&self) -> bool {
        self.tier1 || self.tier2
    }
}

#[cfg(test)]
mod tests;
