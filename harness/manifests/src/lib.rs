//! `manifests/` as data: load every YAML document (multi-document files included, each kept
//! with its file and index), build the typed view both labs use — the agent, its tool
//! servers, the model configs, the routes, the gate — and check that every reference resolves.
//!
//! The kind lab applies these documents as they are; the local lab translates the view into
//! its Envoy and kagent-adk configuration. One definition of the lab's topology.
//!
//! How `--model` picks: the Agent always names the ModelConfig `dba-model`; each
//! `models/<choice>.yaml` defines `dba-model` for one choice (plus whatever that choice needs,
//! e.g. the scripted model's Deployment). Only the chosen file is applied
//! ([`LabManifests::docs_for`]). `--store` picks the gate's store the same way: documents
//! labelled for the other store are left out, and in SQLite mode the gate's Deployment is
//! rewritten for one replica on its PersistentVolumeClaim ([`store`]).

pub mod checkout;
mod crd;
mod docs;
mod error;
pub mod images;
mod model;
mod read;
pub mod secrets;
pub mod store;
mod units;
mod validate;
mod view;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

pub use docs::{CRDS_DIR, Doc, KIND_DIR, MODELS_DIR, manifest_files, parse_file};
pub use error::{Location, ManifestError, Problem};
pub use model::ModelChoice;
pub use read::SecretView;
pub use store::StoreChoice;
pub use units::{parse_byte_quantity, parse_duration};
pub use view::*;

/// The lab's manifests, loaded and cross-checked.
#[derive(Debug, Clone)]
pub struct LabManifests {
    /// The `manifests/` directory they were read from.
    pub root: PathBuf,
    /// Every document, in file order.
    pub docs: Vec<Doc>,
    pub namespaces: Vec<String>,
    pub services: Vec<ServiceView>,
    pub deployments: Vec<DeploymentView>,
    /// StatefulSets (the gate's PostgreSQL), read as their pod template like Deployments.
    pub stateful_sets: Vec<DeploymentView>,
    pub secrets: Vec<SecretView>,
    pub gateway: GatewayView,
    pub routes: Vec<RouteView>,
    pub policies: Vec<PolicyView>,
    /// The tier-2 gate (the policy with `extAuth`, and its timeouts).
    pub gate: GateView,
    pub tool_servers: Vec<ToolServerView>,
    pub agent: AgentView,
    /// BYO Agents (the LangGraph agent), built from `python/<image name>/`.
    pub byo_agents: Vec<ByoAgentView>,
    /// One per `--model` choice.
    pub models: Vec<ModelConfigView>,
}

impl LabManifests {
    /// `<workspace>/manifests`.
    pub fn dir() -> PathBuf {
        crate::checkout::workspace_root().join("manifests")
    }

    /// Load the workspace's `manifests/`.
    pub fn load() -> Result<Self, ManifestError> {
        Self::load_from(&Self::dir())
    }

    /// Load the manifests under `root`.
    pub fn load_from(root: &Path) -> Result<Self, ManifestError> {
        Self::from_docs(root, docs::load_docs(root)?)
    }

    /// Build and check the view from already-parsed documents (tests feed altered ones).
    pub fn from_docs(root: &Path, docs: Vec<Doc>) -> Result<Self, ManifestError> {
        check_duplicates(&docs)?;
        let mut namespaces = Vec::new();
        let mut services = Vec::new();
        let mut deployments = Vec::new();
        let mut stateful_sets = Vec::new();
        let mut secrets = Vec::new();
        let mut gateways = Vec::new();
        let mut routes = Vec::new();
        let mut policies = Vec::new();
        let mut tool_servers = Vec::new();
        let mut agents = Vec::new();
        let mut byo_agents = Vec::new();
        let mut models = Vec::new();
        for doc in &docs {
            match (doc.group(), doc.kind.as_str()) {
                ("", "Namespace") => namespaces.push(doc.name.clone()),
                ("", "Service") => services.push(read::service(doc)?),
                ("", "Secret") => secrets.push(read::secret(doc)?),
                ("apps", "Deployment") => deployments.push(read::deployment(doc)?),
                ("apps", "StatefulSet") => stateful_sets.push(read::stateful_set(doc)?),
                ("gateway.networking.k8s.io", "Gateway") => gateways.push(read::gateway(doc)?),
                ("gateway.networking.k8s.io", "HTTPRoute") => routes.push(read::route(doc)?),
                ("agentgateway.dev", "AgentgatewayPolicy") => policies.push(read::policy(doc)?),
                ("kagent.dev", "RemoteMCPServer") => tool_servers.push(read::tool_server(doc)?),
                ("kagent.dev", "Agent") if read::is_byo(doc)? => {
                    byo_agents.push(read::byo_agent(doc)?)
                }
                ("kagent.dev", "Agent") => agents.push(read::agent(doc)?),
                ("kagent.dev", "ModelConfig") => models.push(read::model_config(doc)?),
                _ => {} // applied as-is (NetworkPolicy, …); the schema test checks them
            }
        }
        let gateway = exactly_one(gateways, "Gateway")?;
        let agent = exactly_one(agents, "Agent")?;
        let gate = gate(&policies, &routes)?;
        let lab = LabManifests {
            root: root.to_path_buf(),
            docs,
            namespaces,
            services,
            deployments,
            stateful_sets,
            secrets,
            gateway,
            routes,
            policies,
            gate,
            tool_servers,
            agent,
            byo_agents,
            models,
        };
        let problems = validate::problems(&lab);
        if problems.is_empty() {
            Ok(lab)
        } else {
            Err(ManifestError::Invalid(problems))
        }
    }

