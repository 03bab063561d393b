//! Looking at a kind lab that is up: `status` (Deployments, the Gateway's address, agents,
//! calls waiting for a reviewer) and `port-forward` (the UIs on localhost until Ctrl-C).

use std::{
    fmt::Write as _,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use hitl_wire::extauth::client::{AdminClient, AdminError};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Secret};
use kube::{Api, Client, api::ListParams};

use hitl_manifests::{LabManifests, secrets};

use super::{apply, cmd::Cmd, plan, wait};

/// A `kubectl port-forward` the lab offers.
#[derive(Debug, Clone, Copy)]
pub struct Forward {
    pub what: &'static str,
    pub namespace: &'static str,
    pub service: &'static str,
    pub local: u16,
    pub remote: u16,
}

/// What `cargo xtask port-forward` forwards.
pub const FORWARDS: [Forward; 3] = [
    Forward {
        what: "kagent UI (chat with the agent; tier-1 approvals)",
        namespace: "kagent",
        service: "kagent-ui",
        local: 8080,
        remote: 8080,
    },
    Forward {
        what: "hitl-ui (the platform reviewer's queue; tier-2 approvals)",
        namespace: "hitl-lab",
        service: "hitl-ui",
        local: 8090,
        remote: 8080,
    },
    Forward {
        what: "kagent controller (A2A API)",
        namespace: "kagent",
        service: "kagent-controller",
        local: 8083,
        remote: 8083,
    },
];

fn forward_cmd(context: &str, f: &Forward, local: u16) -> Cmd {
    Cmd::new("kubectl").args([
        "--context",
        context,
        "--namespace",
        f.namespace,
        "port-forward",
        &format!("svc/{}", f.service),
        &format!("{local}:{}", f.remote),
    ])
}

/// hitl-ui's generated sign-in line (`reviewer:<password>`).
pub async fn reviewer_login(client: &Client) -> anyhow::Result<String> {
    let reviewers = secrets::GENERATED
        .iter()
        .find(|s| matches!(s.value, secrets::GeneratedValue::ReviewerAccount { .. }))
        .context("no generated reviewer account")?;
    secret_value(client, reviewers.namespace, reviewers.name, reviewers.key).await
}

/// hitl-extauth's generated admin token.
pub async fn admin_token(client: &Client) -> anyhow::Result<String> {
    let token = secrets::ADMIN_TOKEN;
    secret_value(client, token.namespace, token.name, token.key).await
}

/// mock-db-mcp's generated reset token.
pub async fn reset_token(client: &Client) -> anyhow::Result<String> {
    let token = secrets::RESET_TOKEN;
    secret_value(client, token.namespace, token.name, token.key).await
}

async fn secret_value(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> anyhow::Result<String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api
        .get(name)
        .await
        .with_context(|| format!("reading Secret {namespace}/{name}"))?;
    let bytes = secret
        .data
        .and_then(|mut d| d.remove(key))
        .with_context(|| format!("Secret {namespace}/{name} has no key {key}"))?;
    Ok(String::from_utf8_lossy(&bytes.0).trim().to_owned())
}

pub(super) async fn cluster_exists(cluster: &str) -> anyhow::Result<bool> {
    let clusters = Cmd::new("kind").args(["get", "clusters"]).output().await?;
    Ok(clusters.lines().any(|l| l.trim() == cluster))
}

