//! `cargo xtask up | down | status | port-forward` for the kind lab: flag mapping only; the
//! work is in `hitl_kind`.

use hitl_kind::{self as kind, UpOptions};
use hitl_lab::lab::Target;

use crate::flags::UpArgs;

pub async fn up(args: &UpArgs) -> anyhow::Result<()> {
    kind::up(UpOptions {
        model: args.model.into(),
        dry_run: args.dry_run,
    })
    .await?;
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
        Some(Target::Kind) => kind::status().await,
        _ => Ok(()),
    }
}

pub async fn port_forward() -> anyhow::Result<()> {
    kind::port_forward().await
}
