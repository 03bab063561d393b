//! What the machine must have before the lab or its tests can run (Chromium and ChromeDriver
//! for the reviewer-UI tests, Python's `venv` for the pinned kagent/Envoy environment,
//! PostgreSQL for the store's second engine, npm for the lab's OpenID Provider), and
//! installing it from Debian when that is possible: as root with `apt-get`, printing the
//! command it runs. Otherwise one line that names the command to run.

use std::{path::PathBuf, process::Command};

use anyhow::Context as _;

/// One thing the machine needs, and the Debian package that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prereq {
    /// Headless Chromium (`/usr/bin/chromium`).
    Chromium,
    /// ChromeDriver, which drives it over WebDriver.
    ChromeDriver,
    /// Python's `venv` and `ensurepip` modules (the project venv is built with them).
    PythonVenv,
    /// PostgreSQL's server binaries (`initdb`, `postgres`): the store suite runs on them.
    Postgres,
    /// `npm` (and Node.js with it): installs the lab's OpenID Provider from its lockfile.
    Npm,
}

impl Prereq {
    /// The Debian package that provides it.
    pub fn package(self) -> &'static str {
        match self {
            Prereq::Chromium => "chromium",
            Prereq::ChromeDriver => "chromium-driver",
            Prereq::PythonVenv => "python3-venv",
            Prereq::Postgres => "postgresql",
            Prereq::Npm => "npm",
        }
    }

    /// Is it there?
    pub fn present(self) -> bool {
        match self {
            Prereq::Chromium => find_program("chromium").is_some(),
            Prereq::ChromeDriver => find_program("chromedriver").is_some(),
            Prereq::PythonVenv => python_has_venv(),
            Prereq::Postgres => crate::postgres::bin_dir().is_ok(),
            Prereq::Npm => find_program("npm").is_some(),
        }
    }
}

/// What `cargo xtask test` needs.
pub const FOR_TESTS: &[Prereq] = &[
    Prereq::Chromium,
    Prereq::ChromeDriver,
    Prereq::PythonVenv,
    Prereq::Postgres,
    Prereq::Npm,
];
/// What the local lab needs (`up --local`, `conformance`).
pub const FOR_LOCAL_LAB: &[Prereq] = &[Prereq::PythonVenv, Prereq::Npm];
/// What the local lab needs with its gate on PostgreSQL (`--store postgres`, `--replicas N`).
pub const FOR_LOCAL_LAB_ON_POSTGRES: &[Prereq] =
    &[Prereq::PythonVenv, Prereq::Postgres, Prereq::Npm];

/// What the local lab on `store` needs.
pub fn for_local_lab(store: hitl_manifests::StoreChoice) -> &'static [Prereq] {
    match store {
        hitl_manifests::StoreChoice::Sqlite => FOR_LOCAL_LAB,
        hitl_manifests::StoreChoice::Postgres => FOR_LOCAL_LAB_ON_POSTGRES,
    }
}

/// A program on `PATH`, or where Debian's Chromium packages put it.
pub fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/lib/chromium"),
        ])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn python_has_venv() -> bool {
    let python = std::env::var(crate::pyenv::PYTHON_ENV).unwrap_or_else(|_| "python3".to_owned());
    Command::new(python)
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Make sure every item of `needed` is present. Missing ones are installed with `apt-get` when
/// this runs as root on a machine that has it (the command is printed first); otherwise this
/// fails, before anything is built, with one line naming the command that installs them.
pub fn ensure(needed: &[Prereq]) -> anyhow::Result<()> {
    let missing: Vec<Prereq> = needed.iter().copied().filter(|p| !p.present()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|p| p.package()).collect();
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    );
    if !(is_root() && find_program("apt-get").is_some()) {
        anyhow::bail!(
            "missing {}: install with `sudo apt-get update && sudo {install}` (Debian/Ubuntu), \
             then run this again",
            packages.join(", ")
        );
    }
    eprintln!(
        "==> installing {} (apt-get update && {install})",
        packages.join(", ")
    );
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    let still: Vec<&str> = missing
        .iter()
        .filter(|p| !p.present())
        .map(|p| p.package())
        .collect();
    anyhow::ensure!(
        still.is_empty(),
        "installed {} but still missing: {}",
        packages.join(", "),
        still.join(", ")
    );
    Ok(())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    anyhow::ensure!(
        status.success(),
        "{:?} failed with {status}",
        cmd.get_program()
    );
    Ok(())
}
