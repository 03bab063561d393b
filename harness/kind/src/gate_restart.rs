//! Scene 8 on kind: hitl-extauth crashes while a call is held and Kubernetes brings it back.
//! Its process is killed with SIGKILL from the kind node (`kill -9`, as a crash: no clean
//! shutdown); the kubelet restarts the container in the same pod, and the store survives it
//! (PostgreSQL, or with `--store sqlite` the file on its PersistentVolumeClaim). With two
//! replicas, one pod's gate is killed (the first by name): calls it held fail closed, the
//! other replica keeps serving.
//! Returns once the container has restarted, the pod is ready again and the lab's
//! port-forwards run (one to the pod may end with the container it forwarded to).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use hitl_manifests::LabManifests;

use crate::{Cmd, plan};

/// The gate's namespace and pod label in `manifests/services/hitl-extauth.yaml`.
const NAMESPACE: &str = "hitl-lab";
const SELECTOR: &str = "app.kubernetes.io/name=hitl-extauth";
const CONTAINER: &str = "hitl-extauth";
/// How long Kubernetes may take to bring the gate back (a restart, its readiness probe).
const BACK_WITHIN: Duration = Duration::from_secs(120);

/// The commands, as data (unit-tested): the restart count, the container's pid on the node,
/// the kill.
fn restart_count(context: &str) -> Cmd {
    Cmd::new("kubectl").args([
        "--context",
        context,
        "-n",
        NAMESPACE,
        "get",
        "pods",
        "-l",
        SELECTOR,
        "-o",
        "jsonpath={.items[0].metadata.name} \
         {.items[0].status.containerStatuses[0].restartCount} \
         {.items[0].status.containerStatuses[0].ready}",
    ])
}

/// The running gate container of pod `pod` (with several replicas, only that pod's).
fn container_id(node: &str, pod: &str) -> Cmd {
    Cmd::new("docker")
        .args([
            "exec", node, "crictl", "ps", "--name", CONTAINER, "--state", "running",
        ])
        .arg("--label")
        .arg(format!("io.kubernetes.pod.name={pod}"))
        .arg("-q")
}

fn container_pid(node: &str, id: &str) -> Cmd {
    Cmd::new("docker").args([
        "exec",
        node,
        "crictl",
        "inspect",
        "--output",
        "go-template",
        "--template",
        "{{.info.pid}}",
        id,
    ])
}

fn kill(node: &str, pid: &str) -> Cmd {
    Cmd::new("docker").args(["exec", node, "kill", "-9", pid])
}

/// Kill the kind lab's gate (`kill -9`), wait until Kubernetes has it back and ready, and
/// start again any port-forward of the lab recorded in `dir` that ended.
pub async fn restart_gate(dir: &Path) -> anyhow::Result<()> {
    let cluster = plan::cluster_name(&LabManifests::load()?)?;
    let context = plan::context(&cluster);
    let node = format!("{cluster}-control-plane");
    let (pod, before, _) = standing(&context).await?;
    let id = container_id(&node, &pod).output().await?;
    let id = id.lines().next().map(str::trim).unwrap_or_default();
    anyhow::ensure!(!id.is_empty(), "no running {CONTAINER} container on {node}");
    let pid = container_pid(&node, id).output().await?;
    kill(&node, pid.trim()).run().await?;
    let deadline = Instant::now() + BACK_WITHIN;
    loop {
        if let Ok((now, count, true)) = standing(&context).await
            && now == pod
            && count > before
        {
            hitl_lab::local::revive(dir).await?;
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{CONTAINER} was not restarted and ready within {BACK_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The first gate pod's name, its container's restart count and whether it is ready.
async fn standing(context: &str) -> anyhow::Result<(String, u64, bool)> {
    let out = restart_count(context).output().await?;
    let mut fields = out.split_whitespace();
    let pod = fields.next().unwrap_or_default().to_owned();
    let count = fields.next().unwrap_or_default().parse()?;
    Ok((pod, count, fields.next() == Some("true")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_is_killed_on_the_node_and_watched_through_its_pod() {
        assert_eq!(
            container_id("hitl-lab-control-plane", "hitl-extauth-7d-x").to_string(),
            "docker exec hitl-lab-control-plane crictl ps --name hitl-extauth --state running \
             --label io.kubernetes.pod.name=hitl-extauth-7d-x -q"
        );
        assert_eq!(
            kill("hitl-lab-control-plane", "4242").to_string(),
            "docker exec hitl-lab-control-plane kill -9 4242"
        );
        assert!(
            restart_count("kind-hitl-lab")
                .to_string()
                .contains("-n hitl-lab get pods -l app.kubernetes.io/name=hitl-extauth")
        );
    }
}
