//! Scene 8 on kind: hitl-extauth crashes while a call is held and Kubernetes brings it back.
//! Its process is killed with SIGKILL from the kind node (`kill -9`, as a crash: no clean
//! shutdown); the kubelet restarts the container in the same pod, and the store survives it
//! (PostgreSQL, or with `--store sqlite` the file on its PersistentVolumeClaim). With two
//! replicas every pod's gate is killed, so the one holding the call (which the harness cannot
//! tell from outside the cluster) is among them.
//! Returns once every container has restarted, every pod is ready again and the lab's
//! port-forwards run (one to a pod may end with the container it forwarded to).

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
        "jsonpath={range .items[*]}{.metadata.name} \
         {.status.containerStatuses[0].restartCount} \
         {.status.containerStatuses[0].ready}{\"\\n\"}{end}",
    ])
}

/// The running gate containers (one per replica; kind has one node).
fn container_ids(node: &str) -> Cmd {
    Cmd::new("docker").args([
        "exec", node, "crictl", "ps", "--name", CONTAINER, "--state", "running", "-q",
    ])
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
    let before = standing(&context).await?;
    let ids = container_ids(&node).output().await?;
    let ids: Vec<&str> = ids
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    anyhow::ensure!(
        !ids.is_empty(),
        "no running {CONTAINER} container on {node}"
    );
    for id in ids {
        let pid = container_pid(&node, id).output().await?;
        kill(&node, pid.trim()).run().await?;
    }
    let deadline = Instant::now() + BACK_WITHIN;
    loop {
        if let Ok(now) = standing(&context).await
            && before.iter().all(|(pod, count, _)| {
                now.iter()
                    .any(|(p, c, ready)| p == pod && c > count && *ready)
            })
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

/// Each gate pod's name, its container's restart count and whether it is ready.
async fn standing(context: &str) -> anyhow::Result<Vec<(String, u64, bool)>> {
    let out = restart_count(context).output().await?;
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut fields = line.split_whitespace();
            let pod = fields.next().unwrap_or_default().to_owned();
            let count = fields.next().unwrap_or_default().parse()?;
            Ok((pod, count, fields.next() == Some("true")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_is_killed_on_the_node_and_watched_through_its_pod() {
        assert_eq!(
            container_ids("hitl-lab-control-plane").to_string(),
            "docker exec hitl-lab-control-plane crictl ps --name hitl-extauth --state running -q"
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
