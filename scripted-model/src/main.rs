//! `scripted-model` binary entry point: parse configuration, start the server.

use std::net::SocketAddr;

use clap::Parser;
use hitl_wire::env::model as env;

/// A deterministic, OpenAI-compatible chat-completions server for the hitl-lab.
///
/// It answers from a script (the scene runner pushes one with `PUT /script` before each
/// scene) so that scenes replay exactly with no API key. Serves `POST /v1/chat/completions`
/// (streaming and not), `GET|PUT /script`, `GET|DELETE /requests` (what reached the model)
/// and the probes `GET /healthz`, `/livez`, `/readyz`.
#[derive(Debug, Parser)]
#[command(version)]
struct Config {
    /// Port to listen on.
    #[arg(long, env = env::PORT, default_value_t = env::DEFAULT_PORT)]
    port: u16,
    /// Address to bind (all interfaces by default, as in a container).
    #[arg(long, env = env::BIND_ADDR, default_value = env::DEFAULT_BIND_ADDR)]
    bind_addr: std::net::IpAddr,
    /// A script (JSON, the shape of `PUT /script`) to load at start-up.
    #[arg(long, env = env::SCRIPT_FILE)]
    script: Option<std::path::PathBuf>,
    #[command(flatten)]
    http: hitl_serve::Limits,
}

/// Chat-completion requests carry the whole conversation: a larger body limit than the
/// other services' 64 KiB.
const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hitl_serve::logs::init("info")?;
    let config = Config::parse();
    let script = match &config.script {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading script {}: {e}", path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("parsing script {}: {e}", path.display()))?
        }
        None => Default::default(),
    };
    let addr = SocketAddr::new(config.bind_addr, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding {addr}: {e} (is the port taken? set PORT)"))?;
    tracing::info!(%addr, "scripted-model listening");
    hitl_serve::serve(
        listener,
        scripted_model::router(script),
        &config.http,
        DEFAULT_MAX_BODY_BYTES,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await?;
    Ok(())
}