/// `cargo xtask status` for the kind lab: the text to show.
pub async fn status(lab: &LabManifests) -> anyhow::Result<String> {
    let mut out = String::new();
    let cluster = plan::cluster_name(lab)?;
    if !cluster_exists(&cluster).await? {
        writeln!(
            out,
            "No kind cluster `{cluster}`: bring the lab up with `cargo xtask up`."
        )?;
        return Ok(out);
    }
    let context = plan::context(&cluster);
    let client = apply::client(&context).await?;
    writeln!(
        out,
        "kind cluster `{cluster}` (context {context})\n\nDeployments:"
    )?;
    write_deployments(&mut out, &client).await?;

    let gw = &lab.gateway;
    let gateways = apply::dynamic_api(
        &client,
        "gateway.networking.k8s.io",
        "v1",
        "Gateway",
        Some(&gw.namespace),
    )
    .await?;
    let address = match gateways.get_opt(&gw.name).await? {
        Some(obj) => wait::gateway_address(&obj).unwrap_or_else(|| "no address yet".to_owned()),
        None => "not created".to_owned(),
    };
    writeln!(out, "\nGateway {}/{}: {address}", gw.namespace, gw.name)?;

    writeln!(out, "\nAgents:")?;
    let agents = apply::dynamic_api_all(&client, "kagent.dev", "v1alpha2", "Agent").await?;
    for agent in agents.list(&ListParams::default()).await?.items {
        let ready = match wait::condition(&agent, "Ready") {
            Some((status, _)) if status == "True" => "Ready".to_owned(),
            Some((status, message)) => format!("Ready {status}: {message}"),
            None => "no status yet".to_owned(),
        };
        writeln!(
            out,
            "  {}/{}: {ready}",
            agent.metadata.namespace.as_deref().unwrap_or("?"),
            agent.metadata.name.as_deref().unwrap_or("?")
        )?;
    }

    write_forwards(&mut out)?;
    write_pending(&mut out, &client, &context, lab).await?;
    Ok(out)
}

/// The lab's Deployments, ready or not.
async fn write_deployments(out: &mut String, client: &Client) -> anyhow::Result<()> {
    for namespace in [
        "hitl-lab",
        "kagent",
        "agentgateway-system",
        "metallb-system",
    ] {
        let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        for d in api.list(&ListParams::default()).await?.items {
            let name = d.metadata.name.clone().unwrap_or_default();
            let desired = d.spec.replicas.unwrap_or(1);
            let ready = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            let mark = if wait::deployment_state(&d).is_ok() {
                "ok "
            } else {
                "..."
            };
            writeln!(out, "  {mark} {namespace}/{name}  {ready}/{desired} ready")?;
        }
    }
    Ok(())
}

/// The background port-forwards `up` recorded, running or not.
fn write_forwards(out: &mut String) -> anyhow::Result<()> {
    if let Some(state) = hitl_lab::lab::LabState::load(&hitl_lab::lab::default_dir())?
        && state.target == hitl_lab::lab::Target::Kind
    {
        writeln!(out, "\nBackground port-forwards (from `up`):")?;
        for p in &state.processes {
            let alive = hitl_lab::proc::live_cmdline(p.pid).as_deref() == Some(&p.argv[..]);
            let mark = if alive {
                "running"
            } else {
                "NOT RUNNING (re-run `cargo xtask up`)"
            };
            writeln!(out, "  {:<28} pid {:<8} {mark}", p.name, p.pid)?;
        }
    }
    Ok(())
}

/// The calls waiting for a platform reviewer.
async fn write_pending(
    out: &mut String,
    client: &Client,
    context: &str,
    lab: &LabManifests,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "\nCalls waiting for a platform reviewer (hitl-extauth /pending):"
    )?;
    let token = admin_token(client).await.ok();
    match pending(context, lab, token).await {
        Ok(list) if list.pending.is_empty() => writeln!(out, "  none")?,
        Ok(list) => {
            let listed = list.pending.len();
            for call in list.pending {
                writeln!(
                    out,
                    "  {}  {}({})  asked by {}  expires {}",
                    call.id,
                    call.tool_name,
                    call.tool_args,
                    call.requester.as_deref().unwrap_or("unknown"),
                    call.expires_at
                )?;
            }
            if list.more {
                writeln!(
                    out,
                    "  … and more behind these (the oldest {listed} are listed)"
                )?;
            }
        }
        Err(e) => writeln!(out, "  unavailable: {e:#}")?,
    }
    Ok(())
}

