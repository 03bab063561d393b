//! `cargo xtask`: the lab's one entry point. Thin by design — it parses the command line and
//! calls into `hitl-harness`, where the topology, scenes and assertions live.

mod flags;
mod test;

use clap::Parser as _;

use flags::Command;

fn main() -> anyhow::Result<()> {
    let flags = flags::Xtask::parse();
    match flags.command {
        Command::Test(args) => test::run(args),
        other => anyhow::bail!(
            "`cargo xtask {}` is not implemented yet; see README.md for what works today",
            other.name()
        ),
    }
}
