//! `ci-gate hitl-extauth|fail-open DIR`: a gate for `.github/workflows/gate-check.yml` to
//! point the gate-check Action at: our hitl-extauth (the built binary, with the lab's approval
//! policy, an approval key and a requester issuer), which must pass, or the deliberately
//! fail-open test gate (`tests/support/fail_open_gate.rs`), which must fail. Writes the
//! Action's inputs to `DIR/action.env` (`KEY=value` lines, for `$GITHUB_ENV`) once the gate
//! answers, then runs until interrupted. Never a gate to deploy.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, bail};
use hitl_lab_tests::{extauth::ExtAuth, fail_open_gate::FailOpenGate};
use hitl_wire::approval::Signer;

const USAGE: &str = "usage: ci-gate hitl-extauth|fail-open DIR";
/// Long enough for a decision to land, short enough for the expiry check to be quick.
const PARK: Duration = Duration::from_secs(8);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let which = args.next().context(USAGE)?;
    let dir = std::path::absolute(PathBuf::from(args.next().context(USAGE)?))?;
    std::fs::create_dir_all(&dir)?;
    let mut env = String::new();
    // Keep whichever gate runs alive until interrupted.
    let _gate: Box<dyn std::any::Any> = match which.as_str() {
        "hitl-extauth" => Box::new(hitl_extauth(&dir, &mut env).await?),
        "fail-open" => Box::new(fail_open(&dir, &mut env).await?),
        _ => bail!(USAGE),
    };
    writeln!(env, "PARK_TIMEOUT={}", PARK.as_secs())?;
    std::fs::write(dir.join("action.env"), env)?;
    println!("{which} ready: {}", dir.join("action.env").display());
    tokio::signal::ctrl_c().await?;
    Ok(())
}

async fn hitl_extauth(dir: &Path, env: &mut String) -> anyhow::Result<ExtAuth> {
    let signer = Signer::generate()?;
    let keys = signer.write_key_files(&dir.join("public"))?;
    let policy = dir.join("approval-policy.toml");
    let lab = hitl_manifests::LabManifests::load()?;
    std::fs::write(&policy, lab.approval_policy().context("the lab's policy")?)?;
    let gate = ExtAuth::start_keyed(dir, &signer, |mut o| {
        o.approval_policy = Some(policy.clone());
        o.park_timeout(PARK)
    })
    .await?;
    let requester = gate.requester_dir().join(hitl_lab::requester::KEY_FILE);
    let ext_authz = gate.options.grpc_endpoint();
    writeln!(env, "EXT_AUTHZ={}:{}", ext_authz.host, ext_authz.port)?;
    writeln!(env, "ADMIN={}", gate.options.admin_url())?;
    writeln!(
        env,
        "ADMIN_TOKEN={}",
        gate.options.admin_token.clone().unwrap_or_default()
    )?;
    writeln!(env, "APPROVAL_KEY={}", keys.verifying.display())?;
    writeln!(env, "REQUESTER_KEY={}", requester.display())?;
    Ok(gate)
}

async fn fail_open(dir: &Path, env: &mut String) -> anyhow::Result<FailOpenGate> {
    let gate = FailOpenGate::start(dir, PARK).await?;
    writeln!(
        env,
        "EXT_AUTHZ={}:{}",
        gate.endpoint.host, gate.endpoint.port
    )?;
    writeln!(env, "DECIDE_CMD={}", gate.decide_cmd())?;
    Ok(gate)
}
