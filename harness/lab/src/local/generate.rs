//! The local lab's configuration, generated from `manifests/` as the kind lab's controllers
//! would read them: the gateway (agentgateway or Envoy, one [`GatewayPlan`]) from the
//! HTTPRoutes and the AgentgatewayPolicies, the
//! kagent-adk `config.json` and agent card from the Agent, its RemoteMCPServers and the
//! chosen ModelConfig. Nothing here is written by hand twice. The gateway's translation is
//! in `gateway`, the agent's here.

use serde::Serialize;
use serde_json::{Value, json};

use super::ports::Ports;
use hitl_manifests::{LabManifests, ModelChoice, Provider};

mod gateway;

pub use gateway::{Wiring, gateway_plan, gateway_plan_on, requester_jwt};

/// A manifest the local lab cannot translate faithfully.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    Unsupported(String),
}

pub(crate) fn unsupported(msg: impl Into<String>) -> GenerateError {
    GenerateError::Unsupported(msg.into())
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
    let http_tools = http_tools(m, ports)?;
    let (model_json, env, openai_compatible) = model_settings(m, ports, choice, api_key)?;
    let app_name = agent.app_name();
    let card = agent_card(agent, ports);
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

/// The Agent's tool servers, each rewritten to the local gateway.
fn http_tools(m: &LabManifests, ports: &Ports) -> Result<Vec<HttpTools>, GenerateError> {
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

    Ok(http_tools)
}

/// kagent-adk's model settings for `choice`, the model's environment, and the
/// OpenAI-compatible (base URL, model, key) the LangGraph agent uses.
type ModelSettings = (Value, Vec<(String, String)>, (String, String, String));

/// The chosen ModelConfig as kagent-adk's model (the scripted model on loopback, or a real
/// provider with its key from the environment).
fn model_settings(
    m: &LabManifests,
    ports: &Ports,
    choice: ModelChoice,
    api_key: Option<String>,
) -> Result<ModelSettings, GenerateError> {
    let model = m.model(choice).ok_or_else(|| {
        unsupported(format!(
            "manifests/models/ has no ModelConfig for {}",
            choice.as_str()
        ))
    })?;
    Ok(match (choice, model.provider) {
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
    })
}

/// The agent card kagent would serve for `agent` on the local port.
fn agent_card(agent: &hitl_manifests::AgentView, ports: &Ports) -> Value {
    json!({
        "name": agent.name.replace('-', "_"),
        "description": agent.description,
        "url": format!("http://127.0.0.1:{}/", ports.agent),
        "version": env!("CARGO_PKG_VERSION"),
        "protocolVersion": "0.3.0",
        "capabilities": {"streaming": true, "pushNotifications": false, "stateTransitionHistory": true},
        "defaultInputModes": ["text"],
        "defaultOutputModes": ["text"],
        "skills": [],
    })
}
