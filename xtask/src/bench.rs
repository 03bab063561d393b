//! `cargo xtask bench`: build mock-db-mcp, hitl-extauth and the bench client (`hitl-bench`,
//! the `hitl-bench` crate's binary) in release mode, then run the client against the release
//! services and print its table (the JSON lands in target/bench/).
//!
//! Both sides are release builds on purpose: a debug-built client adds about 0.3 ms to
//! every request and cuts mock-db-mcp's measured throughput by two thirds on this kind of
//! machine. The client finds the services through `HITL_LAB_BIN_DIR`, which it gets in its
//! environment (setting it in this process would need `unsafe`). With `HITL_LAB_BIN_DIR`
//! already set, this process measures the binaries there, unbuilt. The client's crate does
//! not depend on kube, so this release build compiles no Kubernetes client.

use anyhow::Context as _;
use hitl_bench::cli::{self, Only};
use hitl_lab::bins::{self, BIN_DIR_ENV};
use tokio::process::Command;
use xshell::{Shell, cmd};

use crate::flags::{BenchArgs, GatewayChoice};

fn only(args: &BenchArgs) -> Option<Only> {
    args.gateway.map(|gateway| match gateway {
        GatewayChoice::Agentgateway => Only::Agentgateway,
        GatewayChoice::Envoy => Only::Envoy,
    })
}

/// Run the bench; `Ok(false)` if the release bench client failed.
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
        if args.step == Some(cli::Step::Replicas) {
            let (table, path) = hitl_bench::run_replicas(args.quick).await?;
            println!("{table}");
            println!("report: {}", path.display());
            return Ok(true);
        }
        let agentgateway = cli::agentgateway_binary(only(args))?;
        let (report, path) = hitl_bench::run(args.quick, agentgateway).await?;
        println!("{}", report.render());
        println!("report: {}", path.display());
        return Ok(true);
    }

    let sh = Shell::new()?;
    sh.change_dir(bins::workspace_root());
    eprintln!(
        "==> building mock-db-mcp, hitl-extauth and the bench client (hitl-bench) in release mode"
    );
    cmd!(
        sh,
        "cargo build --release -p mock-db-mcp -p hitl-extauth -p hitl-bench --bins"
    )
    .run()?;
    let release = bins::target_dir().join("release");
    let mut bench = Command::new(release.join("hitl-bench"));
    bench.env(BIN_DIR_ENV, &release);
    if args.quick {
        bench.arg("--quick");
    }
    if let Some(only) = only(args) {
        bench.arg("--gateway").arg(only.as_str());
    }
    if let Some(step) = args.step {
        bench.arg("--step").arg(step.as_str());
    }
    let status = bench
        .status()
        .await
        .context("running the release build of hitl-bench")?;
    Ok(status.success())
}
