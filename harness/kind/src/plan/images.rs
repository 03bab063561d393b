//! Phase 4 of `up`, our images: which to build here and how (all of them with `--build`; by
//! default only the BYO agents, which are not published), each then `kind load`ed.

use hitl_manifests::{
    LabManifests, ModelChoice,
    images::{self, Images},
};

use super::{Phase, Step};
use crate::cmd::Cmd;

/// The images `up` builds here, and how to build each: with `--build` every image of ours
/// (our Rust services from the workspace's one `Dockerfile`, `--build-arg SERVICE=<crate>`);
/// by default only those that are not published (the BYO agents, from their own directory's
/// `Dockerfile`), the rest being pulled by the nodes.
pub(super) fn to_build(
    lab: &LabManifests,
    model: ModelChoice,
    choice: &Images,
) -> Vec<(String, ImageSource)> {
    let mut built: Vec<(String, ImageSource)> = Vec::new();
    for deployment in lab
        .deployments
        .iter()
        .filter(|d| d.model.is_none_or(|m| m == model))
    {
        for container in &deployment.containers {
            if let Some(service) = images::local_service(&container.image)
                && choice.resolve(&container.image) == container.image
                && !built.iter().any(|(image, _)| image == &container.image)
            {
                let source = ImageSource::Service(service.to_owned());
                built.push((container.image.clone(), source));
            }
        }
    }
    // BYO agents: `hitl-lab/<name>:tag` is built from `python/<name>/Dockerfile`.
    for agent in &lab.byo_agents {
        if let Some(rest) = agent.image.strip_prefix("hitl-lab/") {
            let dir = format!("python/{}", rest.split(':').next().unwrap_or(rest));
            if !built.iter().any(|(image, _)| image == &agent.image) {
                built.push((agent.image.clone(), ImageSource::Dir(dir)));
            }
        }
    }
    built
}

/// Phase 4: build `built` and load them into the cluster's nodes; by default the title says
/// which published images the nodes pull instead.
pub(super) fn our_images(built: &[(String, ImageSource)], choice: &Images, cluster: &str) -> Phase {
    let mut steps = Vec::new();
    for (image, source) in built {
        let mut args = vec!["build".to_owned(), "--tag".to_owned(), image.clone()];
        args.extend(["--file".to_owned(), source.dockerfile()]);
        if let ImageSource::Service(name) = source {
            args.extend(["--build-arg".to_owned(), format!("SERVICE={name}")]);
        }
        args.push(".".to_owned());
        steps.push(Step::Run {
            what: format!("build {image}"),
            cmd: Cmd::new("docker").args(args),
        });
        steps.push(Step::Run {
            what: format!("load {image} into the cluster's nodes"),
            cmd: Cmd::new("kind").args(["load", "docker-image", image, "--name", cluster]),
        });
    }
    let title = match choice {
        Images::Build => "our images (--build: every one built here)".to_owned(),
        Images::Published { prefix } => format!(
            "our images: the nodes pull the published {} ({}); the BYO agents are built here",
            images::published(prefix, "<service>"),
            images::PUBLISHED.join(", ")
        ),
    };
    Phase { title, steps }
}

/// Where an image of ours is built from.
pub(super) enum ImageSource {
    /// One of the workspace's Rust services (a crate directory = package name).
    Service(String),
    /// A directory with its own `Dockerfile` (the BYO Python agents).
    Dir(String),
}

impl ImageSource {
    pub(super) fn dockerfile(&self) -> String {
        match self {
            ImageSource::Service(_) => "Dockerfile".to_owned(),
            ImageSource::Dir(dir) => format!("{dir}/Dockerfile"),
        }
    }
}
