//! What the local lab runs, as process specs: the services (mock-db-mcp, the gate, the
//! gateway, the reviewer UI) and the agents' side (the scripted model, the agents, the chat
//! page), all configured from the manifests' translation in `generate`.

use std::{path::PathBuf, time::Duration};

use hitl_manifests::{LabManifests, ModelChoice};

use super::{LocalConfig, generate};
use crate::{
    agents::AgentKind,
    components::{self, chat, extauth, kagent, langgraph, mock_db, scripted_model, ui},
    credentials::Credentials,
    envoy::{Endpoint, GatewayPlan},
    gate_tls::{GateTls, GateTlsFiles},
    lab::Urls,
    oidc_provider,
    proc::Spec,
    pyenv::Venv,
    requester,
};

use super::store::PostgresRecord;

/// The manifests translated for this lab: the gateway's plan, the agent's, where the
/// agent's config and card were written, and the gate's park timeout.
pub(super) struct Translated {
    pub(super) gateway: GatewayPlan,
    pub(super) agent: generate::AgentPlan,
    agent_config: PathBuf,
    agent_card: PathBuf,
    pub(super) park_timeout: Duration,
    /// mTLS between the gateway and the gate, when the manifests ask for it.
    gate_tls: Option<GateTlsFiles>,
    /// The gate's approval policy, written from the manifests' ConfigMap.
    approval_policy: Option<PathBuf>,
}

/// Translate `manifests` for `config`; write the agent's config and card and the requester
/// key's JWKS under `config.dir`.
pub(super) fn translate(
    config: &LocalConfig,
    manifests: &LabManifests,
) -> anyhow::Result<Translated> {
    let park_timeout = config
        .park_timeout
        .or_else(|| manifests.park_timeout())
        .unwrap_or(Duration::from_secs(600));
    let ports = &config.ports;
    // The lab issues its own requester tokens: one key pair, kept across restarts.
    let issuer = requester::Issuer::load_or_create(&config.dir)?;
    let mut plan = generate::gateway_plan(manifests, ports, park_timeout)?;
    plan.requester_jwt = generate::requester_jwt(manifests, &issuer)?;
    // The keys the gateway verifies with (the lab's where the manifest has the placeholder)
    // as a file, for the gate, which verifies every requester token again itself.
    if let Some(jwt) = &plan.requester_jwt {
        std::fs::write(config.dir.join(requester::JWKS_FILE), &jwt.jwks)?;
    }
    // mTLS between the gateway and the gate when the manifests have it (the backend policy
    // on the gate's Service presents a client certificate, as in kind): a CA for this start,
    // its key forgotten once both certificates are issued.
    let gate_tls = match &manifests.gate.ext_auth_mtls_secret {
        Some(_) => Some(
            GateTls::issue("hitl-lab local gateway-gate CA")?
                .write(&config.dir.join("credentials"))?,
        ),
        None => None,
    };
    if let Some(files) = &gate_tls {
        plan = plan.with_gate_tls(files.into());
    }
    // Every Check is balanced over the gate's replicas (replica 1 on the documented ports).
    let more = (2..=config.topology.replicas)
        .map(|k| Endpoint::loopback(ports.extauth_replica(k).0))
        .collect();
    plan = plan.with_gate_replicas(more);
    let api_key = config
        .model
        .api_key_env()
        .and_then(|v| std::env::var(v).ok());
    let agent = generate::agent_plan(manifests, ports, config.model, api_key)?;

    let conf_dir = config.dir.join("config");
    hitl_wire::private::dir(&conf_dir)?;
    let agent_config = conf_dir.join("agent-config.json");
    let agent_card = conf_dir.join("agent-card.json");
    hitl_wire::private::write(&agent_config, &serde_json::to_vec_pretty(&agent.config)?)?;
    std::fs::write(&agent_card, serde_json::to_vec_pretty(&agent.card)?)?;
    // Who may approve what: the ConfigMap the gate's Deployment mounts, as its file.
    let approval_policy = match manifests.approval_policy() {
        Some(policy) => {
            let path = conf_dir.join("approval-policy.toml");
            std::fs::write(&path, policy)?;
            Some(path)
        }
        None => None,
    };
    Ok(Translated {
        approval_policy,
        gateway: plan,
        agent,
        agent_config,
        agent_card,
        park_timeout,
        gate_tls,
    })
}

