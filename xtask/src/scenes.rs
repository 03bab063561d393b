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
    let lab = LabState::require(&lab::default_dir())?;
    let scenes = scene::load_dir(&scene::parse::default_dir())?;
    let selected = scene::select(&scenes, &args.scene)?;
    let model = match lab.model.as_str() {
        "anthropic" => ModelChoice::Anthropic,
        "openai" => ModelChoice::Openai,
        _ => ModelChoice::Scripted,
    };
    let agents = AgentSelection::from(args.agent).agents();
    let report = conformance::replay(&lab, &selected, model, &agents).await?;
    print!("{}", report.summary());
    Ok(report.failed() == 0)
}

pub async fn conformance(args: &ConformanceArgs) -> anyhow::Result<bool> {
    if args.target == crate::flags::Target::Local {
        hitl_harness::prereqs::ensure(hitl_harness::prereqs::FOR_LOCAL_LAB)?;
        crate::lab::build_binaries()?;
    }
    let mut options = conformance::Options::new(args.target.into(), args.model.into())?;
    options.keep_up = args.keep_up;
    options.agents = AgentSelection::from(args.agent).agents();
    options.local.agents = options.agents.clone();
    let report = conformance::run(&options).await?;
    print!("{}", report.summary());
    Ok(report.failed() == 0)
}
