//! Pods that cannot pull their image (ErrImagePull, ImagePullBackOff): found while `up`
//! waits, and named with the fix, instead of waiting out the timeout. Our published images
//! fail the wait at once (an unreleased version or a fork's: `--build` or `--image-prefix`);
//! anyone else's show in the wait's progress, as a registry may be slow.

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client, api::ListParams};

use hitl_manifests::images;

/// The waiting reasons that mean the kubelet cannot get the image.
const PULL_FAILURES: [&str; 3] = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

/// What the pods of `owners` (every pod in `namespace` when empty) say about their images:
/// `Err(failure)` when one of our published images that the Deployments name now (`current`;
/// not an older rollout's) cannot be pulled, else `Ok` with the other pull problems.
pub async fn check(
    client: &Client,
    namespace: &str,
    owners: &[String],
    current: &[String],
) -> Result<Vec<String>, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    // Listing is best effort: the Deployments' own state still decides the wait.
    let Ok(list) = pods.list(&ListParams::default()).await else {
        return Ok(Vec::new());
    };
    verdict(namespace, &list.items, owners, current)
}

/// [`check`]'s answer for these pods.
fn verdict(
    namespace: &str,
    pods: &[Pod],
    owners: &[String],
    current: &[String],
) -> Result<Vec<String>, String> {
    let mut others = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or("?");
        if !owners.is_empty() && !owners.iter().any(|o| name.starts_with(&format!("{o}-"))) {
            continue;
        }
        for (image, reason, message) in failures(pod) {
            let what = format!(
                "pod {namespace}/{name} cannot pull {image} ({reason}: {message})",
                message = message.trim()
            );
            if current.contains(&image) && images::published_service(&image).is_some() {
                return Err(format!(
                    "{what}: this version's images are not in that registry (an unreleased \
                     version, or a fork). Run `cargo xtask up --build` to build them from this \
                     checkout, or `cargo xtask up --image-prefix <registry>/<owner>/<repo>` to \
                     pull your fork's"
                ));
            }
            others.push(format!(
                "{what}: check the image name and that the kind nodes reach its registry"
            ));
        }
    }
    Ok(others)
}

/// `(image, reason, message)` for each container of `pod` waiting on a failed pull.
fn failures(pod: &Pod) -> Vec<(String, String, String)> {
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    let statuses = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    statuses
        .filter_map(|c| {
            let waiting = c.state.as_ref()?.waiting.as_ref()?;
            let reason = waiting.reason.as_deref()?;
            PULL_FAILURES.contains(&reason).then(|| {
                (
                    c.image.clone(),
                    reason.to_owned(),
                    waiting.message.clone().unwrap_or_default(),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_waiting(image: &str, reason: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "hitl-extauth-5d9c-abcde"},
            "status": {"containerStatuses": [{
                "name": "hitl-extauth", "image": image, "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": "manifest unknown"}}
            }]}
        }))
        .expect("a Pod")
    }

    #[test]
    fn a_container_in_image_pull_back_off_is_a_failure_and_a_starting_one_is_not() {
        let image = images::published(images::PUBLISHED_PREFIX, "hitl-extauth");
        let failed = failures(&pod_waiting(&image, "ImagePullBackOff"));
        assert_eq!(
            failed,
            vec![(
                image.clone(),
                "ImagePullBackOff".to_owned(),
                "manifest unknown".to_owned()
            )]
        );
        assert!(failures(&pod_waiting(&image, "ContainerCreating")).is_empty());
    }

    #[test]
    fn our_unpublished_image_stops_the_wait_with_the_fix_and_anything_else_is_progress() {
        let owners = ["hitl-extauth".to_owned()];
        let ours = images::published(images::PUBLISHED_PREFIX, "hitl-extauth");
        let pods = [pod_waiting(&ours, "ErrImagePull")];
        let stop = verdict("hitl-lab", &pods, &owners, std::slice::from_ref(&ours))
            .expect_err("our published image cannot be pulled");
        assert!(
            stop.contains(&ours) && stop.contains("cargo xtask up --build"),
            "{stop}"
        );
        assert!(stop.contains("--image-prefix"), "{stop}");
        // An older rollout's pod (the Deployment names another image now) is only progress.
        let now = ["hitl-lab/hitl-extauth:dev".to_owned()];
        let detail = verdict("hitl-lab", &pods, &owners, &now).expect("keep waiting");
        assert_eq!(detail.len(), 1);
        // Someone else's image is only progress too: a registry may be slow.
        let theirs = "cr.kagent.dev/kagent-dev/kagent/app:0.10.4".to_owned();
        let pods = [pod_waiting(&theirs, "ImagePullBackOff")];
        let detail =
            verdict("hitl-lab", &pods, &[], std::slice::from_ref(&theirs)).expect("keep waiting");
        assert!(detail[0].contains(&theirs), "{detail:?}");
    }
}
