//! Every version the kind lab pins, in one place, with why. Bump them together and re-run the
//! manifest schema test against the matching CRDs.

/// kind itself (CI installs this one). v0.32.0 is the newest release; its default node image
/// is the one pinned in `manifests/kind/cluster.yaml` (Kubernetes v1.36.1).
pub const KIND: &str = "v0.32.0";

/// Helm (CI installs this one). kagent's charts are written for Helm 3; v3.21.4 is the newest
/// Helm 3 release.
pub const HELM: &str = "v3.21.4";

/// MetalLB (native manifest, L2 mode). v0.15.3: a long-settled release whose CRDs are the
/// ones in `manifests/crds` (identical through v0.16.x).
pub const METALLB: &str = "v0.15.3";

/// Gateway API CRDs, standard channel. v1.6.1 is what agentgateway v1.4.1 is built against.
pub const GATEWAY_API: &str = "v1.6.1";

/// agentgateway's CRD and control-plane charts. v1.4.1 is the newest release; every field our
/// AgentgatewayPolicy uses (`extAuth.backendRef/grpc/forwardBody/failureMode`,
/// `timeouts.request`, `backend.http.requestTimeout/version`) is in its CRD, the v1.4.1 chart's
/// copy of which is in `manifests/crds`.
pub const AGENTGATEWAY: &str = "v1.4.1";

/// kagent's CRD and control-plane charts. 0.10.4 matches kagent-adk 0.10.4, the engine the
/// local lab runs (the Agent uses the Python runtime, i.e. that same engine) and the one whose
/// tier-1 approval protocol was observed (`tests/fixtures/kagent-adk-0.10.4-wire`). Its CRDs in
/// `manifests/crds` come from kagent's `release/v0.10.x` branch, which (unlike `main`) still
/// has the Agent controller the lab needs.
pub const KAGENT: &str = "0.10.4";

/// Where the remote pieces come from.
pub fn metallb_manifest() -> String {
    format!(
        "https://raw.githubusercontent.com/metallb/metallb/{METALLB}/config/manifests/metallb-native.yaml"
    )
}

pub fn gateway_api_manifest() -> String {
    format!(
        "https://github.com/kubernetes-sigs/gateway-api/releases/download/{GATEWAY_API}/standard-install.yaml"
    )
}

pub const AGENTGATEWAY_CHARTS: &str = "oci://cr.agentgateway.dev/charts";
pub const KAGENT_CHARTS: &str = "oci://ghcr.io/kagent-dev/kagent/helm";
