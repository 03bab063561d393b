//! `cargo xtask gate-check`: conformance for ANY gate that speaks
//! `envoy.service.auth.v3.Authorization`. The harness starts mock-db-mcp and a real gateway
//! (agentgateway or Envoy, configured as the local lab's) whose privileged route asks the gate
//! under test, then runs the lifecycle checks (housekeeping passes, a `tools/call` parks,
//! approve → runs, reject → the reason reaches the caller, expiry, client hang-up) and the
//! attack catalogue through it. Decisions go through hitl-extauth's admin API or a command.
//! The contract is written down in `docs/gate-contract.md`.

use std::{path::PathBuf, time::Duration};

use hitl_wire::extauth::client::AdminClient;

use crate::{
    attacks::{Attack, Decider, Target},
    scene::SuiteReport,
};
use hitl_lab::{
    clients::Db,
    components::mock_db,
    envoy::{Endpoint, GatewayPlan, GatewayPorts},
    gateway::Gateway,
    proc,
    requester::Issuer,
};

mod lifecycle;

pub use lifecycle::LIFECYCLE;

/// What `gate-check` was asked to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The gate's Check port.
    pub ext_authz: Endpoint,
    /// hitl-extauth's admin API (its `/pending`, `/decide`, `/history`), when the gate is one.
    pub admin: Option<String>,
    pub admin_token: Option<String>,
    /// A decide command (`{id}` `{approve}` `{reason}` `{reviewer}`), for gates that decide
    /// elsewhere.
    pub decide_cmd: Option<String>,
    pub gateway: Gateway,
    /// The gate's approval-token public key (hex Ed25519, as mock-db-mcp reads it): with it
    /// mock-db-mcp verifies approvals, and the token checks run.
    pub approval_key: Option<PathBuf>,
    /// The gate's park timeout, when known: the expiry check waits for it.
    pub park_timeout: Option<Duration>,
    /// The requester-token signing key (PKCS#8, as `hitl_lab::requester` keeps it) whose
    /// tokens the gate verifies; without one a fresh key is made, which a gate that verifies
    /// requester tokens itself does not trust.
    pub requester_key: Option<PathBuf>,
    /// Logs, generated configs, the database (`target/gate-check`).
    pub dir: PathBuf,
    /// How long an unanswered call counts as parked.
    pub park_window: Duration,
}

impl Options {
    pub fn new(ext_authz: Endpoint, gateway: Gateway) -> Self {
        Self {
            ext_authz,
            admin: None,
            admin_token: None,
            decide_cmd: None,
            gateway,
            approval_key: None,
            park_timeout: None,
            requester_key: None,
            dir: hitl_lab::bins::target_dir().join("gate-check"),
            park_window: Duration::from_secs(3),
        }
    }
}

/// The processes gate-check started; stopped on drop.
struct Rig {
    _db: proc::Running,
    _gateway: proc::Running,
}

/// Run the lifecycle checks and the catalogue; the report says what passed.
pub async fn run(
    options: &Options,
    attacks: &[Attack],
    live: &dyn Fn(&str),
) -> anyhow::Result<SuiteReport> {
    let log_dir = options.dir.join("logs");
    let _ = std::fs::remove_dir_all(&options.dir);
    std::fs::create_dir_all(&log_dir)?;
    let decider = decider(options)?;
    let (_rig, target) = start(options, decider, &log_dir, live).await?;
    let mut rows = Vec::new();
    for (id, name) in LIFECYCLE {
        let row = lifecycle::run(&target, id, name, options.park_timeout).await;
        live(&row.live_line("", 41));
        rows.push(row);
    }
    rows.extend(crate::attacks::run_all(&target, attacks, live).await);
    Ok(SuiteReport {
        gate: None,
        target: "gate-check".into(),
        model: "none".into(),
        gateway: options.gateway.to_string(),
        scenes: Vec::new(),
        attacks: rows,
    })
}

fn decider(options: &Options) -> anyhow::Result<Decider> {
    Ok(match (&options.decide_cmd, &options.admin) {
        (Some(cmd), _) => Decider::Command(cmd.clone()),
        (None, Some(url)) => Decider::Admin(AdminClient::new(url, options.admin_token.clone())?),
        (None, None) => anyhow::bail!(
            "gate-check needs a way to decide: --admin URL (hitl-extauth's admin API) or \
             --decide-cmd 'COMMAND {{id}} {{approve}} {{reason}}'"
        ),
    })
}

/// mock-db-mcp and the gateway in front of the gate under test, and the gate as a target.
async fn start(
    options: &Options,
    decider: Decider,
    log_dir: &std::path::Path,
    live: &dyn Fn(&str),
) -> anyhow::Result<(Rig, Target)> {
    let mut db_options = mock_db::Options::new(hitl_lab::net::free_port()?)
        .db_path(options.dir.join("mock-db.sqlite"))
        .reset_token(hitl_lab::credentials::random_token()?);
    match &options.approval_key {
        Some(key) => db_options = db_options.verifying_key(key),
        None => db_options.insecure_no_approval_key = true,
    }
    let db_process = proc::Running::start(mock_db::spec(&db_options, log_dir)?).await?;
    let issuer = match &options.requester_key {
        Some(key) => Issuer::load_file(key)?,
        None => Issuer::generate()?,
    };
    let plan = GatewayPlan::from_manifests(
        GatewayPorts::free()?,
        Endpoint::loopback(db_options.port),
        options.ext_authz.clone(),
        options.park_timeout.unwrap_or(Duration::from_secs(600)),
    )?
    .with_requester_jwt(issuer.gateway_jwt());
    let gateway_process = proc::Running::start(
        options
            .gateway
            .spec(&plan, log_dir)?
            .ready_timeout(Duration::from_secs(60)),
    )
    .await?;
    let rig = Rig {
        _db: db_process,
        _gateway: gateway_process,
    };
    live(&format!(
        "gate-check: {} on 127.0.0.1:{} → gate {}:{}, mock-db-mcp on 127.0.0.1:{} (logs: {})",
        options.gateway,
        plan.listen.port,
        options.ext_authz.host,
        options.ext_authz.port,
        db_options.port,
        log_dir.display()
    ));
    let admin = options
        .admin
        .as_ref()
        .map(|url| AdminClient::new(url, options.admin_token.clone()))
        .transpose()?;
    let target = Target {
        gateway: plan.listen.clone(),
        backend: Endpoint::loopback(db_options.port),
        db: Db::new(db_options.base_url(), db_options.reset_token.clone()),
        issuer,
        requester: "alice".into(),
        ours: admin.is_some(),
        admin,
        admin_url: options.admin.clone(),
        decider,
        ui: None,
        ext_authz: Some(options.ext_authz.clone()),
        ext_authz_tls: None,
        backend_verifies: options.approval_key.is_some(),
        park_window: options.park_window,
    };
    Ok((rig, target))
}
