//! hitl-extauth fixture: the real binary on free loopback ports, with a client for its admin
//! API (pending, decide, history, events, metrics) and a way to crash and restart it.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse,
    attribute_context::{HttpRequest, Request as AttrRequest},
    authorization_client::AuthorizationClient,
};
use hitl_lab::{
    components::extauth::{self, Options},
    net, proc,
};
use hitl_wire::{
    approval::Signer,
    extauth::{DecideRequest, DecidedCall, Event, HistoryPage, ParkedCall, PendingList},
};
use serde_json::Value;

/// How long the helpers wait for something to show up before failing the test.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// One running hitl-extauth, killed on drop.
pub struct ExtAuth {
    pub options: Options,
    log_dir: PathBuf,
    running: proc::Running,
    http: reqwest::Client,
}

impl ExtAuth {
    /// Start with the options `configure` makes from the defaults (free ports, audit DB in
    /// `log_dir`, a fresh signing key and admin token). Retries with new ports if the ones
    /// picked were taken in between.
    pub async fn start(
        log_dir: &Path,
        configure: impl Fn(Options) -> Options,
    ) -> anyhow::Result<Self> {
        Self::start_keyed(log_dir, &Signer::generate()?, configure).await
    }

    /// The same, signing approvals with `signer`.
    pub async fn start_keyed(
        log_dir: &Path,
        signer: &Signer,
        configure: impl Fn(Options) -> Options,
    ) -> anyhow::Result<Self> {
        let keys = signer.write_key_files(&log_dir.join("keys"))?;
        let token = hitl_lab::credentials::random_token()?;
        net::on_fresh_ports(|| async {
            let mut defaults =
                Options::new(net::free_port()?, net::free_port()?, log_dir).admin_token(&token);
            defaults.approval_signing_key = Some(keys.signing.clone());
            let options = configure(defaults);
            let running = proc::Running::start(extauth::spec(&options, log_dir)?).await?;
            Ok(Self {
                options,
                log_dir: log_dir.to_path_buf(),
                running,
                http: reqwest::Client::builder().timeout(PATIENCE).build()?,
            })
        })
        .await
    }

