//! Executing a [`Plan`]: each step as the dry run describes it, with a progress line per step
//! and per wait. Safe to run again on a lab that is (partly) up: every step is idempotent.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Context as _;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Api, Client};

use hitl_lab::lab::LabState;
use hitl_manifests::secrets::{GeneratedSecret, GeneratedValue};

use hitl_manifests::Doc;

use super::{
    apply,
    cmd::Cmd,
    expose, metallb,
    plan::{self, Plan, Step},
    wait,
};

/// What `up` brought up, for the caller (and the lab state file).
#[derive(Debug, Clone, PartialEq)]
pub struct UpReport {
    pub cluster: String,
    pub context: String,
    /// The Gateway's LoadBalancer address on the kind network.
    pub gateway_address: String,
    /// What was recorded in the lab state file (URLs through the background forwards).
    pub state: Option<LabState>,
    /// Where everything is, for the person who ran `up` (the plan's last step).
    pub urls: Option<String>,
}

struct Run<'a> {
    plan: &'a Plan,
    context: String,
    client: Option<Client>,
    gateway_address: Option<String>,
    state: Option<LabState>,
    urls: Option<String>,
}

impl Run<'_> {
    /// The cluster's client, created on first use (the cluster exists from step 1.1 on).
    async fn client(&mut self) -> anyhow::Result<Client> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let client = apply::client(&self.context).await?;
        self.client = Some(client.clone());
        Ok(client)
    }
}

/// Run every step of `plan` (pre-flight first).
pub async fn execute(plan: &Plan) -> anyhow::Result<UpReport> {
    super::preflight::check(&super::preflight::System, plan.model, &plan.files)?;
    if let Some(state) = LabState::load(&hitl_lab::lab::default_dir())?
        && state.target != hitl_lab::lab::Target::Kind
    {
        anyhow::bail!(
            "a {} lab is up: take it down first (`cargo xtask down`)",
            state.target.as_str()
        );
    }
    let mut run = Run {
        plan,
        context: plan::context(&plan.cluster),
        client: None,
        gateway_address: None,
        state: None,
        urls: None,
    };
    let total = plan.len();
    let mut n = 0;
    for (p, phase) in plan.phases.iter().enumerate() {
        eprintln!("\n==> {}. {}", p + 1, phase.title);
        for step in &phase.steps {
            n += 1;
            eprintln!("--> [{n}/{total}] {}", step.describe());
            step_once(&mut run, step)
                .await
                .with_context(|| format!("step {n}/{total}: {}", step.describe()))?;
        }
    }
    Ok(UpReport {
        cluster: plan.cluster.clone(),
        context: run.context.clone(),
        gateway_address: run.gateway_address.unwrap_or_default(),
        state: run.state,
        urls: run.urls,
    })
}

async fn step_once(run: &mut Run<'_>, step: &Step) -> anyhow::Result<()> {
    match step {
        Step::CreateCluster { name, cmd } => create_cluster(name, cmd).await,
        Step::Run { cmd, .. } => {
            eprintln!("      $ {cmd}");
            cmd.run().await
        }
        Step::WaitCrds { names } => {
            let client = run.client().await?;
            wait::crds(&client, names, Duration::from_secs(120)).await
        }
        Step::WaitDeployments {
            namespace,
            names,
            timeout,
        } => {
            let client = run.client().await?;
            wait::deployments(&client, namespace, names, *timeout).await
        }
        Step::WaitStatefulSets {
            namespace,
            names,
            timeout,
        } => {
            let client = run.client().await?;
            wait::stateful_sets(&client, namespace, names, *timeout).await
        }
        Step::MetalLbPool { inspect } => metallb_pool(run, inspect).await,
        Step::GenerateSecret(secret) => {
            let client = run.client().await?;
            generate_secret(&client, secret).await
        }
        Step::SecretFromEnv {
            namespace,
            name,
            key,
            env,
        } => {
            let value = std::env::var(env).with_context(|| format!("{env} is not set"))?;
            let client = run.client().await?;
            apply_secret(&client, namespace, name, vec![(key.as_str(), value)]).await
        }
        Step::Apply { docs, .. } => apply_docs(run, docs).await,
        Step::WaitGatewayAddress {
            namespace,
            name,
            timeout,
        } => {
            let client = run.client().await?;
            let address = wait::gateway(&client, namespace, name, *timeout).await?;
            run.gateway_address = Some(address);
            Ok(())
        }
        Step::WaitAgentReady {
            namespace,
            name,
            timeout,
        } => {
            let client = run.client().await?;
            wait::agent(&client, namespace, name, *timeout).await
        }
        Step::Expose { forwards } => {
            let client = run.client().await?;
            let access = expose::Access {
                admin_token: Some(super::status::admin_token(&client).await?),
                reset_token: Some(super::status::reset_token(&client).await?),
                reviewer_login: Some(super::status::reviewer_login(&client).await?),
            };
            let state = expose::start(&run.context, run.plan.model, forwards, access).await?;
            run.state = Some(state);
            Ok(())
        }
        Step::PrintUrls {
            agent_namespace,
            agent_name,
        } => record_urls(run, agent_namespace, agent_name).await,
    }
}

