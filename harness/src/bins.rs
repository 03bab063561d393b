//! Locating the lab's own binaries (`mock-db-mcp`, `hitl-extauth`, …) built by cargo.

use std::path::{Path, PathBuf};

/// Env var that points at the directory holding our built binaries. `cargo xtask test` sets it.
pub const BIN_DIR_ENV: &str = "HITL_LAB_BIN_DIR";

/// Root of the workspace (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness lives one level below the workspace root")
        .to_path_buf()
}

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
pub fn path(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        anyhow::bail!(
            "binary `{name}` not found at {}: build the services first with \
             `cargo build --workspace --bins` (or run the tests with `cargo xtask test`, \
             which does that for you), or set {BIN_DIR_ENV} to the directory that holds it",
            path.display()
        )
    }
}
