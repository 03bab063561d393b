//! The command line of `cargo xtask`.

use clap::{Args, Parser, Subcommand};

/// Run and check the hitl-lab: two-tier human-in-the-loop gating of an agent's tool calls.
///
/// Start with `cargo xtask conformance` (bring the local lab up, replay every scene, report)
/// or `cargo xtask test` (build the services and run the test suite).
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the services, then run every test (what `.ci/run` runs).
    Test(TestArgs),
    /// Bring the lab up: kind by default, `--local` for the Docker-free lab.
    Up,
    /// Stop what `up` started.
    Down,
    /// Show what is running.
    Status,
    /// Replay the scripted scenes against the running lab and report.
    Conformance,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Test(_) => "test",
            Command::Up => "up",
            Command::Down => "down",
            Command::Status => "status",
            Command::Conformance => "conformance",
        }
    }
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Extra arguments passed to `cargo test` (after `--` for the test binaries' own flags).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cargo_args: Vec<String>,
}
