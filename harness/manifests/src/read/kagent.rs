//! kagent's kinds: RemoteMCPServer, the declarative and BYO Agents, ModelConfig; and
//! whether a selector selects a pod's labels.

use std::collections::BTreeMap;

use super::{DEFAULT_MCP_TIMEOUT, bad, namespace, opt_duration, spec};
use crate::{crd, docs::Doc, error::ManifestError, view::*};

pub(crate) fn tool_server(doc: &Doc) -> Result<ToolServerView, ManifestError> {
    let spec: crd::RemoteMcpServerSpec = spec(doc)?;
    let url = reqwest::Url::parse(&spec.url)
        .map_err(|e| bad(doc, "spec.url", format!("`{}` is not a URL: {e}", spec.url)))?;
    let host = url
        .host_str()
        .ok_or_else(|| bad(doc, "spec.url", "the URL has no host"))?
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| bad(doc, "spec.url", "the URL has no port and no known scheme"))?;
    Ok(ToolServerView {
        location: doc.location.clone(),
        namespace: namespace(doc)?,
        name: doc.name.clone(),
        description: spec.description,
        host,
        port,
        path: url.path().to_owned(),
        url: spec.url.clone(),
        protocol: spec
            .protocol
            .unwrap_or_else(|| "STREAMABLE_HTTP".to_owned()),
        timeout: opt_duration(doc, "spec.timeout", spec.timeout.as_ref())?
            .unwrap_or(DEFAULT_MCP_TIMEOUT),
        sse_read_timeout: opt_duration(doc, "spec.sseReadTimeout", spec.sse_read_timeout.as_ref())?,
    })
}

/// Whether an Agent document is BYO (`spec.type: BYO`).
pub(crate) fn is_byo(doc: &Doc) -> Result<bool, ManifestError> {
    let spec: crd::AgentSpec = spec(doc)?;
    Ok(spec.agent_type.as_deref() == Some("BYO"))
}

pub(crate) fn byo_agent(doc: &Doc) -> Result<ByoAgentView, ManifestError> {
    let spec: crd::AgentSpec = spec(doc)?;
    let namespace = namespace(doc)?;
    let deployment = spec.byo.and_then(|b| b.deployment).ok_or_else(|| {
        bad(
            doc,
            "spec.byo.deployment",
            "a BYO agent needs its deployment",
        )
    })?;
    let image = deployment.image.ok_or_else(|| {
        bad(
            doc,
            "spec.byo.deployment.image",
            "a BYO agent needs an image",
        )
    })?;
    let env = deployment
        .env
        .into_iter()
        .map(|var| super::env_var(var, &namespace))
        .collect();
    Ok(ByoAgentView {
        location: doc.location.clone(),
        namespace,
        name: doc.name.clone(),
        image,
        env,
    })
}

pub(crate) fn agent(doc: &Doc) -> Result<AgentView, ManifestError> {
    let spec: crd::AgentSpec = spec(doc)?;
    let namespace = namespace(doc)?;
    if spec.agent_type.as_deref().unwrap_or("Declarative") != "Declarative" {
        return Err(bad(doc, "spec.type", "the lab's agent is Declarative"));
    }
    let declarative = spec
        .declarative
        .ok_or_else(|| bad(doc, "spec.declarative", "a Declarative agent needs it"))?;
    let system_message = declarative.system_message.ok_or_else(|| {
        bad(
            doc,
            "spec.declarative.systemMessage",
            "the lab's agent states its tools and their risk inline",
        )
    })?;
    let model_config = declarative.model_config.ok_or_else(|| {
        bad(
            doc,
            "spec.declarative.modelConfig",
            "must name the ModelConfig that models/<choice>.yaml defines",
        )
    })?;
    let tools = declarative
        .tools
        .into_iter()
        .enumerate()
        .map(|(i, tool)| {
            let path = format!("spec.declarative.tools[{i}]");
            let mcp = match (tool.tool_type.as_deref(), tool.mcp_server) {
                (Some("McpServer") | None, Some(mcp)) => mcp,
                _ => {
                    return Err(bad(
                        doc,
                        &path,
                        "the lab's agent only uses McpServer tools (type: McpServer, mcpServer: …)",
                    ));
                }
            };
            let kind = mcp.kind.as_deref().unwrap_or("RemoteMCPServer");
            let group = mcp.api_group.as_deref().unwrap_or("kagent.dev");
            if kind != "RemoteMCPServer" || group != "kagent.dev" {
                return Err(bad(
                    doc,
                    &format!("{path}.mcpServer"),
                    format!("must reference a kagent.dev RemoteMCPServer, not {group}/{kind}"),
                ));
            }
            Ok(AgentToolsView {
                server: mcp.name,
                namespace: mcp.namespace.unwrap_or_else(|| namespace.clone()),
                tool_names: mcp.tool_names,
                require_approval: mcp.require_approval,
                allowed_headers: mcp.allowed_headers,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(AgentView {
        location: doc.location.clone(),
        name: doc.name.clone(),
        namespace,
        description: spec.description.unwrap_or_default(),
        system_message,
        model_config,
        runtime: declarative.runtime.unwrap_or_else(|| "go".to_owned()),
        stream: declarative.stream.unwrap_or(false),
        tools,
    })
}

pub(crate) fn model_config(doc: &Doc) -> Result<ModelConfigView, ManifestError> {
    let spec: crd::ModelConfigSpec = spec(doc)?;
    let namespace = namespace(doc)?;
    let choice = doc.model.ok_or_else(|| {
        bad(
            doc,
            "metadata.name",
            "ModelConfigs live in models/<choice>.yaml, one per --model choice",
        )
    })?;
    let provider = match spec.provider.as_deref().unwrap_or("OpenAI") {
        "OpenAI" => Provider::OpenAi,
        "Anthropic" => Provider::Anthropic,
        other => {
            return Err(bad(
                doc,
                "spec.provider",
                format!("the lab supports OpenAI and Anthropic, not {other}"),
            ));
        }
    };
    let base_url = match provider {
        Provider::OpenAi => spec.open_ai.and_then(|c| c.base_url),
        Provider::Anthropic => spec.anthropic.and_then(|c| c.base_url),
    };
    let api_key = match (spec.api_key_secret, spec.api_key_secret_key) {
        (Some(name), Some(key)) => Some(SecretKeyRef {
            namespace: namespace.clone(),
            name,
            key,
        }),
        (None, None) => None,
        _ => {
            return Err(bad(
                doc,
                "spec.apiKeySecret",
                "apiKeySecret and apiKeySecretKey go together",
            ));
        }
    };
    Ok(ModelConfigView {
        location: doc.location.clone(),
        choice,
        namespace,
        name: doc.name.clone(),
        provider,
        model: spec.model,
        base_url,
        api_key,
    })
}

/// Labels as a map, for selector matching.
pub(crate) fn selects(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
