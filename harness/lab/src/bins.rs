//! Locating the checkout and the lab's own binaries (`mock-db-mcp`, `hitl-extauth`, …) built
//! by cargo, and refusing binaries that are older than their sources.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

pub use hitl_manifests::checkout::{find_root, workspace_root};

/// Env var that points at the directory holding our built binaries. `cargo xtask test` sets it.
pub const BIN_DIR_ENV: &str = "HITL_LAB_BIN_DIR";

/// Crates (directories under the workspace root) whose sources every service binary is built
/// from, besides its own crate.
const SHARED_SOURCES: &[&str] = &["wire", "serve"];

/// Crates a particular binary is built from besides its own and [`SHARED_SOURCES`]: lab-chat
/// uses hitl-scenes' A2A client and hitl-lab's requester issuer, and hitl-ui's sign-in.
const EXTRA_SOURCES: &[(&str, &[&str])] = &[(
    "lab-chat",
    &[
        "harness/manifests",
        "harness/lab",
        "harness/scenes",
        "hitl-ui",
    ],
)];

/// The cargo target directory (`CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Directory our binaries are in: `$HITL_LAB_BIN_DIR`, else `<target>/debug`.
pub fn bin_dir() -> PathBuf {
    std::env::var_os(BIN_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug"))
}

/// Path of one of our binaries, or an error that says how to build it.
///
/// A binary under this checkout's target directory must be newer than every source it is
/// built from: a test of an old build after an edit would test the wrong code without a word.
/// Binaries in a directory elsewhere (`HITL_LAB_BIN_DIR` pointing outside `target/`) are
/// taken as they are.
pub fn path(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir().join(name);
    if !path.is_file() {
        anyhow::bail!(
            "binary `{name}` not found at {}: run the tests with `cargo xtask test`, which \
             builds the services first (or `cargo build --workspace --bins`), or set \
             {BIN_DIR_ENV} to the directory that holds it",
            path.display()
        )
    }
    if path.starts_with(target_dir()) {
        check_fresh(name, &path)?;
    }
    Ok(path)
}

/// Fail if a source of the crate `name` (or a crate every service uses) is newer than `bin`.
fn check_fresh(name: &str, bin: &Path) -> anyhow::Result<()> {
    let built = modified(bin).unwrap_or(SystemTime::UNIX_EPOCH);
    let root = workspace_root();
    let crate_dir = root.join(name);
    if !crate_dir.join("Cargo.toml").is_file() {
        return Ok(()); // not one of ours by directory name; nothing to compare
    }
    // Not Cargo.lock: a lock change that matters to this binary makes cargo rebuild it, and
    // one that does not (a merge, another crate's new dependency) leaves it as it is, which
    // would otherwise be refused for ever, whatever the user builds.
    let mut sources = Vec::new();
    let extra = EXTRA_SOURCES
        .iter()
        .filter(|(bin, _)| *bin == name)
        .flat_map(|(_, dirs)| dirs.iter());
    let dirs =
        std::iter::once(crate_dir).chain(SHARED_SOURCES.iter().chain(extra).map(|d| root.join(d)));
    for dir in dirs {
        sources.push(dir.join("Cargo.toml"));
        sources.push(dir.join("build.rs"));
        for sub in ["src", "assets"] {
            collect_files(&dir.join(sub), &mut sources);
        }
    }
    let newest = sources
        .into_iter()
        .filter_map(|p| modified(&p).map(|t| (t, p)))
        .max_by_key(|(t, _)| *t);
    match newest {
        Some((changed, source)) if changed > built => anyhow::bail!(
            "binary `{name}` at {} is older than its source {}: run `cargo xtask test` \
             (it rebuilds the services before testing), or `cargo build --workspace --bins` \
             first",
            bin.display(),
            source.strip_prefix(&root).unwrap_or(&source).display()
        ),
        _ => Ok(()),
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}
