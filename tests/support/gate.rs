//! The gated lab on loopback, as `hitl_lab::stack` starts it: real mock-db-mcp behind a real
//! gateway — agentgateway or Envoy, one `GatewayPlan` — whose `/privileged` route asks the
//! real hitl-extauth. Clients: an MCP client (rmcp) through the gateway, reqwest for
//! hand-made requests, and a raw TCP socket for what no HTTP client would do.
//!
//! [`through_both_gateways!`](crate::through_both_gateways) turns one test body into an
//! `envoy` and an `agentgateway` test; without an agentgateway binary the latter says loudly
//! that it did not run and records it (`cargo xtask test` prints the count).

use std::{collections::HashMap, path::PathBuf, time::Duration};

use anyhow::Context as _;
use hitl_lab::{
    components::{agentgateway, extauth::Options},
    gate_tls::GateTlsFiles,
    gateway::Gateway,
    requester::{Issuer, bearer},
    stack::{Front, Stack},
};
use http::{HeaderName, HeaderValue};
use rmcp::{
    ServiceExt as _,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::{
    extauth::{ExtAuth, PATIENCE},
    mock_db::{McpClient, MockDb},
};

/// Identity our clients send through the gateway: proven by a token from the gate's
/// [`Gate::issuer`], and claimed in `x-user-id`.
pub const USER: &str = "alice";
pub const AGENT: &str = "dba-assistant";

/// mock-db-mcp + hitl-extauth + a gateway, all killed on drop. The gateway's gated route
/// verifies requester tokens from [`Gate::issuer`] (as the lab's gateway does).
pub struct Gate {
    pub db: MockDb,
    pub extauth: ExtAuth,
    /// The gate's other replicas, with [`Gate::start_replicas`] (`extauth` is the first).
    pub replicas: Vec<ExtAuth>,
    /// The PostgreSQL server the replicas share, with [`Gate::start_replicas`].
    pub postgres: Option<hitl_lab::postgres::Server>,
    /// The gateway, the plan it runs, and its process.
    pub front: Front,
    pub issuer: Issuer,
    pub log_dir: PathBuf,
    /// The mTLS files between gateway and gate, when started with [`Gate::start_mtls`].
    pub gate_tls: Option<GateTlsFiles>,
    http: reqwest::Client,
}

/// Define `mod $name { fn envoy(); fn agentgateway() }`: the same test body through both
/// gateways. The body sees `$gateway: Gateway`.
#[macro_export]
macro_rules! through_both_gateways {
    ($(#[$meta:meta])* async fn $name:ident($gateway:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($gateway: hitl_lab::gateway::Gateway) -> anyhow::Result<()> $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn envoy() -> anyhow::Result<()> {
                run(hitl_lab::gateway::Gateway::Envoy).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn agentgateway() -> anyhow::Result<()> {
                if $crate::gate::skip_agentgateway(concat!(module_path!(), "::agentgateway")) {
                    return Ok(());
                }
                run(hitl_lab::gateway::Gateway::Agentgateway).await
            }
        }
    };
}

/// `true` (and said loudly, and recorded) when no agentgateway binary is at hand.
pub fn skip_agentgateway(test: &str) -> bool {
    agentgateway::binary_for_test(test).is_none()
}

pub use crate::Reply;

impl Gate {
    /// The lab behind `gateway` (`hitl_lab::stack`), with hitl-extauth configured by
    /// `configure` (e.g. a short park timeout). Its directory is
    /// `target/test-scratch/<test>-<gateway>`.
    pub async fn start(
        test: &str,
        gateway: Gateway,
        configure: impl Fn(Options) -> Options + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let log_dir = crate::scratch_dir(&format!("{test}-{gateway}"));
        Self::from_stack(Stack::builder(&log_dir).gateway(gateway).extauth(configure)).await
    }

    /// The lab behind `gateway` with the gate as `n` replicas on a PostgreSQL server of the
    /// test's own (under `target/`), the gateway balancing its Checks over them; each replica
    /// configured by `configure`.
    pub async fn start_replicas(
        test: &str,
        gateway: Gateway,
        n: usize,
        configure: impl Fn(Options) -> Options + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let log_dir = crate::scratch_dir(&format!("{test}-{gateway}"));
        // A directory of its own: the lab's is made owner-only, which the server's user may
        // not enter (a restarted server could no longer reach its cluster).
        let pg_dir = crate::scratch_dir(&format!("{test}-{gateway}-pg"));
        let server = hitl_lab::postgres::Server::start(&pg_dir.join("cluster"))?;
        let password_file = pg_dir.join("store-password");
        server.password_file(&password_file)?;
        let url = server.url("postgres");
        let builder = Stack::builder(&log_dir)
            .gateway(gateway)
            .replicas(n)
            .extauth(move |o| configure(o.postgres(url.clone(), password_file.clone())));
        let mut gate = Self::from_stack(builder).await?;
        gate.postgres = Some(server);
        Ok(gate)
    }

    /// Every replica of the gate: the first, then the others.
    pub fn all_replicas(&self) -> impl Iterator<Item = &ExtAuth> {
        std::iter::once(&self.extauth).chain(&self.replicas)
    }

    /// The default lab behind `gateway`, gateway and gate speaking mTLS (as in kind).
    pub async fn start_mtls(test: &str, gateway: Gateway) -> anyhow::Result<Self> {
        let log_dir = crate::scratch_dir(&format!("{test}-{gateway}"));
        Self::from_stack(Stack::builder(&log_dir).gateway(gateway).gate_mtls()).await
    }

    async fn from_stack(builder: hitl_lab::stack::Builder) -> anyhow::Result<Self> {
        let Stack {
            log_dir,
            signer,
            issuer,
            db,
            extauth,
            more_extauth,
            mut fronts,
            gate_tls,
            ..
        } = builder.start().await?;
        let front = fronts.pop().context("the stack has its gateway")?;
        // Every request proves USER unless a test says otherwise.
        let http = reqwest::Client::builder()
            .timeout(PATIENCE)
            .default_headers(http::HeaderMap::from_iter([(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(&bearer(&issuer.mint(USER)?))?,
            )]))
            .build()?;
        Ok(Self {
            db: MockDb::adopt(db, signer, &log_dir)?,
            extauth: ExtAuth::adopt_with(extauth, &log_dir, issuer.clone())?,
            replicas: more_extauth
                .into_iter()
                .map(|r| ExtAuth::adopt_with(r, &log_dir, issuer.clone()))
                .collect::<anyhow::Result<_>>()?,
            postgres: None,
            front,
            issuer,
            log_dir,
            gate_tls,
            http,
        })
    }

    /// The default lab (600 s parks) behind `gateway`.
    pub async fn start_default(test: &str, gateway: Gateway) -> anyhow::Result<Self> {
        Self::start(test, gateway, |o| o).await
    }

    /// `http://127.0.0.1:LISTEN{path}`: through the gateway.
    pub fn url(&self, path: &str) -> String {
        self.front.url(path)
    }

    /// A complete HTTP/1.1 POST of `body` to the privileged route, as [`USER`], for
    /// [`Gate::raw_connect`] (the connection is kept open after the answer).
    pub fn raw_post(&self, body: &str) -> String {
        format!(
            "POST {} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
             accept: application/json, text/event-stream\r\nauthorization: {}\r\n\
             content-length: {}\r\n\r\n{body}",
            hitl_wire::mockdb::paths::PRIVILEGED_MCP,
            self.user_bearer(),
            body.len()
        )
    }

    /// `Bearer <token>` proving [`USER`].
    pub fn user_bearer(&self) -> String {
        bearer(&self.issuer.mint(USER).expect("minting a token"))
    }

    pub fn gateway_log_tail(&self) -> String {
        self.front.running.log_tail(40)
    }

    /// An MCP client through the gateway on `path` (handshake included), as [`USER`] via
    /// [`AGENT`].
    pub async fn mcp(&self, path: &str) -> anyhow::Result<McpClient> {
        let headers: HashMap<HeaderName, HeaderValue> = [
            (
                HeaderName::from_static("x-user-id"),
                HeaderValue::from_static(USER),
            ),
            (
                HeaderName::from_static("x-agent-id"),
                HeaderValue::from_static(AGENT),
            ),
            (
                http::header::AUTHORIZATION,
                HeaderValue::from_str(&self.user_bearer())?,
            ),
        ]
        .into();
        let config =
            StreamableHttpClientTransportConfig::with_uri(self.url(path)).custom_headers(headers);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let transport = StreamableHttpClientTransport::with_client(http, config);
        tokio::time::timeout(PATIENCE, ().serve(transport))
            .await
            .context("MCP initialize through the gateway timed out")?
            .with_context(|| format!("MCP initialize through the gateway on {path}"))
    }

    /// A request through the gateway, built by `build` from a client that proves [`USER`]
    /// (`Authorization: Bearer …`) on every request.
    pub async fn send(
        &self,
        build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<Reply> {
        Reply::read(build(&self.http).send().await?).await
    }

    /// A request through the gateway from a client that sends no token of its own.
    pub async fn send_unproven(
        &self,
        build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<Reply> {
        let http = reqwest::Client::builder().timeout(PATIENCE).build()?;
        Reply::read(build(&http).send().await?).await
    }

    /// A JSON POST of `body` (any bytes) to `path` through the gateway, as a Streamable HTTP
    /// client would send it, proving [`USER`].
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> anyhow::Result<Reply> {
        let url = self.url(path);
        self.send(|http| {
            http.post(url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("x-user-id", USER)
                .body(body)
        })
        .await
    }

    /// The same, in the background (for calls that park).
    pub fn spawn_post(
        &self,
        path: &str,
        body: String,
    ) -> tokio::task::JoinHandle<anyhow::Result<Reply>> {
        let url = self.url(path);
        let http = self.http.clone();
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("x-user-id", USER)
                .body(body)
                .send()
                .await?;
            Reply::read(resp).await
        })
    }

    /// [`Gate::spawn_post`], proving `user` instead of [`USER`].
    pub fn spawn_post_as(
        &self,
        user: &str,
        path: &str,
        body: String,
    ) -> tokio::task::JoinHandle<anyhow::Result<Reply>> {
        let url = self.url(path);
        let http = self.http.clone();
        let token = self.issuer.mint(user).map(|t| bearer(&t));
        let user = user.to_owned();
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .header(http::header::AUTHORIZATION, token?)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("x-user-id", user)
                .body(body)
                .send()
                .await?;
            Reply::read(resp).await
        })
    }

    /// Open a TCP connection to the gateway and write `request` (raw HTTP/1.1) to it.
    pub async fn raw_connect(&self, request: &[u8]) -> anyhow::Result<TcpStream> {
        let mut stream = TcpStream::connect((
            self.front.plan.listen.host.as_str(),
            self.front.plan.listen.port,
        ))
        .await?;
        stream.write_all(request).await?;
        Ok(stream)
    }

    /// Send raw HTTP/1.1 (which must ask for `Connection: close`) and read the whole answer:
    /// status and body.
    pub async fn raw(&self, request: &[u8]) -> anyhow::Result<(u16, String)> {
        let mut stream = self.raw_connect(request).await?;
        let mut answer = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
            .await
            .context("no complete answer from the gateway")??;
        hitl_scenes::attacks::raw::http_answer(&answer)
    }
}

/// A JSON-RPC `tools/call run_migration` to `version`, as id `id`.
pub fn migrate(id: u64, version: &str) -> String {
    tools_call(
        id,
        hitl_wire::mockdb::tools::RUN_MIGRATION,
        serde_json::json!({ "version": version }),
    )
}

/// A JSON-RPC `tools/call` of `tool` with `args`.
pub fn tools_call(id: u64, tool: &str, args: serde_json::Value) -> String {
    serde_json::json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": tool, "arguments": args }
    })
    .to_string()
}
