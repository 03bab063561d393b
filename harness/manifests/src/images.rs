//! Where our images come from, one rule for the kind lab and the Helm chart: the manifests
//! name the locally built `hitl-lab/<service>:dev`; by default the lab runs the published
//! `<prefix>/<service>:<version>` instead, exactly as `.github/workflows/images.yml` pushes
//! them and as the chart's `image.prefix` and `appVersion` name them (tests/chart.rs checks
//! the chart against [`PUBLISHED_PREFIX`] and [`VERSION`]). The BYO Python agents are not
//! published: they are built here in both modes.

use serde_json::Value;

use crate::Doc;

/// The prefix of the images `cargo xtask up --build` builds and `kind load`s.
pub const LOCAL_PREFIX: &str = "hitl-lab";
/// Their tag.
pub const LOCAL_TAG: &str = "dev";
/// Where `images.yml` pushes on a release tag: `ghcr.io/<owner>/<repo>`.
pub const PUBLISHED_PREFIX: &str = "ghcr.io/hitl-lab/hitl-lab";
/// The release whose images the lab runs by default (the workspace's version, the chart's
/// `appVersion`, the tag `images.yml` pushes as `{{version}}`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The services `images.yml` publishes (besides gate-check, which the lab does not run).
pub const PUBLISHED: [&str; 4] = ["hitl-extauth", "hitl-ui", "mock-db-mcp", "scripted-model"];

/// Which images `up` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Images {
    /// `--build`: build every image here as `hitl-lab/<service>:dev` and `kind load` it.
    Build,
    /// The published images of [`VERSION`] under this prefix (default [`PUBLISHED_PREFIX`]).
    Published { prefix: String },
}

/// A `--image-prefix` that cannot name an image.
#[derive(Debug, thiserror::Error)]
#[error(
    "--image-prefix {0:?} is not <registry>/<owner>/<repo>: lowercase letters, digits, `.`, \
     `-`, `_`, `/` (and a registry's `:port`), no tag, no leading or trailing `/`"
)]
pub struct BadPrefix(pub String);

impl Default for Images {
    fn default() -> Self {
        Images::Published {
            prefix: PUBLISHED_PREFIX.to_owned(),
        }
    }
}

impl Images {
    /// From the flags: `--build` wins; otherwise the published images, under `prefix` if given.
    pub fn from_flags(build: bool, prefix: Option<&str>) -> Result<Self, BadPrefix> {
        match (build, prefix) {
            (true, _) => Ok(Images::Build),
            (false, None) => Ok(Images::default()),
            (false, Some(prefix)) => {
                let fine = !prefix.is_empty()
                    && !prefix.starts_with('/')
                    && !prefix.ends_with('/')
                    && !prefix.contains("//")
                    && !prefix.contains('@')
                    && prefix.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/:".contains(c)
                    })
                    // a `:` only in the registry's host (`localhost:5000/...`), never a tag
                    && prefix.rsplit('/').next().is_some_and(|last| !last.contains(':'))
                    && prefix.contains('/');
                if fine {
                    Ok(Images::Published {
                        prefix: prefix.to_owned(),
                    })
                } else {
                    Err(BadPrefix(prefix.to_owned()))
                }
            }
        }
    }

    /// The image to run for one a manifest names: a published service's local name becomes
    /// its published one; everything else (the BYO agents, third-party images) is unchanged.
    pub fn resolve(&self, image: &str) -> String {
        match (self, local_service(image)) {
            (Images::Published { prefix }, Some(service)) if PUBLISHED.contains(&service) => {
                published(prefix, service)
            }
            _ => image.to_owned(),
        }
    }

    /// `doc` with every container image [`resolve`](Self::resolve)d.
    pub fn rewrite(&self, doc: &Doc) -> Doc {
        let mut doc = doc.clone();
        for pointer in [
            "/spec/template/spec/containers",
            "/spec/template/spec/initContainers",
        ] {
            if let Some(Value::Array(containers)) = doc.value.pointer_mut(pointer) {
                for container in containers {
                    if let Some(Value::String(image)) = container.get_mut("image") {
                        *image = self.resolve(image);
                    }
                }
            }
        }
        doc
    }
}

/// `<prefix>/<service>:<VERSION>`.
pub fn published(prefix: &str, service: &str) -> String {
    format!("{prefix}/{service}:{VERSION}")
}

/// The service a local image names (`hitl-lab/<service>:dev`), if it is one.
pub fn local_service(image: &str) -> Option<&str> {
    image
        .strip_prefix(LOCAL_PREFIX)?
        .strip_prefix('/')?
        .strip_suffix(LOCAL_TAG)?
        .strip_suffix(':')
}

/// The service a published image of [`VERSION`] names (`<any prefix>/<service>:<VERSION>`),
/// if it is one of [`PUBLISHED`]: a pod that cannot pull it is fixed by `--build` or
/// `--image-prefix`.
pub fn published_service(image: &str) -> Option<&str> {
    let (path, tag) = image.rsplit_once(':')?;
    let service = path.rsplit_once('/')?.1;
    (tag == VERSION && PUBLISHED.contains(&service)).then_some(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_a_published_service_runs_its_release_image_and_the_rest_is_unchanged() {
        let images = Images::default();
        assert_eq!(
            images.resolve("hitl-lab/hitl-extauth:dev"),
            format!("ghcr.io/hitl-lab/hitl-lab/hitl-extauth:{VERSION}")
        );
        assert_eq!(
            images.resolve("hitl-lab/langgraph-agent:dev"),
            "hitl-lab/langgraph-agent:dev"
        );
        assert_eq!(
            images.resolve("postgres:15.18-bookworm"),
            "postgres:15.18-bookworm"
        );
        assert_eq!(
            Images::Build.resolve("hitl-lab/hitl-ui:dev"),
            "hitl-lab/hitl-ui:dev"
        );
    }

    #[test]
    fn a_forks_prefix_is_taken_and_a_malformed_one_is_refused() {
        let fork = Images::from_flags(false, Some("ghcr.io/me/hitl-lab")).unwrap();
        assert_eq!(
            fork.resolve("hitl-lab/mock-db-mcp:dev"),
            format!("ghcr.io/me/hitl-lab/mock-db-mcp:{VERSION}")
        );
        assert!(Images::from_flags(false, Some("localhost:5000/me/lab")).is_ok());
        assert_eq!(
            Images::from_flags(true, Some("ghcr.io/me/x")).unwrap(),
            Images::Build
        );
        for bad in [
            "",
            "ghcr.io/me/",
            "/me",
            "ghcr.io/Me/lab",
            "ghcr.io/me/lab:1.0",
            "ghcr.io/me lab",
            "lab",
        ] {
            assert!(Images::from_flags(false, Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_published_image_is_recognised_under_any_prefix() {
        let image = published("ghcr.io/me/lab", "hitl-ui");
        assert_eq!(published_service(&image), Some("hitl-ui"));
        assert_eq!(published_service("hitl-lab/hitl-ui:dev"), None);
        assert_eq!(published_service("cr.kagent.dev/kagent:0.1.0"), None);
    }
}
