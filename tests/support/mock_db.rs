//! mock-db-mcp fixture: the real binary on a free loopback port, a standard MCP client (rmcp)
//! per endpoint, and raw HTTP for what a well-behaved client never sends.

use crate::Reply;
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use hitl_lab::{
    components::mock_db::{self, Options},
    net, proc,
    stack::Started,
};
use hitl_wire::{
    approval::{self, Claims, Signer},
    mockdb::{State, paths},
};
use http::{HeaderName, HeaderValue};
use rmcp::{
    ClientLifecycleMode, ClientServiceExt as _, RoleClient,
    model::{CallToolRequestParams, CallToolResult},
    service::{RunningService, ServiceError},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::Value;

/// The `user-agent` our MCP clients send, so audit entries can be checked for it.
pub const USER_AGENT: &str = "hitl-lab-tests/mock-db-mcp";

/// An MCP client session with one endpoint.
pub type McpClient = RunningService<RoleClient, ()>;

/// One running mock-db-mcp, killed on drop. It verifies approvals against `signer`'s public
/// key, so a test can mint valid tokens (as hitl-extauth would) or forge others.
pub struct MockDb {
    pub options: Options,
    pub signer: Signer,
    log_dir: PathBuf,
    running: proc::Running,
    http: reqwest::Client,
}

impl MockDb {
    /// In memory, `/reset` off.
    pub async fn start(log_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(log_dir, |o| o).await
    }

    /// Adjust the options (port is chosen here). Retries with a new port if the one picked
    /// was taken in between. Approvals are verified against a fresh key pair's public half.
    pub async fn start_with(
        log_dir: &Path,
        configure: impl Fn(Options) -> Options,
    ) -> anyhow::Result<Self> {
        let signer = Signer::generate()?;
        let keys = signer.write_key_files(&log_dir.join("keys"))?;
        net::on_fresh_ports(|| async {
            let options = configure(Options::new(net::free_port()?).verifying_key(&keys.verifying));
            Self::spawn(log_dir, options, signer.clone()).await
        })
        .await
    }

    async fn spawn(log_dir: &Path, options: Options, signer: Signer) -> anyhow::Result<Self> {
        let spec = mock_db::spec(&options, log_dir)?.ready_timeout(Duration::from_secs(30));
        let running = proc::Running::start(spec).await?;
        Self::adopt(Started { options, running }, signer, log_dir)
    }

    /// The fixture around a mock-db-mcp started elsewhere (by `hitl_lab::stack`) that
    /// verifies approvals made by `signer`.
    pub fn adopt(
        started: Started<Options>,
        signer: Signer,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let Started { options, running } = started;
        Ok(Self {
            options,
            signer,
            log_dir: log_dir.to_path_buf(),
            running,
            // No connection reuse: a request the server refused mid-body (413) closes its
            // connection, and the next request must not race that close on a pooled socket.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(0)
                .build()?,
        })
    }

    /// Stop gracefully and start again with the same options (same port, same `--db`).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.running.terminate(Duration::from_secs(10)).await?;
        let spec = mock_db::spec(&self.options, &self.log_dir)?;
        self.running = proc::Running::start(spec).await?;
        Ok(())
    }

    pub fn url(&self, path: &str) -> String {
        self.options.url(path)
    }

    /// An MCP client on `/public/mcp`, identifying as `user`.
    pub async fn public(&self, user: &str) -> anyhow::Result<McpClient> {
        self.connect(paths::PUBLIC_MCP, &[("x-user-id", user)])
            .await
    }

    /// An MCP client on `/privileged/mcp`, identifying as `user`.
    pub async fn privileged(&self, user: &str) -> anyhow::Result<McpClient> {
        self.connect(paths::PRIVILEGED_MCP, &[("x-user-id", user)])
            .await
    }

    /// An MCP client (initialize handshake included) on `path`, sending `headers` on every
    /// request plus our [`USER_AGENT`].
    pub async fn connect(&self, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<McpClient> {
        self.connect_with(path, headers, ClientLifecycleMode::Initialize)
            .await
    }

    /// Like [`MockDb::connect`], with the client's lifecycle chosen: the classic `initialize`
    /// handshake, or `server/discover` with self-contained per-request metadata.
    pub async fn connect_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        lifecycle: ClientLifecycleMode,
    ) -> anyhow::Result<McpClient> {
        let custom: HashMap<HeaderName, HeaderValue> = headers
            .iter()
            .map(|(k, v)| Ok((HeaderName::try_from(*k)?, HeaderValue::try_from(*v)?)))
            .collect::<anyhow::Result<_>>()?;
        let config =
            StreamableHttpClientTransportConfig::with_uri(self.url(path)).custom_headers(custom);
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(Duration::from_secs(30))
            .build()?;
        let transport = StreamableHttpClientTransport::with_client(http, config);
        tokio::time::timeout(
            Duration::from_secs(30),
            ().serve_with_lifecycle(transport, lifecycle),
        )
        .await
        .context("MCP client start timed out")?
        .with_context(|| format!("MCP client start with {path}"))
    }

    /// `GET /state`.
    pub async fn state(&self) -> anyhow::Result<State> {
        let resp = self.http.get(self.url(paths::STATE)).send().await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "/state answered {}",
            resp.status()
        );
        Ok(resp.json().await?)
    }

    /// `POST /reset` as `user`, with the reset token it was started with: status and body.
    pub async fn reset(&self, user: &str) -> anyhow::Result<(u16, String)> {
        let token = self.options.reset_token.clone().unwrap_or_default();
        self.reset_presenting(user, Some(&token)).await
    }

    /// `POST /reset` as `user` presenting `token` (`None`: no `Authorization`).
    pub async fn reset_presenting(
        &self,
        user: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        let mut request = self
            .http
            .post(self.url(paths::RESET))
            .header("x-user-id", user);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let resp = request.send().await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }

    /// A request to `path` as a browser page sends it: `Host` and `Origin` as given (e.g. a
    /// DNS-rebinding page's own name), no credential.
    pub async fn from_a_page(
        &self,
        method: reqwest::Method,
        path: &str,
        host: &str,
        origin: Option<&str>,
        content_type: &str,
        body: &str,
    ) -> anyhow::Result<Reply> {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("host", host)
            .header("content-type", content_type)
            .body(body.to_owned());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        Reply::read(request.send().await?).await
    }

    /// A raw POST to `path` with the headers a Streamable HTTP client sends, except that the
    /// content type is `content_type`: status, content type and body.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> anyhow::Result<Reply> {
        let resp = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
            .await?;
        Reply::read(resp).await
    }

    /// A raw JSON POST of `body` to `path` with extra `headers` (e.g. an approval token).
    pub async fn post_with(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let mut request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        Reply::read(request.body(body).send().await?).await
    }

    /// A token for exactly `body` calling `tool`, as hitl-extauth signs it on approval.
    pub fn approve(&self, id: &str, body: &[u8], tool: &str) -> String {
        self.signer.sign(&claims(id, body, tool))
    }

    /// A raw JSON-RPC POST from a browser page at `origin`.
    pub async fn post_with_origin(
        &self,
        path: &str,
        origin: &str,
        message: &Value,
    ) -> anyhow::Result<Reply> {
        let resp = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("origin", origin)
            .body(message.to_string())
            .send()
            .await?;
        Reply::read(resp).await
    }

    /// The process's peak resident memory (`VmHWM`), in KiB, where /proc tells.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.running.pid()?)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// A raw JSON-RPC POST (no session, no handshake), as a gateway routing each request
    /// independently would forward it.
    pub async fn post_jsonrpc(&self, path: &str, message: &Value) -> anyhow::Result<Reply> {
        self.post_raw(path, "application/json", message.to_string())
            .await
    }
}

/// The claims hitl-extauth would sign for approving `body` (calling `tool`) now.
pub fn claims(id: &str, body: &[u8], tool: &str) -> Claims {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Claims {
        approvers: Vec::new(),
        rule: None,
        id: id.to_owned(),
        sha256: approval::sha256_hex(body),
        tool: tool.to_owned(),
        requester: Some("alice".into()),
        reviewer: "bob".into(),
        iat: now,
        exp: now + approval::TTL_SECS,
    }
}

/// Call `tool` with `args` (a JSON object).
pub async fn call(
    client: &McpClient,
    tool: &str,
    args: Value,
) -> Result<CallToolResult, ServiceError> {
    let args = match args {
        Value::Object(map) => map,
        other => panic!("tool arguments must be a JSON object, got {other}"),
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
}
