//! `up` as data: a [`Plan`] of numbered phases and [`Step`]s, built purely from the manifests
//! and the pinned versions. The dry run prints it; the real run executes the very same steps
//! (`run.rs`), so what you read is what happens. The phases are built in `phases` (a CRD chart
//! and its waits in `charts`, our images in `images`), the forwards the clients need in
//! `forwards`, each step's text in `describe`.

mod charts;
mod describe;
mod forwards;
mod images;
mod phases;

use std::{fmt::Write as _, time::Duration};

use hitl_manifests::{Doc, LabManifests, ModelChoice, StoreChoice, images::Images, secrets};

use super::{cmd::Cmd, expose::ClientForward};

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
    /// Until these StatefulSets have every replica ready on their newest revision.
    WaitStatefulSets {
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
    /// Where the gate keeps its store (`--store`).
    pub store: StoreChoice,
    /// The published images of this version (default), or `--build`.
    pub images: Images,
    /// Workspace files the run reads (kind config, Dockerfiles), checked in pre-flight.
    pub files: Vec<String>,
    pub preflight: Vec<String>,
    pub phases: Vec<Phase>,
}

/// The image flags as typed: none for the default, `--build`, or `--image-prefix <prefix>`.
fn images_flags(images: &Images) -> String {
    match images {
        Images::Build => " --build".to_owned(),
        Images::Published { prefix } if *prefix == hitl_manifests::images::PUBLISHED_PREFIX => {
            String::new()
        }
        Images::Published { prefix } => format!(" --image-prefix {prefix}"),
    }
}

/// The kube context kind creates for a cluster.
pub fn context(cluster: &str) -> String {
    format!("kind-{cluster}")
}

/// The cluster name in `manifests/kind/cluster.yaml`.
pub fn cluster_name(lab: &LabManifests) -> anyhow::Result<String> {
    let path = lab.root.join(hitl_manifests::KIND_DIR).join("cluster.yaml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let config: serde_json::Value = yaml_serde::from_str(&text)
        .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?;
    config["name"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{} has no `name`", path.display()))
}

impl Plan {
    /// The plan for `cargo xtask up --model <model> --store <store>` (with `--build` or
    /// `--image-prefix` as `images` says).
    pub fn up(
        lab: &LabManifests,
        model: ModelChoice,
        store: StoreChoice,
        images: &Images,
    ) -> anyhow::Result<Self> {
        let cluster = cluster_name(lab)?;
        let tools = phases::Tools::new(&cluster);
        let config = format!("manifests/{}/cluster.yaml", hitl_manifests::KIND_DIR);
        let built = self::images::to_build(lab, model, images);
        let phases = vec![
            phases::cluster(&cluster, &config),
            phases::metallb(&tools),
            phases::control_planes(&tools, lab, model)?,
            self::images::our_images(&built, images, &cluster),
            phases::manifests(lab, model, store, images),
            phases::where_everything_is(lab, model)?,
        ];
        let mut files = vec![config];
        for (_, source) in &built {
            let file = source.dockerfile();
            if !files.contains(&file) {
                files.push(file);
            }
        }
        Ok(Plan {
            cluster,
            model,
            store,
            images: images.clone(),
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
            "cargo xtask up --model {} --store {}{} (kind cluster `{}`, kube context `{}`): every step, nothing changed\n",
            self.model.as_str(),
            self.store.as_str(),
            images_flags(&self.images),
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
