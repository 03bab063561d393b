//! The local lab's configuration, generated from `manifests/` as the kind lab's controllers
//! would read them: the gateway (agentgateway or Envoy, one [`GatewayPlan`]) from the
//! HTTPRoutes and the AgentgatewayPolicies, the
//! kagent-adk `config.json` and agent card from the Agent, its RemoteMCPServers and the
//! chosen ModelConfig. Nothing here is written by hand twice.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::ports::Ports;
use crate::{
    envoy::{Endpoint, GatewayPlan, PARK_MARGIN, ROUTE_CONTEXT_KEY, RequesterJwt, Route},
    requester,
};
use hitl_manifests::{ExtAuthProtocol, FailureMode, JwtMode, LabManifests, ModelChoice, Provider};

/// A manifest the local lab cannot translate faithfully.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    Unsupported(String),
}

fn unsupported(msg: impl Into<String>) -> GenerateError {
    GenerateError::Unsupported(msg.into())
}

/// The local gateway: every HTTPRoute of the Gateway becomes a prefix route to mock-db-mcp on
/// loopback; the route the ext-auth policy targets is gated with the policy's body limit,
/// failure mode and context extensions; the Gateway's PreRouting header removals come first;
/// timeouts are the manifests' or the park timeout plus margin, whichever is longer (a gateway
/// that gives up before the gate would abandon every park).
///
/// The route-timeout trap: agentgateway counts `traffic.timeouts.request` from the request's
/// arrival, parked time included, so a call approved after the route timeout would be
/// recorded as approved and then answered 504. A manifest whose route (or Check) timeout does
/// not outlast the park timeout is refused here; the plan's route timeout is always at least
/// the park timeout plus [`PARK_MARGIN`], so every park ends (approved, rejected, expired)
/// while the upstream deadline still has the margin left.
pub fn gateway_plan(
    m: &LabManifests,
    ports: &Ports,
    park_timeout: Duration,
) -> Result<GatewayPlan, GenerateError> {
    let gate = &m.gate;
    let upstream = m
        .routes
        .first()
        .map(|r| r.backend.clone())
        .ok_or_else(|| unsupported("the manifests define no HTTPRoute"))?;
    for route in &m.routes {
        if route.backend != upstream {
            return Err(unsupported(format!(
                "HTTPRoute {} goes to {}, but the local lab runs one upstream ({upstream})",
                route.name, route.backend
            )));
        }
    }
    if gate.ext_auth.protocol != ExtAuthProtocol::Grpc {
        return Err(unsupported(
            "the gate's extAuth is not gRPC; hitl-extauth speaks Envoy's gRPC Check",
        ));
    }
    let max_bytes = gate.ext_auth.forward_body_max_bytes.ok_or_else(|| {
        unsupported(format!(
            "AgentgatewayPolicy {} does not forward the body (forwardBody): the gate could not \
             see which tool is called",
            gate.policy
        ))
    })?;
    for (field, timeout) in [
        (
            format!("traffic.timeouts.request of {}", gate.policy),
            gate.request_timeout,
        ),
        (
            "backend.http.requestTimeout on the ext-auth Service".to_owned(),
            gate.ext_auth_timeout,
        ),
    ] {
        if let Some(t) = timeout.filter(|t| *t <= park_timeout) {
            return Err(unsupported(format!(
                "{field} is {} s, not longer than the park timeout ({} s): a call approved \
                 after {} s would be recorded as approved and then cut off by the gateway",
                t.as_secs(),
                park_timeout.as_secs(),
                t.as_secs()
            )));
        }
    }
    let at_least = |t: Option<Duration>| t.unwrap_or_default().max(park_timeout + PARK_MARGIN);

    let mut plan = GatewayPlan::lab(
        ports.gateway_ports(),
        Endpoint::loopback(ports.mock_db),
        Endpoint::loopback(ports.extauth_grpc),
        park_timeout,
    );
    plan.routes = m
        .routes
        .iter()
        .map(|r| Route {
            name: r.name.clone(),
            prefix: r.path_prefix.clone(),
            gated: r.name == gate.route,
        })
        .collect();
    if let Some(route) = gate.ext_auth.context_extensions.get(ROUTE_CONTEXT_KEY)
        && *route != gate.route
    {
        return Err(unsupported(format!(
            "{} sends context_extensions route={route}, but it gates HTTPRoute {}",
            gate.policy, gate.route
        )));
    }
    plan.strip_request_headers = m.stripped_request_headers();
    plan.ext_authz.max_request_bytes = u32::try_from(max_bytes)
        .map_err(|_| unsupported(format!("forwardBody.maxSize {max_bytes} is too large")))?;
    // agentgateway's forwardBody forwards a cut body marked partial (allowPartialMessage).
    plan.ext_authz.allow_partial_message = true;
    plan.ext_authz.failure_mode_allow = gate.ext_auth.failure_mode == FailureMode::FailOpen;
    plan.ext_authz.timeout = at_least(gate.ext_auth_timeout);
    plan.route_timeout = at_least(gate.request_timeout);
    plan.stream_idle_timeout = plan.ext_authz.timeout.max(plan.route_timeout);
    Ok(plan)
}

