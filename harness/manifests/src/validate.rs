//! Cross-resource consistency of the manifests: every reference resolves, and the agent's
//! configuration is one kagent would accept. (The gating invariants themselves — every
//! destructive tool gated, fail closed, … — are asserted by `tests/manifests.rs`, against the
//! real MCP server's tool annotations.)

use std::collections::BTreeSet;

use super::{
    LabManifests, ModelChoice, Problem,
    error::Location,
    secrets,
    view::{EnvSource, Provider},
};

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
struct Problems(Vec<Problem>);

impl Problems {
    fn push(
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
fn compatible(a: Option<ModelChoice>, b: Option<ModelChoice>) -> bool {
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
fn check_in_cluster_url(
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

fn routes(lab: &LabManifests, out: &mut Problems) {
    for route in &lab.routes {
        let resource = format!("HTTPRoute {}/{}", route.namespace, route.name);
        if route.gateway != lab.gateway.name || route.namespace != lab.gateway.namespace {
            out.push(
                &route.location,
                &resource,
                "spec.parentRefs[0].name",
                format!(
                    "no Gateway {}/{} in manifests/",
                    route.namespace, route.gateway
                ),
            );
        }
        if !route.path_prefix.starts_with('/') {
            out.push(
                &route.location,
                &resource,
                "spec.rules[0].matches[0].path.value",
                "a path prefix starts with `/`",
            );
        }
        let backend = &route.backend;
        let exists = lab.services.iter().any(|s| {
            s.namespace == backend.namespace
                && s.name == backend.name
                && s.port(backend.port).is_some()
                && s.model.is_none()
        });
        if !exists {
            out.push(
                &route.location,
                &resource,
                "spec.rules[0].backendRefs[0]",
                format!("no Service port {backend} (applied for every --model) in manifests/"),
            );
        }
    }
}

fn services(lab: &LabManifests, out: &mut Problems) {
    for service in &lab.services {
        let resource = format!("Service {}/{}", service.namespace, service.name);
        let target = lab.deployments.iter().find(|d| {
            d.namespace == service.namespace
                && compatible(d.model, service.model)
                && super::read::selects(&service.selector, &d.pod_labels)
        });
        let Some(deployment) = target else {
            out.push(
                &service.location,
                &resource,
                "spec.selector",
                "selects no Deployment's pods in manifests/",
            );
            continue;
        };
        for (i, port) in service.ports.iter().enumerate() {
            let Some(target) = &port.target_port else {
                continue;
            };
            let known = target.parse::<u16>().is_ok()
                || deployment
                    .containers
                    .iter()
                    .any(|c| c.ports.contains_key(target));
            if !known {
                out.push(
                    &service.location,
                    &resource,
                    format!("spec.ports[{i}].targetPort"),
                    format!(
                        "`{target}` is not a named container port of Deployment {}",
                        deployment.name
                    ),
                );
            }
        }
    }
}

fn deployments(lab: &LabManifests, out: &mut Problems) {
    for deployment in &lab.deployments {
        let resource = format!("Deployment {}/{}", deployment.namespace, deployment.name);
        let secret_ok = |name: &str, key: Option<&str>| {
            if let Some(generated) = secrets::generated(&deployment.namespace, name) {
                return key.is_none_or(|k| generated.keys().contains(&k));
            }
            lab.secrets.iter().any(|s| {
                s.namespace == deployment.namespace
                    && s.name == name
                    && key.is_none_or(|k| s.keys.iter().any(|have| have == k))
                    && compatible(s.model, deployment.model)
            })
        };
        for (c, container) in deployment.containers.iter().enumerate() {
            let path = format!("spec.template.spec.containers[{c}]");
            for (var, source) in &container.env {
                if let EnvSource::Secret(key) = source
                    && !secret_ok(&key.name, Some(&key.key))
                {
                    out.push(
                        &deployment.location,
                        &resource,
                        format!("{path}.env[{var}]"),
                        format!(
                            "Secret {}/{} key {} is neither in manifests/ nor generated by `up`",
                            key.namespace, key.name, key.key
                        ),
                    );
                }
            }
            let ours = container.image.starts_with("hitl-lab/");
            let local_policy = matches!(
                container.image_pull_policy.as_deref(),
                Some("IfNotPresent" | "Never")
            );
            if ours && !local_policy {
                out.push(
                    &deployment.location,
                    &resource,
                    format!("{path}.imagePullPolicy"),
                    "our images exist only in the nodes (`kind load`): use IfNotPresent or Never",
                );
            }
        }
        for name in &deployment.secret_volumes {
            if !secret_ok(name, None) {
                out.push(
                    &deployment.location,
                    &resource,
                    "spec.template.spec.volumes",
                    format!(
                        "Secret {}/{name} is neither in manifests/ nor generated by `up`",
                        deployment.namespace
                    ),
                );
            }
        }
    }
}

fn policies(lab: &LabManifests, out: &mut Problems) {
    for policy in &lab.policies {
        let resource = format!("AgentgatewayPolicy {}/{}", policy.namespace, policy.name);
        for (i, (kind, name)) in policy.targets.iter().enumerate() {
            let exists = match kind.as_str() {
                "HTTPRoute" => lab
                    .routes
                    .iter()
                    .any(|r| r.namespace == policy.namespace && &r.name == name),
                "Service" => lab
                    .services
                    .iter()
                    .any(|s| s.namespace == policy.namespace && &s.name == name),
                "Gateway" => lab.gateway.namespace == policy.namespace && &lab.gateway.name == name,
                _ => false,
            };
            if !exists {
                out.push(
                    &policy.location,
                    &resource,
                    format!("spec.targetRefs[{i}]"),
                    format!("no {kind} {}/{name} in manifests/", policy.namespace),
                );
            }
        }
        if let Some(ext_auth) = &policy.ext_auth {
            let backend = &ext_auth.backend;
            let exists = lab.services.iter().any(|s| {
                s.namespace == backend.namespace
                    && s.name == backend.name
                    && s.port(backend.port).is_some()
            });
            if !exists {
                out.push(
                    &policy.location,
                    &resource,
                    "spec.traffic.extAuth.backendRef",
                    format!("no Service port {backend} in manifests/"),
                );
            }
        }
    }
}

fn tool_servers(lab: &LabManifests, out: &mut Problems) {
    let gateway = lab.gateway.service();
    for server in &lab.tool_servers {
        let resource = format!("RemoteMCPServer {}/{}", server.namespace, server.name);
        if server.host != gateway.host() || server.port != gateway.port {
            out.push(
                &server.location,
                &resource,
                "spec.url",
                format!(
                    "goes around the gateway: the agent must reach MCP servers through {}:{}",
                    gateway.host(),
                    gateway.port
                ),
            );
        } else if lab.route_for_path(&server.path).is_none() {
            out.push(
                &server.location,
                &resource,
                "spec.url",
                format!("no HTTPRoute matches the path `{}`", server.path),
            );
        }
    }
}

fn namespaces(lab: &LabManifests, out: &mut Problems) {
    for doc in &lab.docs {
        if let Some(ns) = &doc.namespace
            && !lab.namespaces.contains(ns)
        {
            out.push(
                &doc.location,
                doc.resource(),
                "metadata.namespace",
                format!("no Namespace {ns} in manifests/"),
            );
        }
    }
}
