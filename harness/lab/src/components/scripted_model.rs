//! scripted-model: how to run the deterministic model, and how to load a script into it.

use std::path::Path;

use hitl_wire::{
    env::model as env,
    model::{Script, SeenRequest},
};

use crate::{bins, proc::Spec};

/// Binary (and log file) name.
pub const NAME: &str = "scripted-model";

/// The process spec: our binary on 127.0.0.1:`port`, healthy once `/healthz` answers.
pub fn spec(port: u16, log_dir: &Path) -> anyhow::Result<Spec> {
    Ok(Spec::new(NAME, bins::path(NAME)?, log_dir)
        .env(env::PORT, port.to_string())
        .env(env::BIND_ADDR, "127.0.0.1")
        .env("RUST_LOG", "info")
        .health(format!(
            "http://127.0.0.1:{port}{}",
            hitl_wire::health::HEALTHZ
        )))
}

/// Client for a running scripted model's control endpoints.
#[derive(Debug, Clone)]
pub struct Control {
    http: reqwest::Client,
    base: String,
}

impl Control {
    /// `base` is e.g. `http://127.0.0.1:18070`.
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.into().trim_end_matches('/').to_owned(),
        }
    }

    /// Load `script` (the request log starts afresh).
    pub async fn load(&self, script: &Script) -> anyhow::Result<()> {
        let resp = self
            .http
            .put(format!("{}/script", self.base))
            .json(script)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "scripted-model refused the script: {}",
            resp.text().await.unwrap_or_default()
        );
        Ok(())
    }

    /// What reached the model since the script was loaded.
    pub async fn requests(&self) -> anyhow::Result<Vec<SeenRequest>> {
        Ok(self
            .http
            .get(format!("{}/requests", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}
