//! Each [`Step`] as the dry run prints it: one line of what it does, then its command or
//! the resources it applies.

use super::Step;
use crate::metallb;
use hitl_manifests::secrets;

/// A generated Secret's line (the gateway-gate certificate pair's names both Secrets).
fn generated_secret(s: &secrets::GeneratedSecret) -> String {
    if let secrets::GeneratedValue::GateTls { client } = s.value {
        return format!(
            "Secrets {ns}/{} and {ns}/{client} (keys {}): a CA made once issues the gate's and \
             the gateway's certificates, and is forgotten; kept on later runs",
            s.name,
            s.keys().join(", "),
            ns = s.namespace,
        );
    }
    format!(
        "Secret {}/{} (key{} {}): random, created once, kept on later runs",
        s.namespace,
        s.name,
        if s.keys().len() > 1 { "s" } else { "" },
        s.keys().join(", ")
    )
}

/// The wait for the store's StatefulSets.
fn stateful_sets(namespace: &str, names: &[String], timeout: std::time::Duration) -> String {
    format!(
        "wait until every replica is ready: StatefulSet {} (up to {}s)",
        names
            .iter()
            .map(|n| format!("{namespace}/{n}"))
            .collect::<Vec<_>>()
            .join(", "),
        timeout.as_secs()
    )
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
            Step::WaitStatefulSets {
                namespace,
                names,
                timeout,
            } => stateful_sets(namespace, names, *timeout),
            Step::MetalLbPool { .. } => format!(
                "MetalLB pool from the kind network's IPv4 subnet: IPAddressPool + L2Advertisement \
                 {}/{} = broadcast-55 .. broadcast-5 (172.18.255.200-172.18.255.250 for 172.18.0.0/16)",
                metallb::NAMESPACE,
                metallb::POOL
            ),
            Step::GenerateSecret(s) => generated_secret(s),
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