/// `kind create cluster`, unless a cluster of that name exists.
async fn create_cluster(name: &str, cmd: &Cmd) -> anyhow::Result<()> {
    let existing = Cmd::new("kind").args(["get", "clusters"]).output().await?;
    if existing.lines().any(|line| line.trim() == name) {
        eprintln!("      kind cluster `{name}` exists: kept");
        Ok(())
    } else {
        eprintln!("      $ {cmd}");
        cmd.run().await
    }
}

/// MetalLB's address pool from the kind network's subnet.
async fn metallb_pool(run: &mut Run<'_>, inspect: &Cmd) -> anyhow::Result<()> {
    let json = inspect.output().await?;
    let subnet = metallb::ipv4_subnet(&json)?;
    let (first, last) = metallb::pool_range(subnet)?;
    eprintln!("      kind network {subnet}: pool {first}-{last}");
    let client = run.client().await?;
    // MetalLB validates pools with a webhook that answers a little after its
    // Deployment is Available: retry until it accepts.
    wait::until(
        "MetalLB's webhook to accept the pool",
        Duration::from_secs(120),
        || async {
            for resource in metallb::pool_resources(first, last) {
                apply::apply(&client, &resource)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
            }
            Ok(())
        },
    )
    .await
}

/// Server-side apply `docs`, the gate policy's JWKS placeholder filled with the lab's key.
async fn apply_docs(run: &mut Run<'_>, docs: &[Doc]) -> anyhow::Result<()> {
    let client = run.client().await?;
    // The lab's own requester key (kept in target/lab): its JWKS replaces the
    // placeholder in the gate policy, as the local lab does.
    let issuer = hitl_lab::requester::Issuer::load_or_create(&hitl_lab::lab::default_dir())?;
    for doc in docs {
        let mut value = doc.value.clone();
        if hitl_lab::requester::fill_lab_jwks(&mut value, &issuer) {
            eprintln!("      {}: the lab's requester key as JWKS", doc.resource());
        }
        apply::apply(&client, &value).await?;
        eprintln!("      applied {}", doc.resource());
    }
    Ok(())
}

/// Where everything is, kept for the report (the edge shows it).
async fn record_urls(
    run: &mut Run<'_>,
    agent_namespace: &str,
    agent_name: &str,
) -> anyhow::Result<()> {
    let client = run.client().await?;
    let reviewer = super::status::reviewer_login(&client).await.ok();
    let urls = super::urls::Where {
        cluster: &run.plan.cluster,
        model: run.plan.model,
        gateway_address: run.gateway_address.as_deref().unwrap_or("?"),
        agent_namespace,
        agent_name,
        reviewer: reviewer.as_deref(),
        state: run.state.as_ref(),
    };
    run.urls = Some(urls.to_string());
    Ok(())
}

async fn generate_secret(client: &Client, secret: &GeneratedSecret) -> anyhow::Result<()> {
    let api: Api<Secret> = Api::namespaced(client.clone(), secret.namespace);
    let has_key = |existing: Option<Secret>| {
        existing
            .and_then(|s| s.data)
            .is_some_and(|data| data.contains_key(secret.key))
    };
    let mut kept = has_key(api.get_opt(secret.name).await?);
    if let GeneratedValue::GateTls { client: name } = secret.value {
        // The pair or nothing: a certificate from an earlier CA would not verify the other.
        kept = kept && has_key(api.get_opt(name).await?);
    }
    if kept {
        eprintln!("      exists: kept");
        return Ok(());
    }
    let data: Vec<(&str, String)> = match secret.value {
        GeneratedValue::Token => vec![(secret.key, random_hex()?)],
        GeneratedValue::ReviewerAccount { user } => {
            vec![(secret.key, format!("{user}:{}", random_hex()?))]
        }
        GeneratedValue::ApprovalKeyPair => {
            let signer = hitl_wire::approval::Signer::generate()?;
            vec![
                (secret.key, signer.signing_key_hex()),
                (
                    hitl_manifests::secrets::APPROVAL_VERIFYING_KEY,
                    signer.verifying_key_hex(),
                ),
            ]
        }
        GeneratedValue::GateTls { client: name } => {
            let tls = hitl_lab::gate_tls::GateTls::issue("hitl-lab gateway-gate CA")?;
            let [crt, key, ca] = hitl_manifests::secrets::TLS_KEYS;
            let pair = |pem: &hitl_lab::gate_tls::Pem| {
                vec![
                    (crt, pem.cert.clone()),
                    (key, pem.key.clone()),
                    (ca, tls.ca.clone()),
                ]
            };
            apply_secret(client, secret.namespace, name, pair(&tls.client)).await?;
            pair(&tls.server)
        }
    };
    apply_secret(client, secret.namespace, secret.name, data).await
}

async fn apply_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    data: Vec<(&str, String)>,
) -> anyhow::Result<()> {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/part-of".to_owned(),
                "hitl-lab".to_owned(),
            )])),
            ..Default::default()
        },
        data: Some(
            data.into_iter()
                .map(|(key, value)| (key.to_owned(), ByteString(value.into_bytes())))
                .collect(),
        ),
        type_: Some("Opaque".to_owned()),
        ..Default::default()
    };
    apply::apply(client, &serde_json::to_value(&secret)?).await
}

/// 32 random bytes as hex.
fn random_hex() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
