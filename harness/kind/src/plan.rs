//! `up` as data: a [`Plan`] of numbered phases and [`Step`]s, built purely from the manifests
//! and the pinned versions. The dry run prints it; the real run executes the very same steps
//! (`run.rs`), so what you read is what happens.

use std::{fmt::Write as _, time::Duration};

use crate::{
    agents::AgentKind,
    manifests::{Doc, LabManifests, ModelChoice, Provider, secrets},
};

use super::{
    cmd::Cmd,
    expose::{ClientForward, Role},
    metallb, versions,
};

/// Field manager for every server-side apply.
pub const FIELD_MANAGER: &str = "hitl-lab";
/// The docker network kind puts its nodes on.
pub const KIND_NETWORK: &str = "kind";

const SHORT_WAIT: Duration = Duration::from_secs(5 * 60);
/// kagent's images (and the agent's Python runtime image) are large: allow for slow pulls.
const LONG_WAIT: Duration = Duration::from_secs(15 * 60);

/// One thing `up` does.
#[derive(Debug, Clone)]
pub enum Step {
    /// `kind create cluster`, skipped if a cluster of that name exists.
    CreateCluster { name: String, cmd: Cmd },
    /// An external command that is idempotent by itself (apply, helm upgrade --install, build).
    Run { what: String, cmd: Cmd },
    /// Until these CustomResourceDefinitions are Established.
    WaitCrds { names: Vec<String> },
    /// Until these Deployments are Available (all of the namespace's when `names` is empty).
    WaitDeployments {
        namespace: String,
        names: Vec<String>,
        timeout: Duration,
    },
    /// Read the kind network's subnet, apply MetalLB's IPAddressPool + L2Advertisement.
    MetalLbPool { inspect: Cmd },
    /// Create a random Secret if it does not exist (kept across runs).
    GenerateSecret(secrets::GeneratedSecret),
    /// Create or update a Secret from an environment variable (an API key).
    SecretFromEnv {
        namespace: String,
        name: String,
        key: String,
        env: String,
    },
    /// Server-side apply these documents, in this order.
    Apply { what: String, docs: Vec<Doc> },
    /// Until the Gateway has an address (MetalLB) and is Programmed.
    WaitGatewayAddress {
        namespace: String,
        name: String,
        timeout: Duration,
    },
    /// Background port-forwards for the harness's clients, recorded in the lab state file.
    Expose { forwards: Vec<ClientForward> },
    /// Until the Agent's Ready condition is True.
    WaitAgentReady {
        namespace: String,
        name: String,
        timeout: Duration,
    },
    /// Print where everything is.
    PrintUrls {
        agent_namespace: String,
        agent_name: String,
    },
}

/// A numbered group of steps.
#[derive(Debug, Clone)]
pub struct Phase {
    pub title: String,
    pub steps: Vec<Step>,
}

/// Everything `up` does, in order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub cluster: String,
    pub model: ModelChoice,
    /// Workspace files the run reads (kind config, Dockerfiles), checked in pre-flight.
    pub files: Vec<String>,
    pub preflight: Vec<String>,
    pub phases: Vec<Phase>,
}

/// The kube context kind creates for a cluster.
pub fn context(cluster: &str) -> String {
    format!("kind-{cluster}")
}

