//! Reading `manifests/`: every YAML document of every file (multi-document files included),
//! each kept with where it came from.

use std::path::{Path, PathBuf};

use serde::Deserialize as _;

use super::{
    ModelChoice,
    error::{Location, ManifestError},
};

/// Directory under `manifests/` that holds kind's own config, not Kubernetes resources.
pub const KIND_DIR: &str = "kind";
/// `manifests/crds/`: copies of the upstream CRDs the schema test validates against; installed
/// by their own charts in kind, never applied from here.
pub const CRDS_DIR: &str = "crds";
/// Directory under `manifests/` with one file per `--model` choice (`<choice>.yaml`).
pub const MODELS_DIR: &str = "models";

/// One Kubernetes resource as written in `manifests/`.
#[derive(Debug, Clone)]
pub struct Doc {
    pub location: Location,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// Applied only when this model is chosen (files under `models/`); `None`: always.
    pub model: Option<ModelChoice>,
    /// Applied only with this `--store` (its `hitl-lab.dev/store` label); `None`: with both.
    pub store: Option<crate::StoreChoice>,
    /// The document as JSON.
    pub value: serde_json::Value,
}

impl Doc {
    /// `Kind namespace/name` (or `Kind name` for cluster-scoped resources).
    pub fn resource(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group)
    }

    /// API version without the group (`v1`, `v1alpha2`).
    pub fn version(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or(self.api_version.as_str(), |(_, v)| v)
    }

    /// Whether this document is applied for `model`.
    pub fn applies_to(&self, model: ModelChoice) -> bool {
        self.model.is_none_or(|m| m == model)
    }

    /// Whether this document is applied with `store`.
    pub fn applies_to_store(&self, store: crate::StoreChoice) -> bool {
        self.store.is_none_or(|s| s == store)
    }
}

/// Every `.yaml` / `.yml` file under `root` except `kind/` and `crds/`, sorted by path so the order is
/// the same on every machine.
pub fn manifest_files(root: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let mut files = Vec::new();
    collect(root, root, &mut files)?;
    files.sort();
    Ok(files)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ManifestError> {
    let io = |source| ManifestError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        if path.is_dir() {
            if relative != Path::new(KIND_DIR) && relative != Path::new(CRDS_DIR) {
                collect(root, &path, out)?;
            }
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            out.push(relative);
        }
    }
    Ok(())
}

/// Load every document of every manifest file under `root`. Empty documents (only comments)
/// are skipped; anything else must be a resource with `apiVersion`, `kind` and
/// `metadata.name`.
pub fn load_docs(root: &Path) -> Result<Vec<Doc>, ManifestError> {
    let mut docs = Vec::new();
    for file in manifest_files(root)? {
        let path = root.join(&file);
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Io {
            path: path.clone(),
            source,
        })?;
        let model = model_of(&file)?;
        docs.extend(parse_file(&file, &text, model)?);
    }
    Ok(docs)
}

/// Parse one file's documents. `file` is only used to name locations.
pub fn parse_file(
    file: &Path,
    text: &str,
    model: Option<ModelChoice>,
) -> Result<Vec<Doc>, ManifestError> {
    let mut docs = Vec::new();
    for (index, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let location = Location {
            file: file.to_path_buf(),
            doc: index,
        };
        let value = serde_json::Value::deserialize(de).map_err(|source| ManifestError::Yaml {
            location: location.clone(),
            source,
        })?;
        if value.is_null() {
            continue;
        }
        docs.push(to_doc(location, value, model)?);
    }
    Ok(docs)
}

fn to_doc(
    location: Location,
    value: serde_json::Value,
    model: Option<ModelChoice>,
) -> Result<Doc, ManifestError> {
    let not_a_resource = |message: &str| ManifestError::NotAResource {
        location: location.clone(),
        message: message.to_owned(),
    };
    let text = |pointer: &str| value.pointer(pointer).and_then(|v| v.as_str());
    let api_version = text("/apiVersion")
        .ok_or_else(|| not_a_resource("no `apiVersion` (every document must be a resource)"))?;
    let kind = text("/kind").ok_or_else(|| not_a_resource("no `kind`"))?;
    let name = text("/metadata/name").ok_or_else(|| not_a_resource("no `metadata.name`"))?;
    Ok(Doc {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        namespace: text("/metadata/namespace").map(str::to_owned),
        model,
        store: crate::store::label_of(&value),
        location,
        value,
    })
}

/// `models/<choice>.yaml` belongs to that model choice; other files to every choice.
fn model_of(file: &Path) -> Result<Option<ModelChoice>, ManifestError> {
    let mut parts = file.components();
    let in_models = parts.next().is_some_and(|c| c.as_os_str() == MODELS_DIR);
    if !in_models {
        return Ok(None);
    }
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    ModelChoice::ALL
        .into_iter()
        .find(|m| m.as_str() == stem)
        .map(Some)
        .ok_or_else(|| ManifestError::NotAResource {
            location: Location {
                file: file.to_path_buf(),
                doc: 0,
            },
            message: format!(
                "files under {MODELS_DIR}/ are named after a --model choice ({}), not `{stem}`",
                ModelChoice::ALL.map(|m| m.as_str()).join(", ")
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_of_a_file_keeps_its_place() {
        // YAML's own numbering: a leading comment is no document; an empty one in the middle
        // counts (so the index is the one editors and kubectl use) but is skipped.
        let text = "# a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n\
                    ---\n# nothing here\n---\n\
                    apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: a}\n";
        let docs = parse_file(Path::new("x.yaml"), text, None).unwrap();
        let places: Vec<(usize, String)> = docs
            .iter()
            .map(|d| (d.location.doc, d.resource()))
            .collect();
        assert_eq!(
            places,
            [(0, "Namespace a".into()), (2, "Secret a/s".into())]
        );
    }

    #[test]
    fn a_document_that_is_not_a_resource_is_named() {
        let err = parse_file(
            Path::new("x.yaml"),
            "apiVersion: v1\nmetadata: {name: a}\n",
            None,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "manifests/x.yaml (document 0): no `kind`");
    }

    #[test]
    fn model_files_are_named_after_a_choice() {
        assert_eq!(
            model_of(Path::new("models/openai.yaml")).unwrap(),
            Some(ModelChoice::Openai)
        );
        assert_eq!(model_of(Path::new("services/hitl-ui.yaml")).unwrap(), None);
        let err = model_of(Path::new("models/gemini.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("scripted, anthropic, openai"), "{err}");
    }
}
