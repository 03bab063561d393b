//! The port-forwards the harness's clients need on the kind lab (agents, gateway, gate admin,
//! mock-db-mcp, reviewer UI, scripted model), read from the manifests.

use hitl_lab::agents::AgentKind;
use hitl_manifests::{LabManifests, ModelChoice, ServiceRef, ServiceView};

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
        local_port: None,
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
            local_port: None,
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
            local_port: None,
        },
        ClientForward {
            role: Role::ExtauthAdmin,
            namespace: gate.namespace.clone(),
            service: gate.name.clone(),
            port: service_port(&gate.namespace, &gate.name, "http")?,
            health: Some(hitl_wire::health::HEALTHZ.into()),
            path: String::new(),
            local_port: None,
        },
        ClientForward {
            role: Role::MockDb,
            namespace: db.namespace.clone(),
            service: db.name.clone(),
            port: db.port,
            health: Some(hitl_wire::health::HEALTHZ.into()),
            path: String::new(),
            local_port: None,
        },
        ClientForward {
            role: Role::ReviewerUi,
            namespace: ui.namespace.clone(),
            service: ui.name.clone(),
            port: service_port(&ui.namespace, &ui.name, "http")?,
            health: Some(hitl_wire::health::HEALTHZ.into()),
            path: String::new(),
            local_port: Some(ui_local_port(lab, ui)?),
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
        health: Some(hitl_wire::health::HEALTHZ.into()),
        path: String::new(),
        local_port: None,
    }))
}

/// The local port hitl-ui's `ALLOWED_HOSTS` accepts on this machine (`127.0.0.1:<port>`): the
/// harness's forward must be on it, or hitl-ui answers every request 421.
fn ui_local_port(lab: &LabManifests, ui: &ServiceView) -> anyhow::Result<u16> {
    let service = ServiceRef {
        namespace: ui.namespace.clone(),
        name: ui.name.clone(),
        port: 0,
    };
    let var = hitl_wire::env::ui::ALLOWED_HOSTS;
    let allowed = lab
        .deployment_behind(&service)
        .and_then(|d| d.env_value(var))
        .ok_or_else(|| anyhow::anyhow!("hitl-ui's Deployment in manifests/ sets no {var}"))?;
    allowed
        .split(',')
        .find_map(|host| host.trim().strip_prefix("127.0.0.1:")?.parse().ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "hitl-ui's {var} ({allowed}) accepts no 127.0.0.1:<port>, so no local forward \
                 to it would be answered"
            )
        })
}
