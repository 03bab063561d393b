//! `cargo xtask test`: build our binaries first (integration tests start the real ones),
//! then run the workspace's tests with `HITL_LAB_BIN_DIR` pointing at them.

use xshell::{Shell, cmd};

use crate::flags::TestArgs;

pub fn run(args: TestArgs) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(hitl_harness::bins::workspace_root());
    eprintln!("==> building the lab's binaries");
    cmd!(sh, "cargo build --workspace --bins --exclude xtask").run()?;
    let bin_dir = hitl_harness::bins::target_dir().join("debug");
    let extra = &args.cargo_args;
    eprintln!("==> running the tests");
    cmd!(sh, "cargo test --workspace --exclude xtask {extra...}")
        .env(hitl_harness::bins::BIN_DIR_ENV, bin_dir)
        .run()?;
    Ok(())
}