    /// SIGKILL (a crash: nothing is cleaned up), then start again with the same options.
    pub async fn crash_and_restart(&mut self) -> anyhow::Result<()> {
        self.running.kill().await?;
        let spec = extauth::spec(&self.options, &self.log_dir)?;
        self.running = proc::Running::start(spec).await?;
        Ok(())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.options.admin_url())
    }

    /// OS process id (to read its memory use).
    pub fn pid(&self) -> Option<u32> {
        self.running.pid()
    }

    pub fn log_tail(&self) -> String {
        self.running.log_tail(40)
    }

    /// `request` with the admin token, when there is one.
    pub fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.options.admin_token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let resp = self
            .authorized(self.http.get(self.url(path)))
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        anyhow::ensure!(status.is_success(), "GET {path}: {status}: {text}");
        serde_json::from_str(&text).with_context(|| format!("GET {path}: {text}"))
    }

    pub async fn pending(&self) -> anyhow::Result<Vec<ParkedCall>> {
        Ok(self.get_json::<PendingList>("/pending").await?.pending)
    }

    /// `GET /pending/{id}`: one pending call, whole.
    pub async fn pending_call(&self, id: &str) -> anyhow::Result<ParkedCall> {
        self.get_json(&format!("/pending/{id}")).await
    }

    /// Poll `/pending` until it holds exactly `n` calls.
    pub async fn wait_pending(&self, n: usize) -> anyhow::Result<Vec<ParkedCall>> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let pending = self.pending().await?;
            if pending.len() == n {
                return Ok(pending);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "expected {n} parked calls, still {} after {PATIENCE:?}:\n{}",
                pending.len(),
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `POST /decide/{id}` with a raw body: status and JSON answer.
    pub async fn decide_raw(&self, id: &str, body: &str) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .authorized(self.http.post(self.url(&format!("/decide/{id}"))))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let json = serde_json::from_str(&text).with_context(|| format!("decide: {text}"))?;
        Ok((status, json))
    }

    /// A decision that must apply.
    pub async fn decide(
        &self,
        id: &str,
        approved: bool,
        reason: &str,
        reviewer: &str,
    ) -> anyhow::Result<DecidedCall> {
        let request = DecideRequest {
            approved,
            reason: reason.to_owned(),
            reviewer: Some(reviewer.to_owned()),
        };
        let (status, json) = self
            .decide_raw(id, &serde_json::to_string(&request)?)
            .await?;
        anyhow::ensure!(status == 200, "decide {id}: {status}: {json}");
        Ok(serde_json::from_value(json)?)
    }

    /// `GET /history?{query}`.
    pub async fn history(&self, query: &str) -> anyhow::Result<HistoryPage> {
        self.get_json(&format!("/history?{query}")).await
    }

    /// Poll `/history` until it holds exactly `n` records.
    pub async fn wait_history(&self, n: usize) -> anyhow::Result<HistoryPage> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let page = self.history("").await?;
            if page.items.len() == n {
                return Ok(page);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "expected {n} history records, have {}:\n{}",
                page.items.len(),
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Send one `Check` to the gRPC port as agentgateway does (the body as lossy UTF-8 text
    /// in `body`, never `raw_body`); the answer arrives once the gate decides.
    pub async fn check(
        &self,
        body: &str,
        user: &str,
    ) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<CheckResponse>>> {
        let headers = std::collections::HashMap::from([
            (":authority".to_owned(), "gateway.local".to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
            ("content-length".to_owned(), body.len().to_string()),
            ("x-user-id".to_owned(), user.to_owned()),
        ]);
        let request = CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(AttrRequest {
                    http: Some(HttpRequest {
                        method: "POST".into(),
                        path: "/privileged/mcp".into(),
                        size: body.len() as i64,
                        headers,
                        body: body.to_owned(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                // As after the gateway verified `user`'s requester token.
                metadata_context: Some(verified_metadata(user)),
                ..Default::default()
            }),
        };
        self.check_raw(request).await
    }

    /// Send `request` as it is (e.g. a forged frame without HTTP attributes).
    pub async fn check_raw(
        &self,
        request: CheckRequest,
    ) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<CheckResponse>>> {
        let grpc = format!("http://127.0.0.1:{}", self.options.grpc_port);
        let mut client = AuthorizationClient::connect(grpc)
            .await
            .context("connecting to the gate's gRPC port")?;
        Ok(tokio::spawn(async move {
            Ok(client.check(request).await?.into_inner())
        }))
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(self.url("/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// One metric sample's value, e.g. `hitl_extauth_decisions_total{outcome="approved"}`.
    pub async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        let text = self.metrics().await?;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .with_context(|| format!("no {series} in /metrics:\n{text}"))
    }

    /// Subscribe to `GET /events`.
    pub async fn events(&self) -> anyhow::Result<EventStream> {
        // No overall timeout on a stream that is meant to stay open.
        let resp = self
            .authorized(reqwest::Client::new().get(self.url("/events")))
            .send()
            .await?
            .error_for_status()?;
        anyhow::ensure!(
            resp.headers()
                .get("content-type")
                .is_some_and(|v| v == "text/event-stream"),
            "/events is not an event stream"
        );
        Ok(EventStream {
            resp,
            buf: Vec::new(),
        })
    }
}

/// A subscription to hitl-extauth's `/events`.
pub struct EventStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl EventStream {
    /// The next event (skipping keep-alive comments): its SSE name and payload.
    pub async fn next(&mut self) -> anyhow::Result<(String, Event)> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let bytes: Vec<u8> = self.buf.drain(..end + 2).collect();
                let block = String::from_utf8(bytes)?;
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.strip_prefix(' ').unwrap_or(v).to_owned())
                };
                if let (Some(name), Some(data)) = (field("event:"), field("data:")) {
                    let event = serde_json::from_str(&data)
                        .with_context(|| format!("event {name}: {data}"))?;
                    return Ok((name, event));
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.resp.chunk())
                .await
                .context("no event within the patience window")??
                .context("the event stream ended")?;
            self.buf.extend_from_slice(&chunk);
        }
    }
}

/// The value of `name` among the headers an OK `CheckResponse` adds upstream.
pub fn added_header(response: &CheckResponse, name: &str) -> Option<String> {
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    let Some(HttpResponse::OkResponse(ok)) = &response.http_response else {
        return None;
    };
    ok.headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| h.value.clone())
}

/// A Check's `metadata_context` as the gateway sends it after verifying a requester token
/// whose `sub` is `sub`: the harness's one builder.
pub use hitl_scenes::attacks::check::verified_metadata;
