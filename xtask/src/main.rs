//! `cargo xtask`: the lab's one entry point. Thin by design — it parses the command line and
//! calls into the harness crates (`harness/`: hitl-lab, hitl-kind, hitl-scenes, hitl-bench,
//! hitl-manifests), where the topology, scenes and assertions live.

mod bench;
mod chat;
mod chat_parks;
mod flags;
mod kind;
mod lab;
mod scenes;
mod test;

use std::process::ExitCode;

use clap::Parser as _;

use flags::Command;

#[tokio::main]
async fn main() -> ExitCode {
    let flags = flags::Xtask::parse();
    let command = flags.command.name();
    match run(flags).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            // The whole chain, without a backtrace: each layer says what it was doing.
            eprintln!("error: cargo xtask {command}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Run one command; `Ok(false)` when it ran but something failed (a scene, say).
async fn run(flags: flags::Xtask) -> anyhow::Result<bool> {
    let ok = match flags.command {
        Command::Test(args) => test::run(args).map(|()| true)?,
        Command::Up(args) if args.local => lab::up_local(&args).await.map(|()| true)?,
        Command::Up(args) => kind::up(&args).await.map(|()| true)?,
        Command::Down => kind::down_if_kind(lab::down()?).await.map(|()| true)?,
        Command::Status => kind::status_if_kind(lab::status().await?)
            .await
            .map(|()| true)?,
        Command::Logs(args) => lab::logs(&args).map(|()| true)?,
        Command::Chat(args) => chat::run(&args).await.map(|()| true)?,
        Command::Scene(args) => scenes::scene(&args).await?,
        Command::Conformance(args) => scenes::conformance(&args).await?,
        Command::GateCheck(args) => scenes::gate_check(&args).await?,
        Command::PortForward => kind::port_forward().await.map(|()| true)?,
        Command::Bench(args) => bench::run(&args).await?,
    };
    Ok(ok)
}
