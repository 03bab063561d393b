//! From documents to the typed view: one function per resource kind, each turning a
//! [`Doc`] into its view type with errors that name the field. The core kinds and the
//! shared field readers are here; the Gateway API and agentgateway kinds in `gateway_api`,
//! kagent's in `kagent`.

use std::time::Duration;

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        core::v1::{Secret, Service},
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use serde::de::DeserializeOwned;

use super::{crd::Resource, docs::Doc, error::ManifestError, units::parse_duration, view::*};

mod gateway_api;
mod kagent;

pub(super) use gateway_api::{gateway, policy, route};
pub(super) use kagent::{agent, byo_agent, is_byo, model_config, selects, tool_server};

/// The CRD default for RemoteMCPServer `timeout`.
pub(super) const DEFAULT_MCP_TIMEOUT: Duration = Duration::from_secs(30);

/// Deserialize the whole document as `T`, naming the failing field.
pub(super) fn typed<T: DeserializeOwned>(doc: &Doc) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(&doc.value).map_err(|e| {
        ManifestError::field(
            &doc.location,
            &doc.resource(),
            e.path().to_string(),
            e.inner().to_string(),
        )
    })
}

pub(super) fn spec<S: DeserializeOwned>(doc: &Doc) -> Result<S, ManifestError> {
    typed::<Resource<S>>(doc).map(|r| r.spec)
}

pub(super) fn bad(doc: &Doc, path: &str, message: impl Into<String>) -> ManifestError {
    ManifestError::field(&doc.location, &doc.resource(), path, message)
}

/// The document's namespace; the lab writes every namespaced resource with one.
pub(super) fn namespace(doc: &Doc) -> Result<String, ManifestError> {
    doc.namespace.clone().ok_or_else(|| {
        bad(
            doc,
            "metadata.namespace",
            "must be set: manifests are applied as written, with no default namespace",
        )
    })
}

pub(super) fn duration(doc: &Doc, path: &str, text: &str) -> Result<Duration, ManifestError> {
    parse_duration(text).ok_or_else(|| {
        bad(
            doc,
            path,
            format!("`{text}` is not a duration like 30s, 11m or 1h30m"),
        )
    })
}

pub(super) fn opt_duration(
    doc: &Doc,
    path: &str,
    text: Option<&String>,
) -> Result<Option<Duration>, ManifestError> {
    text.map(|t| duration(doc, path, t)).transpose()
}

pub(super) fn port(doc: &Doc, path: &str, value: i32) -> Result<u16, ManifestError> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| bad(doc, path, format!("{value} is not a TCP port")))
}

pub(super) fn service(doc: &Doc) -> Result<ServiceView, ManifestError> {
    let service: Service = typed(doc)?;
    let spec = service.spec.unwrap_or_default();
    let ports = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            Ok(ServicePortView {
                port: port(doc, &format!("spec.ports[{i}].port"), p.port)?,
                name: p.name,
                target_port: p.target_port.map(|t| match t {
                    IntOrString::Int(n) => n.to_string(),
                    IntOrString::String(s) => s,
                }),
                app_protocol: p.app_protocol,
            })
        })
        .collect::<Result<_, ManifestError>>()?;
    Ok(ServiceView {
        location: doc.location.clone(),
        namespace: namespace(doc)?,
        name: doc.name.clone(),
        selector: spec.selector.unwrap_or_default(),
        ports,
        model: doc.model,
    })
}

pub(super) fn deployment(doc: &Doc) -> Result<DeploymentView, ManifestError> {
    let deployment: Deployment = typed(doc)?;
    pod_view(doc, deployment.spec.template)
}

/// A StatefulSet, as far as its pod template goes (the same view as a Deployment's).
pub(super) fn stateful_set(doc: &Doc) -> Result<DeploymentView, ManifestError> {
    let set: k8s_openapi::api::apps::v1::StatefulSet = typed(doc)?;
    pod_view(doc, set.spec.template)
}

fn pod_view(
    doc: &Doc,
    template: k8s_openapi::api::core::v1::PodTemplateSpec,
) -> Result<DeploymentView, ManifestError> {
    let namespace = namespace(doc)?;
    let pod_labels = template.metadata.and_then(|m| m.labels).unwrap_or_default();
    let pod = template.spec.unwrap_or_default();
    let secret_volumes = pod
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.secret.and_then(|s| s.secret_name))
        .collect();
    let containers = pod
        .containers
        .into_iter()
        .map(|c| {
            let env = c
                .env
                .unwrap_or_default()
                .into_iter()
                .map(|var| env_var(var, &namespace))
                .collect();
            let ports = c
                .ports
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| {
                    let number = u16::try_from(p.container_port).ok()?;
                    Some((p.name.unwrap_or_else(|| number.to_string()), number))
                })
                .collect();
            ContainerView {
                name: c.name,
                image: c.image.unwrap_or_default(),
                image_pull_policy: c.image_pull_policy,
                env,
                ports,
            }
        })
        .collect();
    Ok(DeploymentView {
        location: doc.location.clone(),
        namespace,
        name: doc.name.clone(),
        pod_labels,
        containers,
        secret_volumes,
        model: doc.model,
    })
}

/// A Secret as far as references go: which keys it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretView {
    pub namespace: String,
    pub name: String,
    pub keys: Vec<String>,
    pub model: Option<crate::ModelChoice>,
}

pub(super) fn secret(doc: &Doc) -> Result<SecretView, ManifestError> {
    let secret: Secret = typed(doc)?;
    let mut keys: Vec<String> = secret.data.unwrap_or_default().into_keys().collect();
    keys.extend(secret.string_data.unwrap_or_default().into_keys());
    keys.sort();
    keys.dedup();
    Ok(SecretView {
        namespace: namespace(doc)?,
        name: doc.name.clone(),
        keys,
        model: doc.model,
    })
}

/// One container env var as the view holds it: its value, or the Secret key it reads (in the
/// workload's `namespace`), or `Other` for the sources the lab does not follow.
pub(super) fn env_var(
    var: k8s_openapi::api::core::v1::EnvVar,
    namespace: &str,
) -> (String, EnvSource) {
    let source = match (var.value, var.value_from) {
        (Some(value), _) => EnvSource::Value(value),
        (None, Some(from)) => match from.secret_key_ref {
            Some(secret) => EnvSource::Secret(SecretKeyRef {
                namespace: namespace.to_owned(),
                name: secret.name,
                key: secret.key,
            }),
            None => EnvSource::Other,
        },
        (None, None) => EnvSource::Value(String::new()),
    };
    (var.name, source)
}
