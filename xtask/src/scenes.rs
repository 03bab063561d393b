//! `scene N|all` and `conformance`: replay scenes and report; the work is in the harness.

use hitl_lab::{
    agents::AgentSelection,
    lab::{self, LabState},
};
use hitl_scenes::{conformance, scene};

use crate::flags::{ConformanceArgs, GateCheckArgs, SceneArgs};

pub async fn scene(args: &SceneArgs) -> anyhow::Result<bool> {
    let mut lab = LabState::require(&lab::default_dir())?;
    if let Some(gateway) = args.gateway.map(hitl_lab::gateway::Gateway::from)
        && lab.target == lab::Target::Local
        && lab.gateway != Some(gateway)
    {
        // `up` restarts the local lab with the gateway asked for.
        crate::lab::build_binaries()?;
        let mut config = hitl_lab::local::LocalConfig::from_env(lab.model, gateway)?;
        config.agents = lab.agents.clone();
        config.topology = lab.topology();
        config.chat_script = Some(scene::parse::chat_script()?);
        lab = hitl_lab::local::up(&config).await?;
    }
    let scenes = scene::load_dir(&scene::parse::default_dir())?;
    let selected = scene::select(&scenes, &args.scene)?;
    let agents = AgentSelection::from(args.agent).agents();
    let restart_gate =
        conformance::restart_gate(&lab, &lab::default_dir(), Some(kind_restart_gate()));
    let report = conformance::replay(
        &lab,
        &selected,
        lab.model,
        &agents,
        &printed(),
        restart_gate,
    )
    .await?;
    print!("{}", report.summary());
    Ok(report.failed() == 0)
}

/// How a kind lab (recorded in `target/lab`) kills and brings back its gate (scene 8).
fn kind_restart_gate() -> hitl_scenes::scene::reviewer::RestartGate {
    std::sync::Arc::new(|| {
        Box::pin(async {
            let dir = lab::default_dir();
            hitl_kind::restart_gate(&dir).await
        })
    })
}

/// Progress lines to the terminal as they happen.
fn printed() -> conformance::Progress {
    std::sync::Arc::new(|line| println!("{line}"))
}

pub async fn conformance(args: &ConformanceArgs) -> anyhow::Result<bool> {
    if args.target == crate::flags::Target::Local {
        let store = crate::flags::topology(args.store, args.replicas)?.store;
        hitl_lab::prereqs::ensure(hitl_lab::prereqs::for_local_lab(store))?;
        crate::lab::build_binaries()?;
    }
    let gateway = match args.target {
        crate::flags::Target::Local => crate::flags::gateway_or_default(args.gateway),
        crate::flags::Target::Kind => hitl_lab::gateway::Gateway::Agentgateway,
    };
    let mut options = conformance::Options::new(args.target.into(), args.model.into(), gateway)?;
    options.keep_up = args.keep_up;
    options.agents = AgentSelection::from(args.agent).agents();
    options.local.agents = options.agents.clone();
    match args.target {
        crate::flags::Target::Local => {
            options.local.topology = crate::flags::topology(args.store, args.replicas)?;
            // Its own reports: CI runs both, and the first run's must not be overwritten.
            let topology = options.local.topology;
            if topology != hitl_lab::local::Topology::default() {
                options.out_dir = hitl_lab::bins::target_dir().join(format!(
                    "conformance-{}-{}",
                    topology.store, topology.replicas
                ));
            }
        }
        crate::flags::Target::Kind => anyhow::ensure!(
            args.store.is_none() && args.replicas.is_none(),
            "--store and --replicas pick the local lab's topology; the kind lab's is what \
             `cargo xtask up --store …` brought up"
        ),
    }
    options.progress = printed();
    options.kind_restart_gate = Some(kind_restart_gate());
    let report = conformance::run(&options).await?;
    print!("{}", report.summary());
    Ok(report.failed() == 0)
}

pub async fn gate_check(args: &GateCheckArgs) -> anyhow::Result<bool> {
    // In the gate-check image (Dockerfile, target gate-check) the binaries are prebuilt and
    // named by HITL_LAB_BIN_DIR, and there is no cargo: build only in a checkout.
    if std::env::var_os(hitl_lab::bins::BIN_DIR_ENV).is_none() {
        crate::lab::build_binaries()?;
    }
    let (host, port) = args
        .ext_authz
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("--ext-authz wants HOST:PORT, not {:?}", args.ext_authz))?;
    let endpoint = hitl_lab::envoy::Endpoint::new(host, port.parse()?);
    let gateway = crate::flags::gateway_or_default(args.gateway);
    let mut options = hitl_scenes::gate_check::Options::new(endpoint, gateway);
    options.admin = args.admin.clone();
    options.admin_token = match &args.admin_token_file {
        Some(file) => Some(std::fs::read_to_string(file)?.trim().to_owned()),
        None => std::env::var(hitl_wire::env::ui::EXTAUTH_ADMIN_TOKEN).ok(),
    };
    options.decide_cmd = args.decide_cmd.clone();
    options.approval_key = args.approval_key.clone();
    options.requester_key = args.requester_key.clone();
    options.park_timeout = args.park_timeout.map(std::time::Duration::from_secs);
    let attacks = hitl_scenes::attacks::load_dir(&hitl_scenes::attacks::catalogue::default_dir())?;
    let report =
        hitl_scenes::gate_check::run(&options, &attacks, &|line| println!("{line}")).await?;
    for path in report.write(&options.dir)? {
        eprintln!("report: {}", path.display());
    }
    print!("{}", report.summary());
    Ok(report.failed() == 0)
}
