//! Shared fixtures for the integration tests: start the real binaries on free loopback ports.

pub mod extauth;
pub mod gate;
pub mod lab;
pub mod manifests;
pub mod mock_db;
pub mod ui;

use std::path::PathBuf;

/// Per-test scratch directory under `target/` (logs, databases), wiped at the start.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = hitl_harness::bins::target_dir()
        .join("test-scratch")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}
