//! `cargo xtask test`: make sure the machine has what the tests drive (Chromium, ChromeDriver,
//! Python's venv; installed from Debian as root, else a one-line instruction before anything is
//! built), build our binaries (integration tests start the real ones), make sure the pinned
//! Python venvs (kagent-adk, Envoy; Helm's library for the chart) exist, then run the workspace's tests with
//! `HITL_LAB_BIN_DIR` pointing at the binaries.

use xshell::{Shell, cmd};

use crate::flags::TestArgs;

pub fn run(args: TestArgs) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(hitl_lab::bins::workspace_root());
    hitl_lab::prereqs::ensure(hitl_lab::prereqs::FOR_TESTS)?;
    crate::lab::build_binaries()?;
    // Installed here, with progress, rather than silently inside the first test that needs it.
    hitl_lab::pyenv::ensure()?;
    hitl_lab::pyenv::ensure_helm()?;
    let bin_dir = hitl_lab::bins::target_dir().join("debug");
    let extra = &args.cargo_args;
    let not_run = hitl_lab::components::agentgateway::not_run_log();
    let _ = std::fs::remove_file(&not_run);
    eprintln!("==> running the tests");
    // Every test binary runs even after one fails: a CI log shows every failure at once.
    let result = cmd!(
        sh,
        "cargo test --workspace --exclude xtask --no-fail-fast {extra...}"
    )
    .env(hitl_lab::bins::BIN_DIR_ENV, bin_dir)
    .run();
    // Tests that could not run through agentgateway say so; never let that pass silently.
    if let Ok(text) = std::fs::read_to_string(&not_run) {
        let lines: Vec<&str> = text.lines().collect();
        eprintln!(
            "\n==> {} agentgateway test variant(s) were NOT RUN (no agentgateway binary: set {}):",
            lines.len(),
            hitl_lab::components::agentgateway::BIN_ENV
        );
        for line in lines {
            eprintln!("    {line}");
        }
    }
    result?;
    Ok(())
}
