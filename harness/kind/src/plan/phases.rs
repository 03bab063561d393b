//! The phases of `up`, one function each: the kind cluster, MetalLB, the CRDs and control
//! planes (with kagent's chart values), the manifests (with the images `images` picks), where
//! everything is.

use hitl_manifests::{Doc, LabManifests, ModelChoice, StoreChoice, images::Images, secrets};

use super::{KIND_NETWORK, LONG_WAIT, Phase, SHORT_WAIT, Step, charts, forwards};
use crate::{cmd::Cmd, metallb, versions};

/// The kubectl and helm commands, against the lab's kube context.
pub(super) struct Tools {
    ctx: String,
}

impl Tools {
    pub(super) fn new(cluster: &str) -> Self {
        Self {
            ctx: super::context(cluster),
        }
    }

    fn kubectl(&self) -> Cmd {
        Cmd::new("kubectl").args(["--context", self.ctx.as_str()])
    }

    fn helm(&self, release: &str, chart: String, version: &str, namespace: &str) -> Cmd {
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
            .args(["--kube-context", self.ctx.as_str()])
    }
}

/// Phase 1: the kind cluster, from `config` (`manifests/kind/cluster.yaml`).
pub(super) fn cluster(cluster: &str, config: &str) -> Phase {
    Phase {
        title: "kind cluster".into(),
        steps: vec![Step::CreateCluster {
            name: cluster.to_owned(),
            cmd: Cmd::new("kind")
                .args(["create", "cluster", "--name", cluster, "--config", config]),
        }],
    }
}

/// Phase 2: MetalLB, and its address pool on the kind network.
pub(super) fn metallb(tools: &Tools) -> Phase {
    Phase {
        title: format!("MetalLB {}", versions::METALLB),
        steps: vec![
            Step::Run {
                what: "install MetalLB (native manifest)".into(),
                cmd: tools
                    .kubectl()
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
    }
}

/// Phase 3: the CRDs and control planes: Gateway API, agentgateway and kagent.
pub(super) fn control_planes(
    tools: &Tools,
    lab: &LabManifests,
    model: ModelChoice,
) -> anyhow::Result<Phase> {
    let gateway_crds = ["gatewayclasses", "gateways", "httproutes"]
        .map(|plural| format!("{plural}.gateway.networking.k8s.io"));
    let mut kagent = tools.helm(
        "kagent",
        format!("{}/kagent", versions::KAGENT_CHARTS),
        versions::KAGENT,
        "kagent",
    );
    for (key, value) in charts::kagent_values(lab, model)? {
        kagent = kagent.arg("--set").arg(format!("{key}={value}"));
    }
    let mut steps = vec![
        Step::Run {
            what: format!(
                "Gateway API CRDs {} (standard channel)",
                versions::GATEWAY_API
            ),
            cmd: tools
                .kubectl()
                .args(["apply", "--server-side", "-f"])
                .arg(versions::gateway_api_manifest()),
        },
        Step::WaitCrds {
            names: gateway_crds.to_vec(),
        },
    ];
    steps.extend(agentgateway_steps(tools));
    steps.extend(charts::crd_chart(
        format!("kagent CRDs {}", versions::KAGENT),
        tools.helm(
            "kagent-crds",
            format!("{}/kagent-crds", versions::KAGENT_CHARTS),
            versions::KAGENT,
            "kagent",
        ),
        charts::KAGENT_CRDS,
    ));
    steps.extend([
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
    ]);
    Ok(Phase {
        title: "Gateway API, agentgateway and kagent".into(),
        steps,
    })
}

/// agentgateway's CRDs and control plane, and the wait for it.
fn agentgateway_steps(tools: &Tools) -> Vec<Step> {
    let mut steps = charts::crd_chart(
        format!("agentgateway CRDs {}", versions::AGENTGATEWAY),
        tools.helm(
            "agentgateway-crds",
            format!("{}/agentgateway-crds", versions::AGENTGATEWAY_CHARTS),
            versions::AGENTGATEWAY,
            "agentgateway-system",
        ),
        charts::AGENTGATEWAY_CRDS,
    )
    .to_vec();
    steps.extend([
        Step::Run {
            what: format!("agentgateway control plane {}", versions::AGENTGATEWAY),
            cmd: tools.helm(
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
    ]);
    steps
}

/// Phase 5: the manifests for `model` and `store`: namespaces, generated and API-key Secrets,
/// the rest, then the waits until the store, our Deployments, the Gateway and the Agents are
/// ready.
pub(super) fn manifests(
    lab: &LabManifests,
    model: ModelChoice,
    store: StoreChoice,
    choice: &Images,
) -> Phase {
    let mut docs: Vec<Doc> = lab
        .docs_for_store(model, store)
        .iter()
        .map(|d| choice.rewrite(d))
        .collect();
    docs.sort_by_key(apply_rank);
    let (namespaces, rest): (Vec<Doc>, Vec<Doc>) =
        docs.into_iter().partition(|d| d.kind == "Namespace");
    let mut steps = vec![Step::Apply {
        what: "namespaces".into(),
        docs: namespaces,
    }];
    // The store's password only where there is a PostgreSQL to give it to.
    steps.extend(
        secrets::GENERATED
            .iter()
            .filter(|s| store == StoreChoice::Postgres || **s != secrets::POSTGRES_PASSWORD)
            .copied()
            .map(Step::GenerateSecret),
    );
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
        what: format!(
            "manifests/ for --model {} --store {}",
            model.as_str(),
            store.as_str()
        ),
        docs: rest,
    });
    steps.extend(store_readiness(lab, store));
    steps.extend(readiness(lab, model));
    Phase {
        title: "the lab's manifests (server-side apply, field manager hitl-lab)".into(),
        steps,
    }
}

/// The store's StatefulSets (PostgreSQL) are ready before the gate's replicas are waited for:
/// a gate whose store does not answer is not ready.
fn store_readiness(lab: &LabManifests, store: StoreChoice) -> Vec<Step> {
    let sets: Vec<_> = lab
        .docs
        .iter()
        .filter(|d| d.kind == "StatefulSet" && d.applies_to_store(store))
        .collect();
    let namespaces: std::collections::BTreeSet<&str> =
        sets.iter().filter_map(|d| d.namespace.as_deref()).collect();
    namespaces
        .into_iter()
        .map(|namespace| Step::WaitStatefulSets {
            namespace: namespace.to_owned(),
            names: sets
                .iter()
                .filter(|d| d.namespace.as_deref() == Some(namespace))
                .map(|d| d.name.clone())
                .collect(),
            timeout: SHORT_WAIT,
        })
        .collect()
}

/// The waits after the apply: our Deployments (per namespace), the Gateway, the Agents.
fn readiness(lab: &LabManifests, model: ModelChoice) -> Vec<Step> {
    let mut steps = Vec::new();
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
    steps
}

/// Phase 6: the port-forwards the clients need, and where everything is.
pub(super) fn where_everything_is(lab: &LabManifests, model: ModelChoice) -> anyhow::Result<Phase> {
    Ok(Phase {
        title: "where everything is".into(),
        steps: vec![
            Step::Expose {
                forwards: forwards::client_forwards(lab, model)?,
            },
            Step::PrintUrls {
                agent_namespace: lab.agent.namespace.clone(),
                agent_name: lab.agent.name.clone(),
            },
        ],
    })
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
