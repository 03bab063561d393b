//! agentgateway, the kind lab's gateway, run locally in standalone mode: where its binary
//! comes from, its generated config, and how to run it.
//!
//! The binary is, in order: `$AGENTGATEWAY_BIN`; `agentgateway` on `PATH`; one downloaded
//! before into `target/agentgateway/<version>/`; else (for `up`, `conformance`, `bench`) the
//! release the kind lab pins ([`crate::versions::AGENTGATEWAY`]), downloaded with `curl`
//! into `target/` and checked against its published sha256.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use crate::versions;
use crate::{bins::target_dir, envoy::GatewayPlan, proc::Spec};

/// Log file (and config file) name.
pub const NAME: &str = "agentgateway";
/// Env var naming the agentgateway binary to run.
pub const BIN_ENV: &str = "AGENTGATEWAY_BIN";

/// The release asset for this machine, e.g. `agentgateway-linux-amd64`.
fn asset() -> anyhow::Result<String> {
    let os = match std::env::consts::OS {
        "linux" => "linux",
        "macos" => "darwin",
        other => anyhow::bail!("agentgateway publishes no release binary for {other}"),
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => anyhow::bail!("agentgateway publishes no release binary for {other}"),
    };
    Ok(format!("agentgateway-{os}-{arch}"))
}

/// Where a downloaded release lives.
pub fn download_path() -> PathBuf {
    target_dir()
        .join("agentgateway")
        .join(versions::AGENTGATEWAY)
        .join(NAME)
}

/// The release's download URL (the checksum is at the same URL plus `.sha256`).
pub fn release_url() -> anyhow::Result<String> {
    Ok(format!(
        "https://github.com/agentgateway/agentgateway/releases/download/{}/{}",
        versions::AGENTGATEWAY,
        asset()?
    ))
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A binary that needs no download: `$AGENTGATEWAY_BIN`, `PATH`, or an earlier download.
/// The error says all three ways to get one.
pub fn local_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(BIN_ENV) {
        let path = PathBuf::from(path);
        anyhow::ensure!(path.is_file(), "{BIN_ENV}={} is not a file", path.display());
        return Ok(path);
    }
    if let Some(path) = on_path(NAME) {
        return Ok(path);
    }
    let downloaded = download_path();
    if downloaded.is_file() {
        return Ok(downloaded);
    }
    anyhow::bail!(
        "no agentgateway binary: set {BIN_ENV} to one, put `agentgateway` on PATH, or let the \
         lab download release {} into {} (needs github.com)",
        versions::AGENTGATEWAY,
        downloaded.display()
    )
}

/// [`local_binary`], or else download the pinned release.
pub fn ensure_binary() -> anyhow::Result<PathBuf> {
    match local_binary() {
        Ok(path) => Ok(path),
        Err(missing) => download().map_err(|e| {
            anyhow::anyhow!(
                "{missing:#}\n(the download failed: {e:#}; or run with `--gateway envoy`)"
            )
        }),
    }
}

fn curl(url: &str, out: &Path) -> anyhow::Result<()> {
    let status = Command::new("curl")
        .args(["-fsSL", "--retry", "2", "-o"])
        .arg(out)
        .arg(url)
        .status()
        .context("running curl")?;
    anyhow::ensure!(status.success(), "curl {url} failed ({status})");
    Ok(())
}

/// Download the pinned release and its checksum; keep the binary only if they agree.
fn download() -> anyhow::Result<PathBuf> {
    let url = release_url()?;
    let dest = download_path();
    let dir = dest.parent().expect("has a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!("{NAME}.download"));
    let sum_file = dir.join(format!("{NAME}.sha256"));
    eprintln!(
        "==> downloading agentgateway {} from {url}",
        versions::AGENTGATEWAY
    );
    curl(&format!("{url}.sha256"), &sum_file)?;
    curl(&url, &tmp)?;
    let published = std::fs::read_to_string(&sum_file)?;
    let want = published
        .split_whitespace()
        .next()
        .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
        .with_context(|| format!("{url}.sha256 holds no sha256: {published:?}"))?
        .to_ascii_lowercase();
    let got = hex::encode(Sha256::digest(std::fs::read(&tmp)?));
    if got != want {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("{url}: sha256 {got} does not match the published {want}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::rename(&tmp, &dest)?;
    Ok(dest)
}

/// Where tests record an agentgateway variant they could not run (one line each);
/// `cargo xtask test` prints the count at the end.
pub fn not_run_log() -> PathBuf {
    target_dir()
        .join("test-scratch")
        .join("agentgateway-not-run.txt")
}

/// For tests: the binary if one is at hand without a download (`$AGENTGATEWAY_BIN`, `PATH`,
/// an earlier download). Without one, say loudly that `what` was not run, record it in
/// [`not_run_log`], and return `None`.
pub fn binary_for_test(what: &str) -> Option<PathBuf> {
    match local_binary() {
        Ok(bin) => Some(bin),
        Err(e) => {
            let line = format!("NOT RUN through agentgateway: {what} ({e:#})");
            eprintln!("{line}");
            let path = not_run_log();
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            use std::io::Write as _;
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                let _ = writeln!(file, "{what}");
            }
            None
        }
    }
}

/// Where the config of the agentgateway listening on `port` is written.
pub fn config_path(log_dir: &Path, port: u16) -> PathBuf {
    log_dir.join(format!("{NAME}-{port}.yaml"))
}

/// Write the rendered config of `plan` to `<log_dir>/agentgateway-<port>.yaml`.
pub fn write_config(plan: &GatewayPlan, log_dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let path = config_path(log_dir, plan.listen.port);
    std::fs::write(&path, crate::agentgateway::render(plan))
        .with_context(|| format!("writing the agentgateway config {}", path.display()))?;
    Ok(path)
}

/// `agentgateway -f CONFIG --validate-only`: `Ok` when the binary accepts the config.
pub fn validate(bin: &Path, config: &Path) -> anyhow::Result<()> {
    let out = Command::new(bin)
        .arg("-f")
        .arg(config)
        .arg("--validate-only")
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "agentgateway rejected {}: {}",
        config.display(),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or_default()
    );
    Ok(())
}

/// The process spec: `bin -f <config>`, healthy once its readiness probe answers.
pub fn spec(bin: &Path, plan: &GatewayPlan, log_dir: &Path) -> anyhow::Result<Spec> {
    let config = write_config(plan, log_dir)?;
    Ok(Spec::new(NAME, bin, log_dir)
        .arg("-f")
        .arg(config)
        .health(format!(
            "http://{}:{}/healthz/ready",
            plan.readiness.host, plan.readiness.port
        )))
}
