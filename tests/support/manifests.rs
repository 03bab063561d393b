//! Would the API server accept these documents? Custom resources are checked against the
//! upstream CRDs' `openAPIV3Schema` (the copies in `manifests/crds/`, provenance in its README), translated to JSON Schema
//! with Kubernetes' structural-schema rules (unknown fields are errors, as with
//! `fieldValidation=Strict`); core resources are read into k8s-openapi types and written back,
//! and any field lost on the way is reported (k8s-openapi ignores unknown fields, so a typo
//! would otherwise pass silently). Every problem names file, resource and field path.
//!
//! Not checked: the CRDs' CEL rules (`x-kubernetes-validations`). The one the lab depends on
//! (requireApproval ⊆ toolNames) is re-implemented by `hitl_manifests`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use hitl_manifests::{Doc, Problem};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

/// Env var that points at the directory of upstream CRD YAML files.
pub const CRDS_DIR_ENV: &str = "HITL_LAB_CRDS_DIR";

/// `$HITL_LAB_CRDS_DIR`, else `<workspace>/manifests/crds`.
pub fn crds_dir() -> PathBuf {
    std::env::var_os(CRDS_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| hitl_manifests::LabManifests::dir().join(hitl_manifests::CRDS_DIR))
}

/// One served version of one CRD, compiled.
struct Schema {
    validator: jsonschema::Validator,
}

/// Every served version of every CRD in a directory, by `(group, version, kind)`.
pub struct Catalog {
    schemas: BTreeMap<(String, String, String), Schema>,
}

impl Catalog {
    /// Read and compile every CRD under `dir`. Fails (with what to do) if the directory is
    /// missing: the schema check must never pass by having nothing to check against.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        if !dir.is_dir() {
            bail!(
                "the upstream CRDs are not at {}: the manifest schema test needs them (the \
                 repository keeps copies in manifests/crds); set {CRDS_DIR_ENV} to the directory \
                 holding the CRD YAML files",
                dir.display()
            );
        }
        let mut schemas = BTreeMap::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        entries.sort();
        for path in entries {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let crd: Value = yaml_serde::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            let spec = &crd["spec"];
            let group = spec["group"].as_str().unwrap_or_default().to_owned();
            let kind = spec["names"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            for version in spec["versions"].as_array().into_iter().flatten() {
                if version["served"] != Value::Bool(true) {
                    continue;
                }
                let name = version["name"].as_str().unwrap_or_default().to_owned();
                let openapi = &version["schema"]["openAPIV3Schema"];
                let validator = compile(openapi).with_context(|| {
                    format!(
                        "compiling the schema of {group}/{name} {kind} from {}",
                        path.display()
                    )
                })?;
                schemas.insert((group.clone(), name, kind.clone()), Schema { validator });
            }
        }
        if schemas.is_empty() {
            bail!("no CRDs in {}", dir.display());
        }
        Ok(Catalog { schemas })
    }

    /// `(group, version, kind)` of every served CRD version.
    pub fn kinds(&self) -> impl Iterator<Item = &(String, String, String)> {
        self.schemas.keys()
    }

    /// Everything the API server would refuse in `doc`.
    pub fn check(&self, doc: &Doc) -> Vec<Problem> {
        if let Some(problems) = check_core(doc) {
            return problems;
        }
        let key = (
            doc.group().to_owned(),
            doc.version().to_owned(),
            doc.kind.clone(),
        );
        let Some(schema) = self.schemas.get(&key) else {
            return vec![problem(
                doc,
                "apiVersion",
                format!(
                    "no served CRD version for {} {} (neither a core kind nor in the CRD directory)",
                    doc.api_version, doc.kind
                ),
            )];
        };
        let mut problems: Vec<Problem> = schema
            .validator
            .iter_errors(&doc.value)
            .map(|e| problem(doc, &dotted(e.instance_path()), e.masked().to_string()))
            .collect();
        // The CRD schema says only `metadata: object`; the API server checks it as ObjectMeta.
        if let Some(metadata) = doc.value.get("metadata") {
            problems.extend(round_trip::<
                k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            >(doc, metadata, "metadata"));
        }
        problems
    }
}

fn problem(doc: &Doc, path: &str, message: impl Into<String>) -> Problem {
    Problem {
        location: doc.location.clone(),
        resource: doc.resource(),
        path: if path.is_empty() {
            ".".to_owned()
        } else {
            path.to_owned()
        },
        message: message.into(),
    }
}

/// `/spec/tools/0/name` → `spec.tools[0].name`.
fn dotted(location: &jsonschema::paths::Location) -> String {
    let mut out = String::new();
    for segment in location.iter() {
        match segment {
            jsonschema::paths::LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
            jsonschema::paths::LocationSegment::Property(p) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&p);
            }
        }
    }
    out
}

