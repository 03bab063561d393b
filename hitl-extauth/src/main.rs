//! `hitl-extauth` binary entry point: parse configuration, set up logging, run the gate.

use clap::Parser as _;

// One thread runs everything async: a Check is a few microseconds of work, and on a
// multi-threaded runtime each one also paid for waking (and re-parking) another worker that
// found nothing to steal. The audit writer keeps its own thread, so a commit never stalls it.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    hitl_serve::logs::init("info")?;
    let config = hitl_extauth::config::Config::parse().read_secret_files()?;
    if config.print_verifying_key {
        println!("{}", hitl_extauth::verifying_key_hex(&config)?);
        return Ok(());
    }
    hitl_extauth::run(config).await
}