/// The reviewers' OpenID Provider: installed, its key and users written with the lab's
/// other credentials, reachable from hitl-ui as a browser opens it (127.0.0.1 or localhost).
pub(super) fn identity_provider(
    config: &LocalConfig,
) -> anyhow::Result<(Spec, oidc_provider::Setup)> {
    let installed = oidc_provider::ensure()?;
    let ui = config.ports.ui;
    let setup = oidc_provider::Setup::write(
        &config.dir.join("credentials"),
        config.ports.oidc,
        oidc_provider::workshop_users(),
        &[
            format!("http://127.0.0.1:{ui}"),
            format!("http://localhost:{ui}"),
        ],
    )?;
    let spec = components::oidc_provider::spec(&installed, &setup, &config.log_dir());
    Ok((spec, setup))
}

/// mock-db-mcp, the gate's replicas (on `postgres` when the lab runs one), the gateway and
/// the reviewer UI (its reviewers signing in at `op` too).
pub(super) fn services(
    config: &LocalConfig,
    manifests: &LabManifests,
    lab: &Translated,
    urls: &Urls,
    credentials: &Credentials,
    postgres: Option<&PostgresRecord>,
    op: &oidc_provider::Setup,
) -> anyhow::Result<Vec<Spec>> {
    let ports = &config.ports;
    let log_dir = config.log_dir();
    let mut specs = vec![mock_db::spec(
        &mock_db::Options::new(ports.mock_db)
            .reset_token(&credentials.reset_token)
            .verifying_key(&credentials.keys.verifying)
            .query_budgets("1s", "64MiB"),
        &log_dir,
    )?];
    for k in 1..=config.topology.replicas {
        specs.push(gate_replica(
            config,
            manifests,
            lab,
            credentials,
            postgres,
            (k, op),
        )?);
    }
    specs.push(config.gateway.spec(&lab.gateway, &log_dir)?);
    specs.push(ui::spec(
        &ui::Options::new(ports.ui, &urls.extauth_admin)
            .mock_db_state_url(format!(
                "{}{}",
                urls.mock_db,
                hitl_wire::mockdb::paths::STATE
            ))
            .reviewer_credentials(&config.reviewer_credentials)
            .extauth_admin_token(&credentials.admin_token)
            .oidc(ui::Oidc {
                issuer: op.issuer.clone(),
                client_id: oidc_provider::CLIENT_ID.to_owned(),
                client_secret_file: op.client_secret_file.clone(),
            }),
        &log_dir,
    )?);
    Ok(specs)
}

/// The name of gate replica `k` among the lab's processes: `hitl-extauth` for the first
/// (what `logs`, `restart` and scene 8 name), `hitl-extauth-2`, … for the others.
pub fn replica_process(k: u16) -> String {
    match k {
        1 => extauth::NAME.to_owned(),
        k => format!("{}-{k}", extauth::NAME),
    }
}

