//! The parts of the custom resources the lab reads, as serde types (field names exactly as
//! the upstream CRDs spell them). Deliberately partial and lenient: the schema test in
//! `tests/manifests.rs` checks every field against the real CRDs; this module only gives the
//! typed view something to read.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;

/// A resource whose `spec` is `S` (metadata is read from the document itself).
#[derive(Debug, Deserialize)]
pub struct Resource<S> {
    pub spec: S,
}

// ---- kagent.dev/v1alpha2 Agent -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    #[serde(rename = "type", default)]
    pub agent_type: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub declarative: Option<Declarative>,
    #[serde(default)]
    pub byo: Option<Byo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Byo {
    #[serde(default)]
    pub deployment: Option<ByoDeployment>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByoDeployment {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub env: Vec<k8s_openapi::api::core::v1::EnvVar>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Declarative {
    #[serde(default)]
    pub runtime: Option<String>,
    #[serde(default)]
    pub model_config: Option<String>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub system_message: Option<String>,
    #[serde(default)]
    pub tools: Vec<AgentTool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTool {
    #[serde(rename = "type", default)]
    pub tool_type: Option<String>,
    #[serde(default)]
    pub mcp_server: Option<McpServerTool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct McpServerTool {
    #[serde(default)]
    pub api_group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub tool_names: Vec<String>,
    #[serde(default)]
    pub require_approval: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
}

// ---- kagent.dev/v1alpha2 RemoteMCPServer ---------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteMcpServerSpec {
    #[serde(default)]
    pub description: Option<String>,
    pub url: String,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub sse_read_timeout: Option<String>,
}

// ---- kagent.dev/v1alpha2 ModelConfig -------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelConfigSpec {
    #[serde(default)]
    pub provider: Option<String>,
    pub model: String,
    #[serde(default)]
    pub api_key_secret: Option<String>,
    #[serde(default)]
    pub api_key_secret_key: Option<String>,
    #[serde(rename = "openAI", default)]
    pub open_ai: Option<ProviderUrl>,
    #[serde(default)]
    pub anthropic: Option<ProviderUrl>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderUrl {
    #[serde(default)]
    pub base_url: Option<String>,
}

// ---- gateway.networking.k8s.io/v1 Gateway, HTTPRoute ---------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    pub gateway_class_name: String,
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    pub name: String,
    pub protocol: String,
    pub port: u16,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ObjectRef>,
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    #[serde(default)]
    pub matches: Vec<HttpRouteMatch>,
    #[serde(default)]
    pub backend_refs: Vec<ObjectRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    #[serde(default)]
    pub path: Option<PathMatch>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathMatch {
    #[serde(rename = "type", default)]
    pub match_type: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// The shape Gateway API and agentgateway share for references (`parentRefs`, `backendRefs`,
/// `targetRefs`, `backendRef`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

// ---- agentgateway.dev/v1alpha1 AgentgatewayPolicy ------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    #[serde(default)]
    pub target_refs: Vec<ObjectRef>,
    #[serde(default)]
    pub traffic: Option<TrafficPolicy>,
    #[serde(default)]
    pub backend: Option<BackendPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    /// `PreRouting` or `PostRouting` (the default).
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub transformation: Option<Transformation>,
    #[serde(default)]
    pub ext_auth: Option<ExtAuth>,
    #[serde(default)]
    pub jwt_authentication: Option<JwtAuthentication>,
    #[serde(default)]
    pub timeouts: Option<Timeouts>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtAuth {
    #[serde(default)]
    pub backend_ref: Option<ObjectRef>,
    #[serde(default)]
    pub grpc: Option<serde_json::Value>,
    #[serde(default)]
    pub http: Option<serde_json::Value>,
    #[serde(default)]
    pub forward_body: Option<ForwardBody>,
    #[serde(default)]
    pub failure_mode: Option<String>,
    #[serde(default)]
    pub cache: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transformation {
    #[serde(default)]
    pub request: Option<RequestTransformation>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestTransformation {
    /// Header names to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtAuthentication {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub providers: Vec<JwtProvider>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtProvider {
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub jwks: Option<Jwks>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Jwks {
    #[serde(default)]
    pub inline: Option<String>,
    #[serde(default)]
    pub remote: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardBody {
    pub max_size: IntOrString,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    #[serde(default)]
    pub request: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendPolicy {
    #[serde(default)]
    pub http: Option<BackendHttp>,
    #[serde(default)]
    pub tls: Option<BackendTls>,
}

/// `backend.tls`: the part the lab reads (whether the gateway presents a client certificate).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendTls {
    #[serde(default)]
    pub mtls_certificate_ref: Vec<NameRef>,
}

#[derive(Debug, Deserialize)]
pub struct NameRef {
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendHttp {
    #[serde(default)]
    pub request_timeout: Option<String>,
}