/// hitl-extauth's `/pending`, through a short-lived `kubectl port-forward` (the admin API is
/// reachable in the cluster by hitl-ui only).
async fn pending(
    context: &str,
    lab: &LabManifests,
    token: Option<String>,
) -> anyhow::Result<hitl_wire::extauth::PendingList> {
    let backend = &lab.gate.ext_auth.backend;
    let service = lab
        .service(&backend.namespace, &backend.name)
        .context("the gate's Service is not in manifests/")?;
    let admin_port = service
        .ports
        .iter()
        .find(|p| p.name.as_deref() == Some("http"))
        .context("the gate's Service has no `http` (admin) port")?
        .port;
    let local = hitl_lab::net::free_port()?;
    let forward = Forward {
        what: "hitl-extauth admin API",
        namespace: "hitl-lab",
        service: "hitl-extauth",
        local,
        remote: admin_port,
    };
    let mut child = spawn_forward(context, &forward, local, true)?;
    let admin = AdminClient::with_timeouts(
        &format!("http://127.0.0.1:{local}"),
        token,
        Duration::from_secs(5),
        Duration::from_secs(5),
    )?;
    let started = Instant::now();
    let result = loop {
        match admin.pending().await {
            Err(AdminError::Unreachable { .. }) if started.elapsed() < Duration::from_secs(15) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e @ AdminError::Unreachable { .. }) => {
                break Err(anyhow::Error::from(e).context("port-forward to hitl-extauth"));
            }
            other => break other.map_err(anyhow::Error::from),
        }
    };
    let _ = child.kill().await;
    result
}

fn spawn_forward(
    context: &str,
    forward: &Forward,
    local: u16,
    quiet: bool,
) -> anyhow::Result<tokio::process::Child> {
    let cmd = forward_cmd(context, forward, local);
    let mut command = tokio::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if quiet {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }
    command
        .spawn()
        .with_context(|| format!("starting `{cmd}` (is kubectl installed?)"))
}

/// `cargo xtask port-forward`: the lab's UIs on localhost until Ctrl-C (or a forward dies).
pub async fn port_forward(lab: &LabManifests) -> anyhow::Result<()> {
    let cluster = plan::cluster_name(lab)?;
    anyhow::ensure!(
        cluster_exists(&cluster).await?,
        "no kind cluster `{cluster}`: bring the lab up with `cargo xtask up`"
    );
    let context = plan::context(&cluster);
    // `up` already forwards hitl-ui to the port its ALLOWED_HOSTS accepts, for the harness.
    let up_forwards = hitl_lab::lab::LabState::load(&hitl_lab::lab::default_dir())?
        .filter(|s| s.target == hitl_lab::lab::Target::Kind)
        .map(|s| s.urls.reviewer_ui);
    let mut children = Vec::new();
    for fw in &FORWARDS {
        let url = format!("http://127.0.0.1:{}", fw.local);
        if fw.service == "hitl-ui" && up_forwards.as_deref() == Some(url.as_str()) {
            eprintln!("  ({url}: already forwarded by `cargo xtask up`)");
            continue;
        }
        eprintln!("$ {}", forward_cmd(&context, fw, fw.local));
        children.push((fw, spawn_forward(&context, fw, fw.local, false)?));
    }
    let a2a = format!("/api/a2a/{}/{}/", lab.agent.namespace, lab.agent.name);
    for fw in &FORWARDS {
        let path = if fw.service == "kagent-controller" {
            a2a.as_str()
        } else {
            ""
        };
        eprintln!("  http://localhost:{}{path}   {}", fw.local, fw.what);
    }
    eprintln!("Forwarding until Ctrl-C.");
    let exited = async {
        loop {
            for (fw, child) in children.iter_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return (fw.service, status);
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            eprintln!("stopping the port-forwards");
            Ok(())
        }
        (service, status) = exited => {
            anyhow::bail!("the port-forward to {service} stopped ({status}); is the lab up? (`cargo xtask status`)")
        }
    }
}

/// `cargo xtask down` for the kind lab: stop the background port-forwards, forget the lab,
/// delete the cluster (a no-op if there is none).
pub async fn down(lab: &LabManifests) -> anyhow::Result<()> {
    super::expose::stop(&hitl_lab::lab::default_dir())?;
    let cluster = plan::cluster_name(lab)?;
    let cmd = Cmd::new("kind").args(["delete", "cluster", "--name", &cluster]);
    eprintln!("$ {cmd}");
    cmd.run().await
}
