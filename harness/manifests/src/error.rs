//! What can be wrong with `manifests/`: every error names the file, the document, the
//! resource and the field path, so a reader can go straight to the line.

use std::{fmt, path::PathBuf};

/// Where a YAML document is: its file (relative to `manifests/`) and its index in that file
/// (0-based; documents are separated by `---`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: PathBuf,
    pub doc: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "manifests/{} (document {})",
            self.file.display(),
            self.doc
        )
    }
}

/// One thing wrong with one field of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: Location,
    /// `Kind namespace/name`, e.g. `Agent kagent/dba-assistant`.
    pub resource: String,
    /// Dotted field path, e.g. `spec.declarative.tools[0].mcpServer.requireApproval[1]`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} at `{}`: {}",
            self.location, self.resource, self.path, self.message
        )
    }
}

/// Why `manifests/` could not be loaded into a [`super::LabManifests`].
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: not valid YAML: {source}")]
    Yaml {
        location: Location,
        #[source]
        source: yaml_serde::Error,
    },
    #[error("{location}: {message}")]
    NotAResource { location: Location, message: String },
    #[error("{location}: {resource} at `{path}`: {message}")]
    Field {
        location: Location,
        resource: String,
        path: String,
        message: String,
    },
    #[error("{resource} is defined twice: {first} and {second}")]
    Duplicate {
        resource: String,
        first: Location,
        second: Location,
    },
    #[error("manifests/ has no {what}")]
    Missing { what: String },
    #[error("manifests/ is inconsistent ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, ProblemList(.0))]
    Invalid(Vec<Problem>),
}

impl ManifestError {
    pub(crate) fn field(
        location: &Location,
        resource: &str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ManifestError::Field {
            location: location.clone(),
            resource: resource.to_owned(),
            path: path.into(),
            message: message.into(),
        }
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {problem}")?;
        }
        Ok(())
    }
}