/// What the local gateway accepts as a requester: the gate policy's `jwtAuthentication`
/// (issuer, audiences, Strict or Optional), its JWKS the lab's own key where the manifest holds the
/// placeholder the kind lab fills in the same way ([`requester::LAB_JWKS_PLACEHOLDER`]).
/// `None` when the policy verifies no token.
pub fn requester_jwt(
    m: &LabManifests,
    issuer: &requester::Issuer,
) -> Result<Option<RequesterJwt>, GenerateError> {
    let Some(jwt) = &m.gate.jwt else {
        return Ok(None);
    };
    let policy = &m.gate.policy;
    let allow_missing = match jwt.mode {
        JwtMode::Strict => false,
        JwtMode::Optional => true,
        JwtMode::Permissive => {
            return Err(unsupported(format!(
                "AgentgatewayPolicy {policy}: jwtAuthentication.mode Permissive passes invalid \
                 tokens on; the local lab translates Strict and Optional"
            )));
        }
    };
    let [provider] = jwt.providers.as_slice() else {
        return Err(unsupported(format!(
            "AgentgatewayPolicy {policy}: the local lab translates exactly one JWT provider"
        )));
    };
    let jwks = match provider.jwks_inline.as_deref() {
        Some(requester::LAB_JWKS_PLACEHOLDER) => issuer.jwks().to_string(),
        Some(inline) => inline.to_owned(),
        None if provider.jwks_remote => {
            return Err(unsupported(format!(
                "AgentgatewayPolicy {policy}: a remote JWKS cannot be reached from the local lab"
            )));
        }
        None => {
            return Err(unsupported(format!(
                "AgentgatewayPolicy {policy}: the JWT provider has no jwks"
            )));
        }
    };
    Ok(Some(RequesterJwt {
        issuer: provider.issuer.clone(),
        audiences: provider.audiences.clone(),
        jwks,
        allow_missing,
    }))
}

/// kagent-adk's `AgentConfig` (what kagent's controller writes into the agent's Secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentConfig {
    pub model: Value,
    pub description: String,
    pub instruction: String,
    pub http_tools: Vec<HttpTools>,
    pub stream: bool,
}

/// One Streamable-HTTP MCP server in [`AgentConfig`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpTools {
    /// The RemoteMCPServer's name (not part of kagent's config).
    #[serde(skip)]
    pub name: String,
    pub params: HttpParams,
    /// The tool filter (`toolNames`).
    pub tools: Vec<String>,
    /// Tier 1 (`requireApproval`).
    pub require_approval: Vec<String>,
    /// Headers propagated from the A2A request (`allowedHeaders`).
    pub allowed_headers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpParams {
    pub url: String,
    /// Seconds.
    pub timeout: f64,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sse_read_timeout: Option<f64>,
}

/// What the agent process needs: its config, its card, and the model's environment.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentPlan {
    pub app_name: String,
    pub config: AgentConfig,
    pub card: Value,
    pub env: Vec<(String, String)>,
    /// The model as an OpenAI-compatible endpoint: base URL, model name, API key (for the
    /// LangGraph agent, whose one client speaks that protocol).
    pub openai_compatible: (String, String, String),
}

/// Anthropic's OpenAI-compatible endpoint (chat completions with tools).
pub const ANTHROPIC_OPENAI_BASE_URL: &str = "https://api.anthropic.com/v1/";
/// OpenAI's.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// The BYO LangGraph agent's environment (see `python/langgraph-agent/settings.py`): the same
/// tool servers, tier-1 tools, forwarded headers, system message and model as the declarative
/// agent's, so the two cannot drift in the local lab.
pub fn langgraph_env(plan: &AgentPlan, name: &str, namespace: &str) -> Vec<(String, String)> {
    let servers: Vec<Value> = plan
        .config
        .http_tools
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "url": t.params.url,
                "tools": t.tools,
                "require_approval": t.require_approval,
                "allowed_headers": t.allowed_headers,
                "timeout_seconds": t.params.sse_read_timeout.unwrap_or(t.params.timeout).max(t.params.timeout),
            })
        })
        .collect();
    let (base_url, model, key) = plan.openai_compatible.clone();
    vec![
        ("MODEL_BASE_URL".into(), base_url),
        ("MODEL_NAME".into(), model),
        ("MODEL_API_KEY".into(), key),
        ("MCP_SERVERS".into(), Value::Array(servers).to_string()),
        ("SYSTEM_PROMPT".into(), plan.config.instruction.clone()),
        ("KAGENT_NAME".into(), name.to_owned()),
        ("KAGENT_NAMESPACE".into(), namespace.to_owned()),
    ]
}