/// Compile an `openAPIV3Schema` as the API server reads it.
pub fn compile(openapi: &Value) -> anyhow::Result<jsonschema::Validator> {
    let schema = structural_to_json_schema(openapi);
    jsonschema::draft4::options()
        .should_validate_formats(false)
        .build(&schema)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Translate a Kubernetes structural schema (OpenAPI v3.0 subset) into Draft 4 JSON Schema:
/// - `nullable: true` admits `null`;
/// - `x-kubernetes-int-or-string: true` admits an integer or a string;
/// - an object with `properties` admits no other field unless
///   `x-kubernetes-preserve-unknown-fields: true` or `additionalProperties` says otherwise
///   (the API server prunes or, with strict validation, rejects unknown fields);
/// - `x-kubernetes-embedded-resource: true` admits `apiVersion`, `kind` and `metadata`.
pub fn structural_to_json_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let translated = match key.as_str() {
            "properties" | "patternProperties" | "definitions" => match value {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(k, v)| (k.clone(), structural_to_json_schema(v)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" | "additionalProperties" | "not" => match value {
                Value::Array(items) => {
                    Value::Array(items.iter().map(structural_to_json_schema).collect())
                }
                Value::Object(_) => structural_to_json_schema(value),
                other => other.clone(),
            },
            "anyOf" | "allOf" | "oneOf" => match value {
                Value::Array(items) => {
                    Value::Array(items.iter().map(structural_to_json_schema).collect())
                }
                other => other.clone(),
            },
            // CEL rules and list/map semantics: not JSON Schema; dropped.
            k if k.starts_with("x-kubernetes-") => continue,
            "nullable" | "description" | "default" | "example" => continue,
            _ => value.clone(),
        };
        out.insert(key.clone(), translated);
    }
    let flag = |name: &str| map.get(name) == Some(&Value::Bool(true));
    if flag("nullable")
        && let Some(t) = out.get("type").cloned()
    {
        out.insert("type".into(), Value::Array(vec![t, Value::from("null")]));
    }
    if flag("x-kubernetes-int-or-string") {
        out.remove("type");
        if !out.contains_key("anyOf") {
            out.insert(
                "anyOf".into(),
                serde_json::json!([{"type": "integer"}, {"type": "string"}]),
            );
        }
    }
    if flag("x-kubernetes-embedded-resource") {
        let props = out
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(props) = props {
            for (name, ty) in [
                ("apiVersion", "string"),
                ("kind", "string"),
                ("metadata", "object"),
            ] {
                props
                    .entry(name)
                    .or_insert_with(|| serde_json::json!({ "type": ty }));
            }
        }
    }
    let is_object = out.get("type") == Some(&Value::from("object"));
    if is_object
        && out.contains_key("properties")
        && !out.contains_key("additionalProperties")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// Core kinds: read into the k8s-openapi type, write back, report what was lost or changed.
/// `None` if `doc` is not a core kind this checks.
pub fn check_core(doc: &Doc) -> Option<Vec<Problem>> {
    use k8s_openapi::api::{
        apps::v1::{Deployment, StatefulSet},
        core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount},
        networking::v1::NetworkPolicy,
        policy::v1::PodDisruptionBudget,
    };
    let v = &doc.value;
    Some(match (doc.api_version.as_str(), doc.kind.as_str()) {
        ("v1", "Namespace") => round_trip::<Namespace>(doc, v, ""),
        ("v1", "Service") => round_trip::<Service>(doc, v, ""),
        ("v1", "Secret") => round_trip::<Secret>(doc, v, ""),
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(doc, v, ""),
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(doc, v, ""),
        ("v1", "PersistentVolumeClaim") => round_trip::<PersistentVolumeClaim>(doc, v, ""),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(doc, v, ""),
        ("apps/v1", "StatefulSet") => round_trip::<StatefulSet>(doc, v, ""),
        ("policy/v1", "PodDisruptionBudget") => round_trip::<PodDisruptionBudget>(doc, v, ""),
        ("networking.k8s.io/v1", "NetworkPolicy") => round_trip::<NetworkPolicy>(doc, v, ""),
        _ => return None,
    })
}

fn round_trip<T: DeserializeOwned + Serialize>(
    doc: &Doc,
    value: &Value,
    base: &str,
) -> Vec<Problem> {
    let join = |path: String| match (base.is_empty(), path.is_empty() || path == ".") {
        (true, _) => path,
        (false, true) => base.to_owned(),
        (false, false) => format!("{base}.{path}"),
    };
    let typed: T = match serde_path_to_error::deserialize(value) {
        Ok(typed) => typed,
        Err(e) => {
            return vec![problem(
                doc,
                &join(e.path().to_string()),
                e.inner().to_string(),
            )];
        }
    };
    let back = match serde_json::to_value(&typed) {
        Ok(back) => back,
        Err(e) => return vec![problem(doc, base, format!("does not serialise back: {e}"))],
    };
    let mut problems = Vec::new();
    diff(value, &back, base, &mut |path, message| {
        problems.push(problem(doc, path, message));
    });
    problems
}

/// Report every place where `original` has something `back` does not.
fn diff(original: &Value, back: &Value, path: &str, report: &mut dyn FnMut(&str, String)) {
    let child = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (original, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    _ if value.is_null() => {}
                    None => report(
                        &child(key),
                        format!(
                            "unknown field `{key}` (misspelt? the API server would reject or drop it)"
                        ),
                    ),
                    Some(other) => diff(value, other, &child(key), report),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(x, y, &format!("{path}[{i}]"), report);
            }
        }
        (a, b) if a == b => {}
        (a, b) => report(
            if path.is_empty() { "." } else { path },
            format!("{a} reads back as {b}: not the type the API expects"),
        ),
    }
}
