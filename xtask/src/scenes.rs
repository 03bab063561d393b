//! `scene N|all` and `conformance`: replay scenes and report; the work is in the harness.

use hitl_harness::{
    agents::AgentSelection,
    conformance,
    lab::{self, LabState},
    manifests::ModelChoice,
    scene,
};

use crate::flags::{ConformanceArgs, SceneArgs};

pub async fn scene(args: &SceneArgs) -> anyhow::Result<bool> {
    let mut lab = LabState::require(&lab::default_dir())?;
    if let Some(gateway) = args.gateway.map(hitl_harness::gateway::Gateway::from)
        && lab.target == lab::Target::Local
        && lab.gateway != Some(gateway)
    {
        // `up` restarts the local lab with the gateway asked for.
        let model = scene_model(&lab.model);
        crate::lab::build_binaries()?;
        let mut config = hitl_harness::local::LocalConfig::from_env(model, gateway)?;
        config.agents = lab.agents.clone();
        lab = hitl_harness::local::up(&config).await?;
    }
    let scenes = scene::load_dir(&scene::parse::default_dir())?;
    let selected = scene::select(&scenes, &args.scene)?;
    let model = scene_model(&lab.model);
    let agents = AgentSelection::from(args.agent).agents();
    let report = conformance::replay(&lab, &selected, model, &agents).await?;
    print!("{}", report.summary());
    Ok(report.failed() == 0)
}

fn scene_model(model: &str) -> ModelChoice {
    match model {
        "anthropic" => ModelChoice::Anthropic,
        "openai" => ModelChoice::Openai,
        _ => ModelChoice::Scripted,
    }
}

pub async fn conformance(args: &ConformanceArgs) -> anyhow::Result<bool> {
    if args.target == crate::flags::Target::Local {
        hitl_harness::prereqs::ensure(hitl_harness::prereqs::FOR_LOCAL_LAB)?;
        crate::lab::build_binaries()?;
    }
    let gateway = match args.target {
        crate::flags::Target::Local => crate::flags::gateway_or_default(args.gateway),
        crate::flags::Target::Kind => hitl_harness::gateway::Gateway::Agentgateway,
    };
    let mut options = conformance::Options::new(args.target.into(), args.model.into(), gateway)?;
    options.keep_up = args.keep_up;
    options.agents = AgentSelection::from(args.agent).agents();
    options.local.agents = options.agents.clone();
    let report = conformance::run(&options).await?;
    print!("{}", report.summary());
    Ok(report.failed() == 0)
}