    /// The documents `up --model <model>` applies with the default store (PostgreSQL: the
    /// manifests as written), in file order.
    pub fn docs_for(&self, model: ModelChoice) -> impl Iterator<Item = &Doc> {
        self.docs
            .iter()
            .filter(move |d| d.applies_to(model) && d.applies_to_store(StoreChoice::Postgres))
    }

    /// The ModelConfig for a `--model` choice (validation guarantees there is one).
    pub fn model(&self, choice: ModelChoice) -> Option<&ModelConfigView> {
        self.models.iter().find(|m| m.choice == choice)
    }

    pub fn route(&self, name: &str) -> Option<&RouteView> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// The route a request path takes (the longest matching prefix, as Gateway API does).
    pub fn route_for_path(&self, path: &str) -> Option<&RouteView> {
        self.routes
            .iter()
            .filter(|r| r.matches(path))
            .max_by_key(|r| r.path_prefix.len())
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceView> {
        self.services
            .iter()
            .find(|s| s.namespace == namespace && s.name == name)
    }

    pub fn deployment(&self, namespace: &str, name: &str) -> Option<&DeploymentView> {
        self.deployments
            .iter()
            .find(|d| d.namespace == namespace && d.name == name)
    }

    pub fn tool_server(&self, namespace: &str, name: &str) -> Option<&ToolServerView> {
        self.tool_servers
            .iter()
            .find(|s| s.namespace == namespace && s.name == name)
    }

    /// The HTTPRoute a tool server's URL goes through.
    pub fn route_of(&self, server: &ToolServerView) -> Option<&RouteView> {
        self.route_for_path(&server.path)
    }

    /// Every AgentgatewayPolicy attached to a route.
    pub fn policies_on_route(&self, route: &str) -> Vec<&PolicyView> {
        self.policies
            .iter()
            .filter(|p| p.targets_route(route))
            .collect()
    }

    /// For every tool the agent is given: where it comes from and which tiers gate it.
    pub fn tool_gating(&self) -> Vec<ToolGating> {
        let mut out = Vec::new();
        for tools in &self.agent.tools {
            let route = self
                .tool_server(&tools.namespace, &tools.server)
                .and_then(|s| self.route_of(s));
            let tier2 = route.is_some_and(|r| r.name == self.gate.route);
            for tool in &tools.tool_names {
                out.push(ToolGating {
                    tool: tool.clone(),
                    server: tools.server.clone(),
                    route: route.map(|r| r.name.clone()),
                    tier1: tools.require_approval.contains(tool),
                    tier2,
                });
            }
        }
        out
    }

    /// The Deployment serving a Service (by selector).
    pub fn deployment_behind(&self, service: &ServiceRef) -> Option<&DeploymentView> {
        let selector = &self.service(&service.namespace, &service.name)?.selector;
        self.deployments
            .iter()
            .find(|d| d.namespace == service.namespace && read::selects(selector, &d.pod_labels))
    }

    /// How long the gate holds a call for a human: `PARK_TIMEOUT_SEC` of the ext-auth server.
    pub fn park_timeout(&self) -> Option<Duration> {
        self.deployment_behind(&self.gate.ext_auth.backend)?
            .env_value(hitl_wire::env::extauth::PARK_TIMEOUT_SEC)?
            .parse()
            .ok()
            .map(Duration::from_secs)
    }

    /// Request headers the Gateway removes before routing (PreRouting transformations of
    /// policies targeting the Gateway): no route policy, the gate included, sees a client's copy.
    pub fn stripped_request_headers(&self) -> Vec<String> {
        let mut headers: Vec<String> = self
            .policies
            .iter()
            .filter(|p| p.pre_routing && p.namespace == self.gateway.namespace)
            .filter(|p| {
                p.targets
                    .iter()
                    .any(|(kind, name)| kind == "Gateway" && *name == self.gateway.name)
            })
            .flat_map(|p| p.removes_request_headers.iter().cloned())
            .collect();
        headers.sort();
        headers.dedup();
        headers
    }

    /// The gate's approval policy (TOML): the `policy.toml` of the ConfigMap the gate mounts
    /// at the directory of its `APPROVAL_POLICY_FILE`.
    pub fn approval_policy(&self) -> Option<&str> {
        self.docs
            .iter()
            .find(|d| d.kind == "ConfigMap" && d.name == APPROVAL_POLICY_CONFIGMAP)?
            .value
            .pointer("/data/policy.toml")?
            .as_str()
    }

    /// How the gate writes a denial (`DENY_RESPONSE` of the gate's Deployment), if set.
    pub fn deny_response(&self) -> Option<&str> {
        self.deployment_behind(&self.gate.ext_auth.backend)?
            .env_value(hitl_wire::env::extauth::DENY_RESPONSE)
    }
}

/// The ConfigMap that holds the gate's approval policy.
pub const APPROVAL_POLICY_CONFIGMAP: &str = "hitl-approval-policy";

fn exactly_one<T>(mut items: Vec<T>, kind: &str) -> Result<T, ManifestError> {
    match items.len() {
        1 => Ok(items.remove(0)),
        0 => Err(ManifestError::Missing {
            what: kind.to_owned(),
        }),
        n => Err(ManifestError::Missing {
            what: format!("single {kind} (found {n}; the lab has exactly one)"),
        }),
    }
}

/// The gate: the one policy with `extAuth`, on one HTTPRoute, plus the backend timeout of
/// any policy targeting the ext-auth Service.
fn gate(policies: &[PolicyView], routes: &[RouteView]) -> Result<GateView, ManifestError> {
    let with_ext_auth: Vec<(&PolicyView, &ExtAuthView)> = policies
        .iter()
        .filter_map(|p| Some((p, p.ext_auth.as_ref()?)))
        .collect();
    let [(policy, ext_auth)] = with_ext_auth.as_slice() else {
        return Err(ManifestError::Missing {
            what: format!(
                "single AgentgatewayPolicy with traffic.extAuth (found {})",
                with_ext_auth.len()
            ),
        });
    };
    let ext_auth = (*ext_auth).clone();
    let resource = format!("AgentgatewayPolicy {}/{}", policy.namespace, policy.name);
    let route = match policy.targets.as_slice() {
        [(kind, name)] if kind == "HTTPRoute" => routes
            .iter()
            .find(|r| &r.name == name && r.namespace == policy.namespace)
            .ok_or_else(|| {
                ManifestError::field(
                    &policy.location,
                    &resource,
                    "spec.targetRefs[0]",
                    format!("no HTTPRoute {}/{name} in manifests/", policy.namespace),
                )
            })?,
        _ => {
            return Err(ManifestError::field(
                &policy.location,
                &resource,
                "spec.targetRefs",
                "the gate targets exactly one HTTPRoute (the privileged one)",
            ));
        }
    };
    let ext_auth_timeout = policies
        .iter()
        .filter(|p| p.namespace == ext_auth.backend.namespace)
        .filter(|p| p.targets_service(&ext_auth.backend.name))
        .find_map(|p| p.backend_request_timeout);
    let ext_auth_mtls_secret = policies
        .iter()
        .filter(|p| p.namespace == ext_auth.backend.namespace)
        .filter(|p| p.targets_service(&ext_auth.backend.name))
        .find_map(|p| p.backend_mtls_secret.clone());
    Ok(GateView {
        policy: policy.name.clone(),
        route: route.name.clone(),
        path_prefix: route.path_prefix.clone(),
        request_timeout: policy.request_timeout,
        ext_auth_timeout,
        ext_auth_mtls_secret,
        ext_auth,
        jwt: policy.jwt.clone(),
    })
}

/// The same resource twice is a mistake, unless the copies belong to different `--model`
/// choices (each `models/` file defines `dba-model`).
fn check_duplicates(docs: &[Doc]) -> Result<(), ManifestError> {
    let mut seen: BTreeMap<(String, String, Option<String>, String), Vec<&Doc>> = BTreeMap::new();
    for doc in docs {
        let key = (
            doc.group().to_owned(),
            doc.kind.clone(),
            doc.namespace.clone(),
            doc.name.clone(),
        );
        let earlier = seen.entry(key).or_default();
        if let Some(first) = earlier.iter().find(|d| match (d.model, doc.model) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }) {
            return Err(ManifestError::Duplicate {
                resource: doc.resource(),
                first: first.location.clone(),
                second: doc.location.clone(),
            });
        }
        earlier.push(doc);
    }
    Ok(())
}
