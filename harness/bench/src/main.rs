//! `hitl-bench`: the release bench client. `cargo xtask bench` builds it in release mode
//! beside mock-db-mcp and hitl-extauth and runs it with `HITL_LAB_BIN_DIR` pointing at them;
//! it prints the table and where the JSON report went (`target/bench/`).

use std::process::ExitCode;

use clap::Parser;
use hitl_bench::cli::{Only, Step, agentgateway_binary};

/// Measure the gates (overhead, release, capacity, throughput) on loopback.
#[derive(Debug, Parser)]
#[command(name = "hitl-bench")]
struct Cli {
    /// Smaller sizes (1 000 parked calls instead of 10 000): under 3 minutes.
    #[arg(long)]
    quick: bool,
    /// Measure only this gateway (by default: both, agentgateway if a binary is at hand).
    #[arg(long, value_enum)]
    gateway: Option<Only>,
    /// Run only this step (`replicas`: step 6, two gate replicas on one PostgreSQL); its
    /// table is printed and its JSON written to target/bench/replicas-<unix-time>.json.
    #[arg(long, value_enum)]
    step: Option<Step>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.step == Some(Step::Replicas) {
        return match hitl_bench::run_replicas(cli.quick).await {
            Ok((table, path)) => {
                println!("{table}");
                println!("report: {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hitl-bench: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let result = async {
        let agentgateway = agentgateway_binary(cli.gateway)?;
        hitl_bench::run(cli.quick, agentgateway).await
    };
    match result.await {
        Ok((report, path)) => {
            println!("{}", report.render());
            println!("report: {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hitl-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