/// The cluster name in `manifests/kind/cluster.yaml`.
pub fn cluster_name(lab: &LabManifests) -> anyhow::Result<String> {
    let path = lab
        .root
        .join(crate::manifests::KIND_DIR)
        .join("cluster.yaml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let config: serde_json::Value = serde_yaml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?;
    config["name"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{} has no `name`", path.display()))
}

/// Order in which kinds are applied: what others refer to first.
fn apply_rank(doc: &Doc) -> u8 {
    match (doc.group(), doc.kind.as_str()) {
        ("", "Namespace") => 0,
        ("", "ServiceAccount" | "Secret" | "ConfigMap") => 1,
        ("", "Service") => 2,
        ("apps", _) => 3,
        ("networking.k8s.io", _) => 4,
        ("gateway.networking.k8s.io", "Gateway") => 5,
        ("gateway.networking.k8s.io", _) => 6,
        ("agentgateway.dev", _) => 7,
        ("kagent.dev", "ModelConfig") => 8,
        ("kagent.dev", "RemoteMCPServer") => 9,
        ("kagent.dev", "Agent") => 11,
        _ => 10,
    }
}

impl Plan {
    /// The plan for `cargo xtask up --model <model>`.
    pub fn up(lab: &LabManifests, model: ModelChoice) -> anyhow::Result<Self> {
        let cluster = cluster_name(lab)?;
        let ctx = context(&cluster);
        let kubectl = || Cmd::new("kubectl").args(["--context", ctx.as_str()]);
        let helm = |release: &str, chart: String, version: &str, namespace: &str| {
            Cmd::new("helm")
                .args(["upgrade", "--install", release])
                .arg(chart)
                .args([
                    "--version",
                    version,
                    "--namespace",
                    namespace,
                    "--create-namespace",
                ])
                .args(["--kube-context", ctx.as_str()])
        };
        let mut phases = Vec::new();

        // 1. the cluster
        let config = format!("manifests/{}/cluster.yaml", crate::manifests::KIND_DIR);
        phases.push(Phase {
            title: "kind cluster".into(),
            steps: vec![Step::CreateCluster {
                name: cluster.clone(),
                cmd: Cmd::new("kind")
                    .args(["create", "cluster", "--name", &cluster, "--config", &config]),
            }],
        });

        // 2. MetalLB
        phases.push(Phase {
            title: format!("MetalLB {}", versions::METALLB),
            steps: vec![
                Step::Run {
                    what: "install MetalLB (native manifest)".into(),
                    cmd: kubectl()
                        .args(["apply", "--server-side", "-f"])
                        .arg(versions::metallb_manifest()),
                },
                Step::WaitDeployments {
                    namespace: metallb::NAMESPACE.into(),
                    names: vec!["controller".into()],
                    timeout: SHORT_WAIT,
                },
                Step::MetalLbPool {
                    inspect: Cmd::new("docker").args(["network", "inspect", KIND_NETWORK]),
                },
            ],
        });

        // 3. CRDs and control planes
        let gateway_crds = ["gatewayclasses", "gateways", "httproutes"]
            .map(|plural| format!("{plural}.gateway.networking.k8s.io"));
        let mut kagent = helm(
            "kagent",
            format!("{}/kagent", versions::KAGENT_CHARTS),
            versions::KAGENT,
            "kagent",
        );
        for (key, value) in kagent_values(lab, model)? {
            kagent = kagent.arg("--set").arg(format!("{key}={value}"));
        }
        phases.push(Phase {
            title: "Gateway API, agentgateway and kagent".into(),
            steps: vec![
                Step::Run {
                    what: format!(
                        "Gateway API CRDs {} (standard channel)",
                        versions::GATEWAY_API
                    ),
                    cmd: kubectl()
                        .args(["apply", "--server-side", "-f"])
                        .arg(versions::gateway_api_manifest()),
                },
                Step::WaitCrds {
                    names: gateway_crds.to_vec(),
                },
                Step::Run {
                    what: format!("agentgateway CRDs {}", versions::AGENTGATEWAY),
                    cmd: helm(
                        "agentgateway-crds",
                        format!("{}/agentgateway-crds", versions::AGENTGATEWAY_CHARTS),
                        versions::AGENTGATEWAY,
                        "agentgateway-system",
                    ),
                },
                Step::Run {
                    what: format!("agentgateway control plane {}", versions::AGENTGATEWAY),
                    cmd: helm(
                        "agentgateway",
                        format!("{}/agentgateway", versions::AGENTGATEWAY_CHARTS),
                        versions::AGENTGATEWAY,
                        "agentgateway-system",
                    ),
                },
                Step::WaitDeployments {
                    namespace: "agentgateway-system".into(),
                    names: Vec::new(),
                    timeout: SHORT_WAIT,
                },
                Step::Run {
                    what: format!("kagent CRDs {}", versions::KAGENT),
                    cmd: helm(
                        "kagent-crds",
                        format!("{}/kagent-crds", versions::KAGENT_CHARTS),
                        versions::KAGENT,
                        "kagent",
                    ),
                },
                Step::Run {
                    what: format!(
                        "kagent {} (bundled agents and tools off; default model = --model {})",
                        versions::KAGENT,
                        model.as_str()
                    ),
                    cmd: kagent,
                },
                Step::WaitDeployments {
                    namespace: "kagent".into(),
                    names: Vec::new(),
                    timeout: LONG_WAIT,
                },
            ],
        });

        // 4. our images
        // (image, how to build it): our Rust services from the workspace's one `Dockerfile`
        // (`--build-arg SERVICE=<crate>`), BYO agents from their own directory's.
        let mut images: Vec<(String, ImageSource)> = Vec::new();
        for deployment in lab
            .deployments
            .iter()
            .filter(|d| d.model.is_none_or(|m| m == model))
        {
            for container in &deployment.containers {
                if let Some(rest) = container.image.strip_prefix("hitl-lab/") {
                    let crate_dir = rest.split(':').next().unwrap_or(rest).to_owned();
                    if !images.iter().any(|(image, _)| image == &container.image) {
                        images.push((container.image.clone(), ImageSource::Service(crate_dir)));
                    }
                }
            }
        }
        // BYO agents: `hitl-lab/<name>:tag` is built from `python/<name>/Dockerfile`.
        for agent in &lab.byo_agents {
            if let Some(rest) = agent.image.strip_prefix("hitl-lab/") {
                let dir = format!("python/{}", rest.split(':').next().unwrap_or(rest));
                if !images.iter().any(|(image, _)| image == &agent.image) {
                    images.push((agent.image.clone(), ImageSource::Dir(dir)));
                }
            }
        }
        let mut steps = Vec::new();
        for (image, source) in &images {
            let mut args = vec!["build".to_owned(), "--tag".to_owned(), image.clone()];
            args.extend(["--file".to_owned(), source.dockerfile()]);
            if let ImageSource::Service(name) = source {
                args.extend(["--build-arg".to_owned(), format!("SERVICE={name}")]);
            }
            args.push(".".to_owned());
            steps.push(Step::Run {
                what: format!("build {image}"),
                cmd: Cmd::new("docker").args(args),
            });
            steps.push(Step::Run {
                what: format!("load {image} into the cluster's nodes"),
                cmd: Cmd::new("kind").args(["load", "docker-image", image, "--name", &cluster]),
            });
        }
        phases.push(Phase {
            title: "our images".into(),
            steps,
        });

        // 5. the manifests
        let mut docs: Vec<Doc> = lab.docs_for(model).cloned().collect();
        docs.sort_by_key(apply_rank);
        let (namespaces, rest): (Vec<Doc>, Vec<Doc>) =
            docs.into_iter().partition(|d| d.kind == "Namespace");
        let mut steps = vec![Step::Apply {
            what: "namespaces".into(),
            docs: namespaces,
        }];
        steps.extend(secrets::GENERATED.iter().copied().map(Step::GenerateSecret));
        if let (Some(var), Some(config)) = (model.api_key_env(), lab.model(model))
            && let Some(key) = &config.api_key
        {
            steps.push(Step::SecretFromEnv {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                key: key.key.clone(),
                env: var.to_owned(),
            });
        }
        steps.push(Step::Apply {
            what: format!("manifests/ for --model {}", model.as_str()),
            docs: rest,
        });
        let ours: Vec<_> = lab
            .deployments
            .iter()
            .filter(|d| d.model.is_none_or(|m| m == model))
            .collect();
        let namespaces: std::collections::BTreeSet<&str> =
            ours.iter().map(|d| d.namespace.as_str()).collect();
        for namespace in namespaces {
            steps.push(Step::WaitDeployments {
                namespace: namespace.to_owned(),
                names: ours
                    .iter()
                    .filter(|d| d.namespace == namespace)
                    .map(|d| d.name.clone())
                    .collect(),
                timeout: SHORT_WAIT,
            });
        }
        steps.push(Step::WaitGatewayAddress {
            namespace: lab.gateway.namespace.clone(),
            name: lab.gateway.name.clone(),
            timeout: SHORT_WAIT,
        });
        steps.push(Step::WaitAgentReady {
            namespace: lab.agent.namespace.clone(),
            name: lab.agent.name.clone(),
            timeout: LONG_WAIT,
        });
        for agent in &lab.byo_agents {
            steps.push(Step::WaitAgentReady {
                namespace: agent.namespace.clone(),
                name: agent.name.clone(),
                timeout: LONG_WAIT,
            });
        }
        phases.push(Phase {
            title: "the lab's manifests (server-side apply, field manager hitl-lab)".into(),
            steps,
        });

        // 6. where things are
        phases.push(Phase {
            title: "where everything is".into(),
            steps: vec![
                Step::Expose {
                    forwards: client_forwards(lab, model)?,
                },
                Step::PrintUrls {
                    agent_namespace: lab.agent.namespace.clone(),
                    agent_name: lab.agent.name.clone(),
                },
            ],
        });

        let mut files = vec![config];
        for (_, source) in &images {
            let file = source.dockerfile();
            if !files.contains(&file) {
                files.push(file);
            }
        }
        Ok(Plan {
            cluster,
            model,
            preflight: super::preflight::checks(model, &files),
            files,
            phases,
        })
    }

    /// The dry run's text: every step, every command, in order.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "cargo xtask up --model {} (kind cluster `{}`, kube context `{}`): every step, nothing changed\n",
            self.model.as_str(),
            self.cluster,
            context(&self.cluster)
        );
        let _ = writeln!(out, "pre-flight (all problems reported at once):");
        for check in &self.preflight {
            let _ = writeln!(out, "  - {check}");
        }
        for (p, phase) in self.phases.iter().enumerate() {
            let _ = writeln!(out, "\n{}. {}", p + 1, phase.title);
            for (s, step) in phase.steps.iter().enumerate() {
                let _ = writeln!(out, "  {}.{} {}", p + 1, s + 1, step.describe());
                for detail in step.details() {
                    let _ = writeln!(out, "        {detail}");
                }
            }
        }
        out
    }

    /// Number of steps, for progress (`[3/27]`).
    pub fn len(&self) -> usize {
        self.phases.iter().map(|p| p.steps.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Step {
    /// One line: what the step does.
    pub fn describe(&self) -> String {
        match self {
            Step::CreateCluster { name, .. } => {
                format!("create kind cluster `{name}` (skipped if it exists)")
            }
            Step::Run { what, .. } => what.clone(),
            Step::WaitCrds { names } => {
                format!("wait until CRDs are Established: {}", names.join(", "))
            }
            Step::WaitDeployments {
                namespace,
                names,
                timeout,
            } => {
                let which = if names.is_empty() {
                    format!("every Deployment in {namespace}")
                } else {
                    names
                        .iter()
                        .map(|n| format!("{namespace}/{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "wait until Available: {which} (up to {}s)",
                    timeout.as_secs()
                )
            }
            Step::MetalLbPool { .. } => format!(
                "MetalLB pool from the kind network's IPv4 subnet: IPAddressPool + L2Advertisement \
                 {}/{} = broadcast-55 .. broadcast-5 (172.18.255.200-172.18.255.250 for 172.18.0.0/16)",
                metallb::NAMESPACE,
                metallb::POOL
            ),
            Step::GenerateSecret(s) => format!(
                "Secret {}/{} (key{} {}): random, created once, kept on later runs",
                s.namespace,
                s.name,
                if s.keys().len() > 1 { "s" } else { "" },
                s.keys().join(", ")
            ),
            Step::SecretFromEnv {
                namespace,
                name,
                key,
                env,
            } => format!("Secret {namespace}/{name} (key {key}) from ${env}, never printed"),
            Step::Apply { what, docs } => format!("apply {what} ({} resources)", docs.len()),
            Step::WaitGatewayAddress {
                namespace,
                name,
                timeout,
            } => format!(
                "wait until Gateway {namespace}/{name} has a LoadBalancer address (up to {}s)",
                timeout.as_secs()
            ),
            Step::WaitAgentReady {
                namespace,
                name,
                timeout,
            } => format!(
                "wait until Agent {namespace}/{name} is Ready (up to {}s)",
                timeout.as_secs()
            ),
            Step::Expose { forwards } => format!(
                "background port-forwards for scenes, chat and status ({}), recorded in \
                 target/lab/state.json; `down` stops them",
                forwards
                    .iter()
                    .map(|f| f.role.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Step::PrintUrls { .. } => {
                "print the gateway URLs, the UIs and the port-forward command".to_owned()
            }
        }
    }

    /// Further lines: the command, or the resources.
    pub fn details(&self) -> Vec<String> {
        match self {
            Step::CreateCluster { cmd, .. } | Step::Run { cmd, .. } => vec![format!("$ {cmd}")],
            Step::MetalLbPool { inspect } => vec![format!("$ {inspect}")],
            Step::Expose { forwards } => forwards.iter().map(ToString::to_string).collect(),
            Step::Apply { docs, .. } => docs
                .iter()
                .map(|d| {
                    format!(
                        "{} {}  ({})",
                        d.api_version,
                        d.resource(),
                        d.location.file.display()
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// kagent chart values: the chosen model as kagent's default model config (the same provider,
/// model, key Secret and base URL as `dba-model`), and none of the bundled agents and tool
/// servers, which the lab does not use (and which would each pull an image and want a key).
fn kagent_values(lab: &LabManifests, model: ModelChoice) -> anyhow::Result<Vec<(String, String)>> {
    let config = lab.model(model).ok_or_else(|| {
        anyhow::anyhow!(
            "manifests/models/{}.yaml has no ModelConfig",
            model.as_str()
        )
    })?;
    let provider = match config.provider {
        Provider::OpenAi => "openAI",
        Provider::Anthropic => "anthropic",
    };
    let mut values = vec![
        ("providers.default".to_owned(), provider.to_owned()),
        (format!("providers.{provider}.model"), config.model.clone()),
    ];
    if let Some(key) = &config.api_key {
        values.push((
            format!("providers.{provider}.apiKeySecretRef"),
            key.name.clone(),
        ));
        values.push((
            format!("providers.{provider}.apiKeySecretKey"),
            key.key.clone(),
        ));
    }
    if let Some(url) = &config.base_url {
        values.push((format!("providers.{provider}.config.baseUrl"), url.clone()));
    }
    for off in [
        "k8s-agent",
        "kgateway-agent",
        "istio-agent",
        "promql-agent",
        "observability-agent",
        "argo-rollouts-agent",
        "helm-agent",
        "cilium-policy-agent",
        "cilium-manager-agent",
        "cilium-debug-agent",
        "kagent-tools",
        "grafana-mcp",
        "querydoc",
    ] {
        values.push((format!("{off}.enabled"), "false".to_owned()));
    }
    Ok(values)
}

/// kagent's controller Service (chart defaults): where agents' A2A endpoints are served.
pub const KAGENT_CONTROLLER: (&str, &str, u16) = ("kagent", "kagent-controller", 8083);

/// The forwards the harness's clients need, from the manifests.
fn client_forwards(lab: &LabManifests, model: ModelChoice) -> anyhow::Result<Vec<ClientForward>> {
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
    let (ns, name, port) = KAGENT_CONTROLLER;
    let a2a = format!("/api/a2a/{}/{}/", lab.agent.namespace, lab.agent.name);
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
    forwards.extend([
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
    ]);
    if let Some(url) = lab.model(model).and_then(|m| m.base_url.as_deref())
        && model == ModelChoice::Scripted
    {
        let parsed = reqwest::Url::parse(url)?;
        let host = parsed.host_str().unwrap_or_default();
        let (service, rest) = host
            .split_once('.')
            .ok_or_else(|| anyhow::anyhow!("`{url}` is not an in-cluster Service URL"))?;
        let namespace = rest.split('.').next().unwrap_or_default();
        forwards.push(ClientForward {
            role: Role::ScriptedModel,
            namespace: namespace.into(),
            service: service.into(),
            port: parsed.port_or_known_default().unwrap_or(80),
            health: Some("/healthz".into()),
            path: String::new(),
        });
    }
    Ok(forwards)
}

/// Where an image of ours is built from.
enum ImageSource {
    /// One of the workspace's Rust services (a crate directory = package name).
    Service(String),
    /// A directory with its own `Dockerfile` (the BYO Python agents).
    Dir(String),
}

impl ImageSource {
    fn dockerfile(&self) -> String {
        match self {
            ImageSource::Service(_) => "Dockerfile".to_owned(),
            ImageSource::Dir(dir) => format!("{dir}/Dockerfile"),
        }
    }
}
