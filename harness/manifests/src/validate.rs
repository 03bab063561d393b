//! Cross-resource consistency of the manifests: every reference resolves, and the agent's
//! configuration is one kagent would accept. (The gating invariants themselves — every
//! destructive tool gated, fail closed, … — are asserted by `tests/manifests.rs`, against the
//! real MCP server's tool annotations.) The agent and its models are checked here; the
//! routes, Services, Deployments, policies, tool servers and namespaces in `wiring`.

use std::collections::BTreeSet;

use super::{LabManifests, ModelChoice, Problem, error::Location, view::Provider};

mod wiring;

use wiring::{deployments, namespaces, policies, routes, services, tool_servers};

/// Everything inconsistent in `lab`, in file order. Empty when the manifests hang together.
pub(super) fn problems(lab: &LabManifests) -> Vec<Problem> {
    let mut out = Problems::default();
    agent_tools(lab, &mut out);
    models(lab, &mut out);
    routes(lab, &mut out);
    services(lab, &mut out);
    deployments(lab, &mut out);
    policies(lab, &mut out);
    tool_servers(lab, &mut out);
    namespaces(lab, &mut out);
    let mut problems = out.0;
    problems.sort_by(|a, b| a.location.cmp(&b.location));
    problems
}

#[derive(Default)]
pub(super) struct Problems(Vec<Problem>);

impl Problems {
    pub(super) fn push(
        &mut self,
        location: &Location,
        resource: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.0.push(Problem {
            location: location.clone(),
            resource: resource.into(),
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Whether two documents can be applied together: both always, or for the same model.
pub(super) fn compatible(a: Option<ModelChoice>, b: Option<ModelChoice>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

fn agent_tools(lab: &LabManifests, out: &mut Problems) {
    let agent = &lab.agent;
    let resource = format!("Agent {}/{}", agent.namespace, agent.name);
    let mut offered = BTreeSet::new();
    for (i, tools) in agent.tools.iter().enumerate() {
        let path = format!("spec.declarative.tools[{i}].mcpServer");
        // The CRD's CEL rule: each requireApproval entry must also appear in toolNames.
        for (j, tool) in tools.require_approval.iter().enumerate() {
            if !tools.tool_names.contains(tool) {
                out.push(
                    &agent.location,
                    &resource,
                    format!("{path}.requireApproval[{j}]"),
                    format!("`{tool}` is not in toolNames, so kagent would never offer it"),
                );
            }
        }
        for (j, tool) in tools.tool_names.iter().enumerate() {
            if !offered.insert(tool.as_str()) {
                out.push(
                    &agent.location,
                    &resource,
                    format!("{path}.toolNames[{j}]"),
                    format!("`{tool}` is offered by two servers; which one the model calls would be a guess"),
                );
            }
        }
        if lab.tool_server(&tools.namespace, &tools.server).is_none() {
            out.push(
                &agent.location,
                &resource,
                format!("{path}.name"),
                format!(
                    "no RemoteMCPServer {}/{} in manifests/",
                    tools.namespace, tools.server
                ),
            );
        }
    }
}

fn models(lab: &LabManifests, out: &mut Problems) {
    let agent = &lab.agent;
    for choice in ModelChoice::ALL {
        let found = lab.models.iter().find(|m| m.choice == choice);
        match found {
            None => out.push(
                &agent.location,
                format!("Agent {}/{}", agent.namespace, agent.name),
                "spec.declarative.modelConfig",
                format!(
                    "models/{}.yaml defines no ModelConfig (every --model choice needs one)",
                    choice.as_str()
                ),
            ),
            Some(model)
                if model.name != agent.model_config || model.namespace != agent.namespace =>
            {
                out.push(
                    &model.location,
                    format!("ModelConfig {}/{}", model.namespace, model.name),
                    "metadata.name",
                    format!(
                        "the agent names ModelConfig {}/{}; every models/ file must define exactly that",
                        agent.namespace, agent.model_config
                    ),
                );
            }
            Some(_) => {}
        }
    }
    model_keys_and_urls(lab, out);
}

/// Each ModelConfig's key Secret, provider and base URL.
fn model_keys_and_urls(lab: &LabManifests, out: &mut Problems) {
    for model in &lab.models {
        let resource = format!("ModelConfig {}/{}", model.namespace, model.name);
        match (&model.api_key, model.choice.api_key_env()) {
            (None, _) => out.push(
                &model.location,
                &resource,
                "spec.apiKeySecret",
                "kagent's model clients need a key Secret (a dummy one for the scripted model)",
            ),
            // Real providers: `up` creates the Secret from the environment.
            (Some(_), Some(_)) => {}
            (Some(key), None) => {
                let present = lab.secrets.iter().any(|s| {
                    s.namespace == key.namespace
                        && s.name == key.name
                        && s.keys.contains(&key.key)
                        && compatible(s.model, Some(model.choice))
                });
                if !present {
                    out.push(
                        &model.location,
                        &resource,
                        "spec.apiKeySecret",
                        format!(
                            "no Secret {}/{} with key {} among this model's manifests",
                            key.namespace, key.name, key.key
                        ),
                    );
                }
            }
        }
        if model.choice == ModelChoice::Scripted && model.provider != Provider::OpenAi {
            out.push(
                &model.location,
                &resource,
                "spec.provider",
                "the scripted model speaks the OpenAI API",
            );
        }
        if let Some(base_url) = &model.base_url {
            check_in_cluster_url(
                lab,
                out,
                &model.location,
                &resource,
                "spec",
                base_url,
                Some(model.choice),
            );
        }
    }
}

/// A URL that should point at one of our Services: `http://name.ns.svc.cluster.local:port/…`.
pub(super) fn check_in_cluster_url(
    lab: &LabManifests,
    out: &mut Problems,
    location: &Location,
    resource: &str,
    path: &str,
    url: &str,
    model: Option<ModelChoice>,
) {
    let parsed = reqwest::Url::parse(url).ok();
    let target = parsed.as_ref().and_then(|u| {
        let host = u.host_str()?;
        let (name, rest) = host.split_once('.')?;
        let namespace = rest.strip_suffix(".svc.cluster.local")?;
        Some((
            namespace.to_owned(),
            name.to_owned(),
            u.port_or_known_default()?,
        ))
    });
    let Some((namespace, name, port)) = target else {
        out.push(
            location,
            resource,
            path,
            format!("`{url}` is not an in-cluster Service URL (http://name.namespace.svc.cluster.local:port/…)"),
        );
        return;
    };
    let ok = lab.services.iter().any(|s| {
        s.namespace == namespace
            && s.name == name
            && s.port(port).is_some()
            && compatible(s.model, model)
    });
    if !ok {
        out.push(
            location,
            resource,
            path,
            format!("`{url}`: no Service {namespace}/{name} with port {port} in manifests/"),
        );
    }
}
