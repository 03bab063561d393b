//! The control planes' charts as the lab installs them: a CRD chart so that what uses its CRDs
//! can follow at once — `helm --wait` (Helm 3.21 waits for a chart's CRDs to be Established),
//! then an explicit wait for the CRDs the next chart renders and the lab's manifests use (the
//! kagent chart itself renders a `ModelConfig`) — and the kagent chart's values.

use hitl_manifests::{LabManifests, ModelChoice, Provider};

use super::Step;
use crate::cmd::Cmd;

/// agentgateway's CRDs the lab uses (its AgentgatewayPolicies).
pub(super) const AGENTGATEWAY_CRDS: &[&str] = &["agentgatewaypolicies.agentgateway.dev"];

/// kagent's CRDs the lab and the kagent chart use.
pub(super) const KAGENT_CRDS: &[&str] = &[
    "agents.kagent.dev",
    "modelconfigs.kagent.dev",
    "remotemcpservers.kagent.dev",
];

/// `helm` (an `upgrade --install` of a CRD chart) with `--wait`, then the wait for `crds`.
pub(super) fn crd_chart(what: String, helm: Cmd, crds: &[&str]) -> [Step; 2] {
    [
        Step::Run {
            what,
            cmd: helm.arg("--wait"),
        },
        Step::WaitCrds {
            names: crds.iter().map(|c| (*c).to_owned()).collect(),
        },
    ]
}

/// kagent chart values: the chosen model as kagent's default model config (the same provider,
/// model, key Secret and base URL as `dba-model`), and none of the bundled agents and tool
/// servers, which the lab does not use (and which would each pull an image and want a key).
pub(super) fn kagent_values(
    lab: &LabManifests,
    model: ModelChoice,
) -> anyhow::Result<Vec<(String, String)>> {
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
