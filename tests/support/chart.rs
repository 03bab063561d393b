//! The Helm chart `charts/hitl-gate`, linted and rendered offline by Helm's own library
//! (helm-python-sdk, Helm v4 as a shared library: no helm binary) through
//! `charts/hitl-gate/ci/render.py`, in the venv `hitl_lab::pyenv::ensure_helm` installs.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use hitl_manifests::Doc;
use serde_json::Value;

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    hitl_lab::bins::workspace_root()
        .join("charts")
        .join("hitl-gate")
}

/// The values with which the chart renders what the kind lab applies.
pub fn kind_lab_values() -> PathBuf {
    chart_dir().join("ci").join("kind-lab-values.yaml")
}

/// One lint and render of the chart.
#[derive(Debug)]
pub struct Rendered {
    /// `helm lint --strict`'s report: `messages` (`severity` 2 = warning, 3 = error), `errors`.
    pub lint: Value,
    /// Every rendered document, parsed as the manifests are (template path as the file).
    pub docs: Vec<Doc>,
    /// NOTES.txt, rendered.
    pub notes: String,
}

impl Rendered {
    /// The lint findings `--strict` fails on (warnings and errors), one per line.
    pub fn lint_failures(&self) -> Vec<String> {
        let messages = self.lint["messages"].as_array().into_iter().flatten();
        let findings = messages
            .filter(|m| m["severity"].as_u64().unwrap_or(3) >= 2)
            .map(|m| format!("{}: {}", m["path"], m["error"]));
        let errors = self.lint["errors"].as_array().into_iter().flatten();
        findings.chain(errors.map(|e| e.to_string())).collect()
    }

    /// The rendered `kind` named `name`, if any.
    pub fn doc(&self, kind: &str, name: &str) -> Option<&Doc> {
        self.docs.iter().find(|d| d.kind == kind && d.name == name)
    }
}

/// Lint and render the chart with the values files `files` (merged in order over the chart's
/// own) and then `values` (JSON, merged last; `Value::Null` for none). Fails with Helm's own
/// message if the values break the schema or a template does not render.
pub fn render(scratch: &Path, files: &[PathBuf], values: &Value) -> anyhow::Result<Rendered> {
    let venv = hitl_lab::pyenv::ensure_helm()?;
    let mut args: Vec<PathBuf> = files.to_vec();
    if !values.is_null() {
        let path = scratch.join(format!("values-{}.json", args.len()));
        std::fs::write(&path, values.to_string())?;
        args.push(path);
    }
    let out = std::process::Command::new(venv.python())
        .arg(chart_dir().join("ci").join("render.py"))
        .arg(chart_dir())
        .args(&args)
        .output()
        .context("running charts/hitl-gate/ci/render.py")?;
    if !out.status.success() {
        bail!(
            "rendering the chart failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let answer: Value = serde_json::from_slice(&out.stdout).context("reading render.py's JSON")?;
    let mut docs = Vec::new();
    let mut notes = String::new();
    let manifests = answer["manifests"].as_object().context("no manifests")?;
    for (template, text) in manifests {
        let text = text.as_str().unwrap_or_default();
        if template.ends_with("NOTES.txt") {
            notes = text.to_owned();
            continue;
        }
        docs.extend(hitl_manifests::parse_file(Path::new(template), text, None)?);
    }
    Ok(Rendered {
        lint: answer["lint"].clone(),
        docs,
        notes,
    })
}
