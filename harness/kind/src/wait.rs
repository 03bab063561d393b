//! Waiting with progress: every wait says what it waits for and how long it has waited, and
//! on timeout says what it saw last.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::apps::v1::{Deployment, StatefulSet},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client,
    api::{DynamicObject, ListParams},
};

use super::{apply, pull};

const POLL: Duration = Duration::from_secs(2);
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Why a wait's check is not done.
pub enum NotYet {
    /// Still on its way: keep waiting (the detail shows in the progress).
    Waiting(String),
    /// It will not get there by waiting: stop now, with this.
    Failed(String),
}

/// Poll `check` until it returns `Ok`, printing progress; `Err(detail)` means "not yet".
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    until_or_fail(what, timeout, || {
        let checked = check();
        async move { checked.await.map_err(NotYet::Waiting) }
    })
    .await
}

/// [`until`], but a check may also say the wait is hopeless ([`NotYet::Failed`]).
pub async fn until_or_fail<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, NotYet>>,
{
    let started = Instant::now();
    let mut last_report = started;
    eprintln!("      waiting for {what} (up to {}s)", timeout.as_secs());
    loop {
        match check().await {
            Ok(value) => {
                eprintln!("      ok: {what} ({}s)", started.elapsed().as_secs());
                return Ok(value);
            }
            Err(NotYet::Failed(why)) => anyhow::bail!("stopped waiting for {what}: {why}"),
            Err(NotYet::Waiting(detail)) => {
                let elapsed = started.elapsed();
                if elapsed >= timeout {
                    anyhow::bail!(
                        "gave up waiting for {what} after {}s; last seen: {detail}",
                        elapsed.as_secs()
                    );
                }
                if last_report.elapsed() >= REPORT_EVERY {
                    eprintln!("      … {}s: {what}: {detail}", elapsed.as_secs());
                    last_report = Instant::now();
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `Ok` when the Deployment's newest generation is Available; else how far along it is.
pub fn deployment_state(d: &Deployment) -> Result<(), String> {
    let status = d.status.clone().unwrap_or_default();
    let desired = d.spec.replicas.unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    let available =
        status.conditions.unwrap_or_default().iter().any(|c| {
            c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")
        });
    let current = status.observed_generation >= d.metadata.generation;
    if available && current && ready >= desired {
        Ok(())
    } else {
        Err(format!(
            "{}: {ready}/{desired} ready",
            d.metadata.name.as_deref().unwrap_or("?")
        ))
    }
}

/// Until the named Deployments (all in the namespace if `names` is empty) are Available.
pub async fn deployments(
    client: &Client,
    namespace: &str,
    names: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let what = if names.is_empty() {
        format!("every Deployment in {namespace} to be Available")
    } else {
        format!("{} in {namespace} to be Available", names.join(", "))
    };
    until_or_fail(&what, timeout, || async {
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| NotYet::Waiting(e.to_string()))?;
        let mut waiting = Vec::new();
        if names.is_empty() && list.items.is_empty() {
            return Err(NotYet::Waiting("no Deployments yet".to_owned()));
        }
        for name in names {
            if !list
                .items
                .iter()
                .any(|d| d.metadata.name.as_ref() == Some(name))
            {
                waiting.push(format!("{name}: not created yet"));
            }
        }
        for d in &list.items {
            let wanted =
                names.is_empty() || names.iter().any(|n| d.metadata.name.as_ref() == Some(n));
            if wanted && let Err(detail) = deployment_state(d) {
                waiting.push(detail);
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        // Not there yet: a pod that cannot pull its image says why.
        let current: Vec<String> = list
            .items
            .iter()
            .filter(|d| {
                names.is_empty() || names.iter().any(|n| d.metadata.name.as_ref() == Some(n))
            })
            .flat_map(|d| d.spec.template.spec.iter())
            .flat_map(|pod| pod.containers.iter().filter_map(|c| c.image.clone()))
            .collect();
        let pulls = pull::check(client, namespace, names, &current).await;
        waiting.extend(pulls.map_err(NotYet::Failed)?);
        Err(NotYet::Waiting(waiting.join("; ")))
    })
    .await
}

/// `Ok` when every replica of the StatefulSet's newest revision is ready.
pub fn stateful_set_state(s: &StatefulSet) -> Result<(), String> {
    let status = s.status.clone().unwrap_or_default();
    let desired = s.spec.replicas.unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let current = status.observed_generation >= s.metadata.generation;
    if current && ready >= desired && updated >= desired {
        Ok(())
    } else {
        Err(format!(
            "{}: {ready}/{desired} ready, {updated} on the newest revision",
            s.metadata.name.as_deref().unwrap_or("?")
        ))
    }
}

/// Until the named StatefulSets have every replica ready (the store, before the gate).
pub async fn stateful_sets(
    client: &Client,
    namespace: &str,
    names: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let what = format!(
        "StatefulSet {} in {namespace} to be ready",
        names.join(", ")
    );
    until(&what, timeout, || async {
        let mut waiting = Vec::new();
        for name in names {
            match api.get_opt(name).await.map_err(|e| e.to_string())? {
                None => waiting.push(format!("{name}: not created yet")),
                Some(set) => {
                    if let Err(detail) = stateful_set_state(&set) {
                        waiting.push(detail);
                    }
                }
            }
        }
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(waiting.join("; "))
        }
    })
    .await
}

/// Until the CRDs are Established.
pub async fn crds(client: &Client, names: &[String], timeout: Duration) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    until("the CRDs to be Established", timeout, || async {
        let mut waiting = Vec::new();
        for name in names {
            let established = api
                .get_opt(name)
                .await
                .map_err(|e| e.to_string())?
                .and_then(|crd| crd.status)
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if !established {
                waiting.push(name.clone());
            }
        }
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!("not yet: {}", waiting.join(", ")))
        }
    })
    .await
}

/// A condition of a custom resource's status: `(status, message)`.
pub fn condition(obj: &DynamicObject, kind: &str) -> Option<(String, String)> {
    obj.data
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").to_owned(),
                c["message"].as_str().unwrap_or("").to_owned(),
            )
        })
}

