//! `cargo xtask bench`: build mock-db-mcp, hitl-extauth and xtask itself in release mode,
//! then run the release xtask's `bench` — `hitl_harness::bench` — against the release
//! services, and print its table (the JSON lands in target/bench/).
//!
//! Both sides are release builds on purpose: a debug-built client adds about 0.3 ms to
//! every request and cuts mock-db-mcp's measured throughput by two thirds on this kind of
//! machine. The harness finds the services through `HITL_LAB_BIN_DIR`, which the release
//! xtask gets in its environment (setting it in this process would need `unsafe`). With
//! `HITL_LAB_BIN_DIR` already set, this process measures the binaries there, unbuilt.

use anyhow::Context as _;
use hitl_harness::bins::{self, BIN_DIR_ENV};
use tokio::process::Command;
use xshell::{Shell, cmd};

use crate::flags::{BenchArgs, GatewayChoice};

/// The agentgateway to measure beside Envoy: the one at hand by default (none: say so),
/// fetched if `--gateway agentgateway` insists, none with `--gateway envoy`.
fn agentgateway_binary(args: &BenchArgs) -> anyhow::Result<Option<std::path::PathBuf>> {
    use hitl_harness::components::agentgateway;
    match args.gateway {
        Some(GatewayChoice::Envoy) => Ok(None),
        Some(GatewayChoice::Agentgateway) => agentgateway::ensure_binary().map(Some),
        None => match agentgateway::local_binary() {
            Ok(bin) => Ok(Some(bin)),
            Err(e) => {
                eprintln!("note: measuring Envoy only: {e:#}");
                Ok(None)
            }
        },
    }
}

/// Run the bench; `Ok(false)` if the release xtask's bench failed.
pub async fn run(args: &BenchArgs) -> anyhow::Result<bool> {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        eprintln!(
            "==> measuring the binaries in {} ({BIN_DIR_ENV}; not rebuilt)",
            std::path::Path::new(&dir).display()
        );
        if cfg!(debug_assertions) {
            eprintln!(
                "    note: this xtask is a debug build; its client adds latency and load \
                 (`cargo xtask bench` without {BIN_DIR_ENV} measures with a release build)"
            );
        }
        let agentgateway = agentgateway_binary(args)?;
        let (report, path) = hitl_harness::bench::run(args.quick, agentgateway).await?;
        println!("{}", report.render());
        println!("report: {}", path.display());
        return Ok(true);
    }

    let sh = Shell::new()?;
    sh.change_dir(bins::workspace_root());
    eprintln!(
        "==> building mock-db-mcp, hitl-extauth and the bench client (xtask) in release mode"
    );
    cmd!(
        sh,
        "cargo build --release -p mock-db-mcp -p hitl-extauth -p xtask --bins"
    )
    .run()?;
    let release = bins::target_dir().join("release");
    let mut bench = Command::new(release.join("xtask"));
    bench.arg("bench").env(BIN_DIR_ENV, &release);
    if args.quick {
        bench.arg("--quick");
    }
    if let Some(gateway) = args.gateway {
        bench.arg("--gateway").arg(match gateway {
            GatewayChoice::Agentgateway => "agentgateway",
            GatewayChoice::Envoy => "envoy",
        });
    }
    let status = bench
        .status()
        .await
        .context("running the release build of xtask")?;
    Ok(status.success())
}