/// Translate the Agent as kagent's controller does: each tool server's URL is rewritten to
/// the local gateway (same path), `toolNames` becomes the tool filter, `requireApproval` is
/// carried over (and must be a subset of `toolNames`, as the CRD's rule says), the system
/// message becomes the instruction, the chosen ModelConfig the model.
pub fn agent_plan(
    m: &LabManifests,
    ports: &Ports,
    choice: ModelChoice,
    api_key: Option<String>,
) -> Result<AgentPlan, GenerateError> {
    let agent = &m.agent;
    let gateway_host = m.gateway.service().host();
    let mut http_tools = Vec::new();
    for tools in &agent.tools {
        let server = m
            .tool_server(&tools.namespace, &tools.server)
            .ok_or_else(|| unsupported(format!("RemoteMCPServer {} is missing", tools.server)))?;
        if server.host != gateway_host && server.host != m.gateway.name {
            return Err(unsupported(format!(
                "RemoteMCPServer {} points at {}, not the gateway ({gateway_host}): every tool \
                 call must pass the gateway",
                server.name, server.host
            )));
        }
        if server.protocol != "STREAMABLE_HTTP" {
            return Err(unsupported(format!(
                "RemoteMCPServer {} uses {}; the local lab runs Streamable HTTP",
                server.name, server.protocol
            )));
        }
        if let Some(extra) = tools
            .require_approval
            .iter()
            .find(|t| !tools.tool_names.contains(t))
        {
            return Err(unsupported(format!(
                "requireApproval names {extra}, which is not in toolNames of {}",
                server.name
            )));
        }
        http_tools.push(HttpTools {
            name: server.name.clone(),
            params: HttpParams {
                url: format!("http://127.0.0.1:{}{}", ports.gateway, server.path),
                timeout: server.timeout.as_secs_f64(),
                sse_read_timeout: server.sse_read_timeout.map(|d| d.as_secs_f64()),
            },
            tools: tools.tool_names.clone(),
            require_approval: tools.require_approval.clone(),
            allowed_headers: tools.allowed_headers.clone(),
        });
    }

    let model = m.model(choice).ok_or_else(|| {
        unsupported(format!(
            "manifests/models/ has no ModelConfig for {}",
            choice.as_str()
        ))
    })?;
    let (model_json, env, openai_compatible) = match (choice, model.provider) {
        (ModelChoice::Scripted, _) => (
            json!({
                "type": "openai",
                "model": model.model,
                "base_url": format!("http://127.0.0.1:{}/v1", ports.model),
            }),
            // kagent-adk insists on a key even for a local OpenAI-compatible server.
            vec![(
                "OPENAI_API_KEY".to_owned(),
                "scripted-model-needs-no-key".to_owned(),
            )],
            (
                format!("http://127.0.0.1:{}/v1", ports.model),
                model.model.clone(),
                "scripted-model-needs-no-key".to_owned(),
            ),
        ),
        (_, provider) => {
            let var = choice.api_key_env().expect("real providers have a key");
            let key = api_key.ok_or_else(|| {
                unsupported(format!(
                    "--model {} needs {var} in the environment",
                    choice.as_str()
                ))
            })?;
            let kind = match provider {
                Provider::OpenAi => "openai",
                Provider::Anthropic => "anthropic",
            };
            let mut json = json!({"type": kind, "model": model.model});
            if let Some(url) = &model.base_url {
                json["base_url"] = json!(url);
            }
            let base_url = model.base_url.clone().unwrap_or_else(|| {
                match provider {
                    Provider::OpenAi => OPENAI_BASE_URL,
                    Provider::Anthropic => ANTHROPIC_OPENAI_BASE_URL,
                }
                .to_owned()
            });
            let compatible = (base_url, model.model.clone(), key.clone());
            (json, vec![(var.to_owned(), key)], compatible)
        }
    };

    let app_name = agent.app_name();
    let card = json!({
        "name": agent.name.replace('-', "_"),
        "description": agent.description,
        "url": format!("http://127.0.0.1:{}/", ports.agent),
        "version": env!("CARGO_PKG_VERSION"),
        "protocolVersion": "0.3.0",
        "capabilities": {"streaming": true, "pushNotifications": false, "stateTransitionHistory": true},
        "defaultInputModes": ["text"],
        "defaultOutputModes": ["text"],
        "skills": [],
    });
    Ok(AgentPlan {
        app_name,
        config: AgentConfig {
            model: model_json,
            description: agent.description.clone(),
            instruction: agent.system_message.clone(),
            http_tools,
            stream: agent.stream,
        },
        card,
        env,
        openai_compatible,
    })
}
