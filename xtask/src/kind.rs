//! `cargo xtask up | down | status | port-forward` for the kind lab: flag mapping only; the
//! work is in `hitl_kind`.

use hitl_kind::{self as kind, UpOptions};
use hitl_lab::lab::Target;

use crate::flags::UpArgs;

pub async fn up(args: &UpArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.replicas.is_none(),
        "--replicas is the local lab's: on kind the manifests say (two hitl-extauth replicas \
         with --store postgres, the default; one with --store sqlite)"
    );
    match kind::up(UpOptions {
        model: args.model.into(),
        store: args
            .store
            .map_or(hitl_manifests::StoreChoice::Postgres, Into::into),
        images: hitl_manifests::images::Images::from_flags(
            args.build,
            args.image_prefix.as_deref(),
        )?,
        dry_run: args.dry_run,
    })
    .await?
    {
        kind::Up::DryRun(plan) => print!("{plan}"),
        kind::Up::Done(report) => print!("{}", report.urls.unwrap_or_default()),
    }
    Ok(())
}

/// `down`, once the lab state has been read: delete the cluster when it says kind.
pub async fn down_if_kind(target: Option<Target>) -> anyhow::Result<()> {
    match target {
        Some(Target::Kind) => kind::down().await,
        _ => Ok(()),
    }
}

/// `status`, once the lab state has been read: show the cluster when it says kind.
pub async fn status_if_kind(target: Option<Target>) -> anyhow::Result<()> {
    match target {
        Some(Target::Kind) => {
            print!("{}", kind::status().await?);
            Ok(())
        }
        _ => Ok(()),
    }
}

pub async fn port_forward() -> anyhow::Result<()> {
    kind::port_forward().await
}
