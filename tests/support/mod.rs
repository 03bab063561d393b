//! Shared fixtures for the integration tests: start the real binaries on free loopback ports.

pub mod chart;
pub mod check;
pub mod extauth;
pub mod fail_open_gate;
pub mod gate;
pub mod lab;
pub mod manifests;
pub mod mock_db;
pub mod ui;
pub mod wait;

use std::path::PathBuf;

use anyhow::Context as _;

/// What came back from an HTTP request: status, content type and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    /// Read a whole response.
    pub async fn read(resp: reqwest::Response) -> anyhow::Result<Self> {
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            status,
            content_type,
            body: resp.text().await?,
        })
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("not JSON ({}): {}", self.status, self.body))
    }
}

/// Per-test scratch directory under `target/` (logs, databases), wiped at the start.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = hitl_lab::bins::target_dir().join("test-scratch").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}
