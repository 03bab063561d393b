//! The port-forwards the harness's clients need on the kind lab (agents, gateway, gate admin,
//! mock-db-mcp, reviewer UI, scripted model), read from the manifests.

use hitl_lab::agents::AgentKind;
use hitl_manifests::{LabManifests, ModelChoice};

use crate::expose::{ClientForward, Role};

/// kagent's controller Service (chart defaults): where agents' A2A endpoints are served.
const KAGENT_CONTROLLER: (&str, &str, u16) = ("kagent", "kagent-controller", 8083);

/// The forwards the harness's clients need, from the manifests.
pub(super) fn client_forwards(
    lab: &LabManifests,
    model: ModelChoice,
) -> anyhow::Result<Vec<ClientForward>> {
    let mut forwards = agent_forwards(lab);
    forwards.extend(service_forwards(lab)?);
    forwards.extend(scripted_model_forward(lab, model)?);
    Ok(forwards)
}

/// The agents' A2A endpoints on kagent's controller: the declarative agent, and the
/// LangGraph agent when the manifests have it.
fn agent_forwards(lab: &LabManifests) -> Vec<ClientForward> {
    let (ns, name, port) = KAGENT_CONTROLLER;
    let a2a = format!("/api/a2a/{}/{}/", lab.agent.namespace, lab.agent.name);
    let mut forwards = vec![ClientForward {
        role: Role::Agent,
        namespace: ns.into(),
        service: name.into(),
        port,
        health: Some(format!("{a2a}.well-known/agent-card.json")),
        path: a2a,
    }];
    if let Some(agent) = lab
        .byo_agents
        .iter()
        .find(|a| a.name == AgentKind::Langgraph.resource_name())
    {
        let a2a = format!("/api/a2a/{}/{}/", agent.namespace, agent.name);
        forwards.push(ClientForward {
            role: Role::LanggraphAgent,
            namespace: ns.into(),
            service: name.into(),
            port,
            health: Some(format!("{a2a}.well-known/agent-card.json")),
            path: a2a,
        });
    }
    forwards
}

/// The gateway, the gate's admin API, mock-db-mcp and the reviewer UI.
fn service_forwards(lab: &LabManifests) -> anyhow::Result<[ClientForward; 4]> {
    let service_port = |namespace: &str, name: &str, port_name: &str| {
        lab.service(namespace, name)
            .and_then(|s| {
                s.ports
                    .iter()
                    .find(|p| p.name.as_deref() == Some(port_name))
                    .or(s.ports.first())
            })
            .map(|p| p.port)
            .ok_or_else(|| anyhow::anyhow!("manifests/ has no Service {namespace}/{name}"))
    };
    let gateway = lab.gateway.service();
    let gate = &lab.gate.ext_auth.backend;
    let gated = lab
        .route(&lab.gate.route)
        .ok_or_else(|| anyhow::anyhow!("the gate's route is not in manifests/"))?;
    let db = &gated.backend;
    let ui = lab
        .services
        .iter()
        .find(|s| s.name == "hitl-ui")
        .ok_or_else(|| anyhow::anyhow!("manifests/ has no hitl-ui Service"))?;
    Ok([
        ClientForward {
            role: Role::Gateway,
            namespace: gateway.namespace.clone(),
            service: gateway.name.clone(),
            port: gateway.port,
            health: None,
            path: String::new(),
        },
        ClientForward {
            role: Role::ExtauthAdmin,
            namespace: gate.namespace.clone(),
            service: gate.name.clone(),
            port: service_port(&gate.namespace, &gate.name, "http")?,
            health: Some("/healthz".into()),
            path: String::new(),
        },
        ClientForward {
            role: Role::MockDb,
            namespace: db.namespace.clone(),
            service: db.name.clone(),
            port: db.port,
            health: Some("/healthz".into()),
            path: String::new(),
        },
        ClientForward {
            role: Role::ReviewerUi,
            namespace: ui.namespace.clone(),
            service: ui.name.clone(),
            port: service_port(&ui.namespace, &ui.name, "http")?,
            health: Some("/healthz".into()),
            path: String::new(),
        },
    ])
}

/// The scripted model, from its in-cluster base URL (`--model scripted` only).
fn scripted_model_forward(
    lab: &LabManifests,
    model: ModelChoice,
) -> anyhow::Result<Option<ClientForward>> {
    let Some(url) = lab.model(model).and_then(|m| m.base_url.as_deref()) else {
        return Ok(None);
    };
    if model != ModelChoice::Scripted {
        return Ok(None);
    }
    let parsed = reqwest::Url::parse(url)?;
    let host = parsed.host_str().unwrap_or_default();
    let (service, rest) = host
        .split_once('.')
        .ok_or_else(|| anyhow::anyhow!("`{url}` is not an in-cluster Service URL"))?;
    let namespace = rest.split('.').next().unwrap_or_default();
    Ok(Some(ClientForward {
        role: Role::ScriptedModel,
        namespace: namespace.into(),
        service: service.into(),
        port: parsed.port_or_known_default().unwrap_or(80),
        health: Some("/healthz".into()),
        path: String::new(),
    }))
}