/// Gate replica `k` (from 1) on its own ports: on the lab's PostgreSQL as `extauth-k`, or
/// (one replica) on the SQLite file in the lab's directory.
fn gate_replica(
    config: &LocalConfig,
    manifests: &LabManifests,
    lab: &Translated,
    credentials: &Credentials,
    postgres: Option<&PostgresRecord>,
    (k, op): (u16, &oidc_provider::Setup),
) -> anyhow::Result<Spec> {
    let (grpc, http) = config.ports.extauth_replica(k);
    let log_dir = config.log_dir();
    let mut spec = extauth::spec(
        &{
            let mut gate = extauth::Options::new(grpc, http, &config.dir)
                .park_timeout(lab.park_timeout)
                .credentials(credentials);
            if let Some(store) = postgres {
                gate = gate.postgres(&store.url, &store.password_file);
                gate.replica_name = Some(format!("extauth-{k}"));
            }
            gate.deny_response = manifests.deny_response().map(str::to_owned);
            gate.approval_policy = lab.approval_policy.clone();
            // Signed notifications to the chat page's inbox (the lab's webhook receiver).
            gate.notify =
                credentials
                    .notify_secret_file
                    .clone()
                    .map(|secret_file| extauth::Notify {
                        webhooks: vec![chat::Options::new(config.ports.chat, "").notify_url()],
                        secret_file,
                        review_url: Some(crate::net::http_url(
                            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                            config.ports.ui,
                        )),
                    });
            gate.grpc_tls = lab.gate_tls.clone();
            // The gate verifies requester tokens itself, with the keys, issuer and
            // audiences the gateway's JWT policy names (tests/manifests.rs checks the
            // gate's Deployment says the same).
            gate.requester =
                lab.gateway
                    .requester_jwt
                    .as_ref()
                    .map(|jwt| extauth::RequesterTrust {
                        jwks_file: config.dir.join(requester::JWKS_FILE),
                        issuer: jwt.issuer.clone(),
                        audiences: jwt.audiences.clone(),
                    });
            // The scenes (and the attack catalogue after them) replay one chat user's
            // same actions on each agent back to back, well within any hold: a scene
            // 3 right after another agent's scene 4 would meet that scene's rejection
            // (seen with a 2 s hold, scenes take 0.2 s). The local lab holds none; the
            // hold is the gate's default (60 s) everywhere else.
            gate.rejection_hold = Some(std::time::Duration::ZERO);
            // Reviewers' ID tokens from the lab's provider, for hitl-ui's client.
            gate.reviewer = Some(extauth::ReviewerTrust {
                jwks_file: op.jwks_file.clone(),
                issuer: op.issuer.clone(),
                audiences: vec![oidc_provider::CLIENT_ID.to_owned()],
            });
            gate
        },
        &log_dir,
    )?;
    spec.name = replica_process(k);
    spec.log = log_dir.join(format!("{}.log", spec.name));
    Ok(spec)
}

/// The scripted model (with `--model scripted`), the agents asked for, and the chat page.
pub(super) fn agents(
    config: &LocalConfig,
    manifests: &LabManifests,
    lab: &Translated,
    urls: &Urls,
    venv: &Venv,
) -> anyhow::Result<Vec<Spec>> {
    let ports = &config.ports;
    let log_dir = config.log_dir();
    let agent = &lab.agent;
    let mut specs = Vec::new();
    if config.model == ModelChoice::Scripted {
        specs.push(scripted_model::spec(ports.model, &log_dir)?);
    }
    if config.agents.contains(&AgentKind::Declarative) {
        specs.push(kagent::spec(
            venv,
            &kagent::Options {
                port: ports.agent,
                config: lab.agent_config.clone(),
                card: lab.agent_card.clone(),
                app_name: agent.app_name.clone(),
                env: agent.env.clone(),
            },
            &log_dir,
        ));
    }
    if config.agents.contains(&AgentKind::Langgraph) {
        let env = generate::langgraph_env(
            agent,
            AgentKind::Langgraph.resource_name(),
            &manifests.agent.namespace,
        );
        specs.push(langgraph::spec(venv, ports.langgraph_agent, &env, &log_dir));
    }
    // The chat user's page, offering every agent that runs (the declarative one first).
    let mut chat_page = chat::Options::new(ports.chat, &config.chat_credentials);
    for kind in AgentKind::ALL
        .into_iter()
        .filter(|k| config.agents.contains(k))
    {
        if let Some(url) = urls.agent_url(kind) {
            chat_page = chat_page.agent(kind.resource_name(), url);
        }
    }
    chat_page.scripted_model_url = urls.scripted_model.clone();
    chat_page.requester_key_file = Some(config.dir.join(requester::KEY_FILE));
    chat_page.notify_secret_file = Some(
        config
            .dir
            .join("credentials")
            .join(crate::credentials::NOTIFY_SECRET_FILE),
    );
    specs.push(chat::spec(&chat_page, &log_dir)?);
    Ok(specs)
}
