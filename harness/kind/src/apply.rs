//! Server-side apply with kube-rs, field manager `hitl-lab`: core kinds through their
//! k8s-openapi types (so a document that does not fit its type fails here, before the API
//! server), custom resources as `DynamicObject`s whose plural and scope come from discovery.

use anyhow::Context as _;
use k8s_openapi::{
    NamespaceResourceScope,
    api::{
        apps::v1::Deployment,
        core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount},
        networking::v1::NetworkPolicy,
    },
};
use kube::{
    Api, Client, Resource,
    api::{DynamicObject, Patch, PatchParams},
    core::GroupVersionKind,
    discovery::{self, Scope},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// Field manager for every server-side apply.
pub const FIELD_MANAGER: &str = "hitl-lab";

fn params() -> PatchParams {
    // `force`: these resources are ours; take fields over from an earlier manager (kubectl).
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Apply one resource (a full manifest document).
pub async fn apply(client: &Client, value: &Value) -> anyhow::Result<()> {
    let text = |pointer: &str| value.pointer(pointer).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind, name) = (text("/apiVersion"), text("/kind"), text("/metadata/name"));
    let namespace = value.pointer("/metadata/namespace").and_then(Value::as_str);
    let what = format!(
        "{kind} {}{name}",
        namespace.map(|n| format!("{n}/")).unwrap_or_default()
    );
    let result = match (api_version, kind, namespace) {
        ("v1", "Namespace", _) => {
            let api: Api<Namespace> = Api::all(client.clone());
            patch(&api, name, value).await
        }
        ("v1", "Service", Some(ns)) => namespaced::<Service>(client, ns, name, value).await,
        ("v1", "Secret", Some(ns)) => namespaced::<Secret>(client, ns, name, value).await,
        ("v1", "ConfigMap", Some(ns)) => namespaced::<ConfigMap>(client, ns, name, value).await,
        ("v1", "ServiceAccount", Some(ns)) => {
            namespaced::<ServiceAccount>(client, ns, name, value).await
        }
        ("apps/v1", "Deployment", Some(ns)) => {
            namespaced::<Deployment>(client, ns, name, value).await
        }
        ("networking.k8s.io/v1", "NetworkPolicy", Some(ns)) => {
            namespaced::<NetworkPolicy>(client, ns, name, value).await
        }
        _ => {
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            let api = dynamic_api(client, group, version, kind, namespace).await?;
            api.patch(name, &params(), &Patch::Apply(value))
                .await
                .map(drop)
                .map_err(anyhow::Error::from)
        }
    };
    result.with_context(|| format!("applying {what}"))
}

async fn namespaced<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    value: &Value,
) -> anyhow::Result<()>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    patch(&api, name, value).await
}

async fn patch<K>(api: &Api<K>, name: &str, value: &Value) -> anyhow::Result<()>
where
    K: Resource + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    let typed: K = serde_json::from_value(value.clone())
        .context("the document does not fit its Kubernetes type")?;
    api.patch(name, &params(), &Patch::Apply(&typed)).await?;
    Ok(())
}

/// An `Api<DynamicObject>` for a kind the cluster knows (found by discovery).
pub async fn dynamic_api(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> anyhow::Result<Api<DynamicObject>> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| {
            format!("the cluster does not serve {group}/{version} {kind} (CRD not installed?)")
        })?;
    Ok(match (caps.scope, namespace) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        (Scope::Namespaced, None) => {
            anyhow::bail!("{kind} is namespaced but the document has no metadata.namespace")
        }
        (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
    })
}

/// An `Api<DynamicObject>` over every namespace (for listing).
pub async fn dynamic_api_all(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
) -> anyhow::Result<Api<DynamicObject>> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, _) = discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| {
            format!("the cluster does not serve {group}/{version} {kind} (CRD not installed?)")
        })?;
    Ok(Api::all_with(client.clone(), &resource))
}

/// A kube client for one kubeconfig context (never whatever context happens to be current).
pub async fn client(context: &str) -> anyhow::Result<Client> {
    let options = kube::config::KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let config = kube::Config::from_kubeconfig(&options)
        .await
        .with_context(|| format!("no kube context `{context}` (is the kind cluster up?)"))?;
    Client::try_from(config).context("building the Kubernetes client")
}
