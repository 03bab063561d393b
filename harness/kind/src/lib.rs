//! The kind lab: `cargo xtask up` (kind), `down`, `status` and `port-forward`, and the dry
//! run. `up` is a [`Plan`] built from `manifests/` and the pinned [`versions`]; the dry run
//! prints it and the real run executes it step by step, with progress on every wait.

mod apply;
mod cmd;
mod expose;
mod gate_restart;
pub mod metallb;
mod plan;
mod preflight;
mod pull;
mod run;
mod status;
mod urls;
use hitl_lab::versions;
mod wait;

pub use apply::FIELD_MANAGER;
pub use cmd::Cmd;
pub use expose::{ClientForward, Role as ForwardRole};
pub use gate_restart::restart_gate;
pub use plan::{Phase, Plan, Step, cluster_name, context};
pub use run::UpReport;
pub use status::{FORWARDS, Forward};

use hitl_manifests::{LabManifests, ModelChoice, StoreChoice, images::Images};

/// What `cargo xtask up` (kind) was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpOptions {
    pub model: ModelChoice,
    /// Where the gate keeps its store (PostgreSQL with two replicas, or SQLite with one).
    pub store: StoreChoice,
    /// The published images of this version (default), or build them here (`--build`).
    pub images: Images,
    /// Print every step and change nothing (no cluster, no tools needed).
    pub dry_run: bool,
}

/// The plan `up` would run, from the workspace's `manifests/`.
pub fn plan(model: ModelChoice, store: StoreChoice, images: &Images) -> anyhow::Result<Plan> {
    let lab = LabManifests::load()?;
    Plan::up(&lab, model, store, images)
}

/// What `up` did.
#[derive(Debug)]
pub enum Up {
    /// `dry_run`: the plan it would run, rendered; nothing changed.
    DryRun(String),
    /// The lab is up.
    Done(Box<UpReport>),
}

/// `cargo xtask up` on kind; with `dry_run`, only the plan.
pub async fn up(options: UpOptions) -> anyhow::Result<Up> {
    let plan = plan(options.model, options.store, &options.images)?;
    if options.dry_run {
        return Ok(Up::DryRun(plan.render()));
    }
    run::execute(&plan)
        .await
        .map(|report| Up::Done(Box::new(report)))
}

/// `cargo xtask down` on kind: delete the cluster.
pub async fn down() -> anyhow::Result<()> {
    status::down(&LabManifests::load()?).await
}

/// `cargo xtask status` on kind: the text to show.
pub async fn status() -> anyhow::Result<String> {
    status::status(&LabManifests::load()?).await
}

/// `cargo xtask port-forward`: the UIs on localhost until Ctrl-C.
pub async fn port_forward() -> anyhow::Result<()> {
    status::port_forward(&LabManifests::load()?).await
}

/// Whether the lab's kind cluster exists (false, not an error, when kind is not installed).
pub async fn cluster_exists() -> anyhow::Result<bool> {
    let cluster = plan::cluster_name(&LabManifests::load()?)?;
    Ok(status::cluster_exists(&cluster).await.unwrap_or(false))
}
