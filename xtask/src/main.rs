//! `cargo xtask`: the lab's one entry point. Thin by design — it parses the command line and
//! calls into `hitl-harness`, where the topology, scenes and assertions live.

mod flags;
mod test;

use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    let flags = flags::Xtask::parse();
    match flags.command {
        flags::Command::Test(args) => test::run(args),
        other => anyhow::bail!(
            "`cargo xtask {}` is not implemented yet; see the open issues and README.md",
            other.name()
        ),
    }
}
