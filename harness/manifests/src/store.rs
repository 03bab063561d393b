//! Where the gate keeps its store in the kind lab (`--store`): the manifests as written are
//! PostgreSQL mode — a `hitl-postgres` StatefulSet and two gate replicas sharing it; SQLite
//! mode is one replica with its file on a PersistentVolumeClaim. Documents labelled
//! [`STORE_LABEL`] belong to one mode only; the gate's Deployment is the one document both
//! modes share, and [`sqlite_gate`] turns its PostgreSQL form into the SQLite one, so the two
//! cannot drift apart.

use serde_json::{Value, json};

use crate::{Doc, LabManifests, ModelChoice};
use hitl_wire::env::extauth as env;

/// The label that ties a document to one store mode (`postgres` or `sqlite`).
pub const STORE_LABEL: &str = "hitl-lab.dev/store";
/// The SQLite file on the gate's PersistentVolumeClaim, in SQLite mode.
pub const SQLITE_PATH: &str = "/data/audit.db";
/// The gate's PersistentVolumeClaim in SQLite mode.
pub const SQLITE_CLAIM: &str = "hitl-extauth-data";

/// The gate's store in the kind lab.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StoreChoice {
    /// PostgreSQL, shared by several gate replicas (the manifests as written).
    Postgres,
    /// One gate replica with its SQLite file on a PersistentVolumeClaim.
    Sqlite,
}

impl StoreChoice {
    pub const ALL: [StoreChoice; 2] = [StoreChoice::Postgres, StoreChoice::Sqlite];

    /// As on the command line and in the [`STORE_LABEL`] label.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreChoice::Postgres => "postgres",
            StoreChoice::Sqlite => "sqlite",
        }
    }

    /// From a label value.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for StoreChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl LabManifests {
    /// The documents `up --model <model> --store <store>` applies, in file order: with
    /// SQLite, the gate's Deployment as [`store::sqlite_gate`] rewrites it.
    pub fn docs_for_store(&self, model: ModelChoice, store: StoreChoice) -> Vec<Doc> {
        self.docs
            .iter()
            .filter(|d| d.applies_to(model) && d.applies_to_store(store))
            .map(|d| match store {
                StoreChoice::Sqlite if self.is_store_client(d) => sqlite_gate(d),
                _ => d.clone(),
            })
            .collect()
    }

    /// Whether `doc` is a Deployment whose containers name a PostgreSQL store (`STORE_URL`).
    fn is_store_client(&self, doc: &Doc) -> bool {
        doc.kind == "Deployment"
            && self
                .deployment(doc.namespace.as_deref().unwrap_or_default(), &doc.name)
                .is_some_and(|d| {
                    d.containers
                        .iter()
                        .any(|c| c.env.contains_key(hitl_wire::env::extauth::STORE_URL))
                })
    }
}

/// The [`STORE_LABEL`] of a document's value, if it has a known one.
pub(crate) fn label_of(value: &Value) -> Option<StoreChoice> {
    value
        .pointer("/metadata/labels")
        .and_then(|labels| labels.get(STORE_LABEL))
        .and_then(Value::as_str)
        .and_then(StoreChoice::parse)
}

/// The gate's Deployment in SQLite mode, from its PostgreSQL form: one replica, `Recreate`
/// (one SQLite file never has two writers, not even in a rollout), `AUDIT_DB` on the claim
/// [`SQLITE_CLAIM`] instead of `STORE_URL`, `STORE_PASSWORD_FILE` and the password's volume.
/// Everything else (probes on `/readyz`, the other env, mounts, security) is kept as written.
pub fn sqlite_gate(postgres: &Doc) -> Doc {
    let mut doc = postgres.clone();
    let spec = &mut doc.value["spec"];
    spec["replicas"] = json!(1);
    spec["strategy"] = json!({ "type": "Recreate" });
    let pod = &mut spec["template"]["spec"];
    let mut dropped_volumes: Vec<String> = Vec::new();
    if let Some(containers) = pod["containers"].as_array_mut() {
        for container in containers {
            let names = |var: &str| {
                container["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|v| v["name"] == var)
                    .cloned()
            };
            let uses_store = names(env::STORE_URL).is_some();
            if let Some(file) = names(env::STORE_PASSWORD_FILE)
                .as_ref()
                .and_then(|v| v["value"].as_str())
            {
                dropped_volumes.extend(mount_of(container_mounts(container), file));
            }
            if let Some(vars) = container["env"].as_array_mut() {
                vars.retain(|v| {
                    v["name"] != env::STORE_URL && v["name"] != env::STORE_PASSWORD_FILE
                });
                if uses_store {
                    vars.push(json!({ "name": env::AUDIT_DB, "value": SQLITE_PATH }));
                }
            }
            if let Some(mounts) = container["volumeMounts"].as_array_mut() {
                mounts.retain(|m| {
                    !dropped_volumes
                        .iter()
                        .any(|name| m["name"].as_str() == Some(name))
                });
                if uses_store {
                    mounts.push(json!({ "name": "data", "mountPath": "/data" }));
                }
            }
        }
    }
    if let Some(volumes) = pod["volumes"].as_array_mut() {
        volumes.retain(|v| {
            !dropped_volumes
                .iter()
                .any(|name| v["name"].as_str() == Some(name))
        });
        volumes.push(json!({
            "name": "data",
            "persistentVolumeClaim": { "claimName": SQLITE_CLAIM },
        }));
    }
    doc
}

fn container_mounts(container: &Value) -> Vec<(String, String)> {
    container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some((
                m["name"].as_str()?.to_owned(),
                m["mountPath"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// The volume mounted at the directory holding `file`.
fn mount_of(mounts: Vec<(String, String)>, file: &str) -> Option<String> {
    mounts
        .into_iter()
        .find(|(_, path)| file.starts_with(&format!("{}/", path.trim_end_matches('/'))))
        .map(|(name, _)| name)
}