/// The Gateway's first address, if it has one.
pub fn gateway_address(obj: &DynamicObject) -> Option<String> {
    obj.data
        .pointer("/status/addresses/0/value")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// Until the Gateway has a LoadBalancer address and is Programmed; returns the address.
pub async fn gateway(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let api = apply::dynamic_api(
        client,
        "gateway.networking.k8s.io",
        "v1",
        "Gateway",
        Some(namespace),
    )
    .await?;
    until(
        &format!("Gateway {namespace}/{name} to get an address"),
        timeout,
        || async {
            let gw = api
                .get_opt(name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("not created yet")?;
            let programmed = condition(&gw, "Programmed");
            match (gateway_address(&gw), programmed) {
                (Some(address), Some((status, _))) if status == "True" => Ok(address),
                (address, programmed) => Err(format!(
                    "address {}, Programmed {}",
                    address.as_deref().unwrap_or("none yet"),
                    programmed.map_or("unknown".to_owned(), |(s, m)| format!("{s} {m}"))
                )),
            }
        },
    )
    .await
}

/// Until the Agent's Ready condition is True.
pub async fn agent(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let api =
        apply::dynamic_api(client, "kagent.dev", "v1alpha2", "Agent", Some(namespace)).await?;
    until(
        &format!("Agent {namespace}/{name} to be Ready"),
        timeout,
        || async {
            let agent = api
                .get_opt(name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("not created yet")?;
            match condition(&agent, "Ready") {
                Some((status, _)) if status == "True" => Ok(()),
                Some((status, message)) => Err(format!("Ready {status}: {message}")),
                None => Err("no Ready condition yet".to_owned()),
            }
        },
    )
    .await
}
