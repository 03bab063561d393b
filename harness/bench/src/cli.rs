//! What the release bench client is asked (`--quick`, `--gateway`, `--step`) and which agentgateway
//! binary that means. Shared by the `hitl-bench` binary and by xtask, which runs the bench
//! in process when `HITL_LAB_BIN_DIR` names the binaries to measure.

use std::path::PathBuf;

use hitl_lab::components::agentgateway;

/// The one gateway to measure, when not both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// agentgateway (fetched if no binary is at hand).
    Agentgateway,
    /// Envoy alone.
    Envoy,
}

impl Only {
    /// As on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Only::Agentgateway => "agentgateway",
            Only::Envoy => "envoy",
        }
    }
}

/// One step to run alone, instead of all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Step {
    /// Step 6: two gate replicas on one PostgreSQL (no gateway, no Envoy stack).
    Replicas,
}

impl Step {
    /// As on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Replicas => "replicas",
        }
    }
}

/// The agentgateway to measure beside Envoy: the one at hand by default (none: say so),
/// fetched if `--gateway agentgateway` insists, none with `--gateway envoy`.
pub fn agentgateway_binary(only: Option<Only>) -> anyhow::Result<Option<PathBuf>> {
    match only {
        Some(Only::Envoy) => Ok(None),
        Some(Only::Agentgateway) => agentgateway::ensure_binary().map(Some),
        None => match agentgateway::local_binary() {
            Ok(bin) => Ok(Some(bin)),
            Err(e) => {
                eprintln!("note: measuring Envoy only: {e:#}");
                Ok(None)
            }
        },
    }
}
