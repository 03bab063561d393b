//! hitl-extauth fixture: the real binary on free loopback ports, its admin API through the one
//! client (`hitl_wire::extauth::client`) with the waits tests need, and a way to crash and
//! restart it.

use std::{
    path::{Path, PathBuf},
    pin::Pin,
    time::Duration,
};

use anyhow::Context as _;
use envoy_types::pb::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, authorization_client::AuthorizationClient,
};
use futures::{Stream, StreamExt as _};
use hitl_lab::{
    components::extauth::{self, Options, RequesterTrust},
    net, proc,
    requester::Issuer,
    stack::Started,
};
use hitl_wire::{
    approval::Signer,
    extauth::{
        DecideRequest, DecidedCall, Event, HistoryPage, HistoryQuery, ParkedCall,
        client::{AdminClient, AdminError},
        paths,
    },
};
use serde_json::Value;

pub use crate::wait::PATIENCE;
use crate::wait::eventually;

/// One running hitl-extauth, killed on drop.
pub struct ExtAuth {
    pub options: Options,
    /// Mints the requester tokens this gate verifies.
    pub issuer: Issuer,
    log_dir: PathBuf,
    running: proc::Running,
    admin: AdminClient,
    /// For requests the typed client would not send (malformed bodies).
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
        // Kept in `log_dir` so that a gate check can mint tokens this gate accepts.
        let requester_dir = log_dir.join("requester");
        Issuer::load_or_create(&requester_dir)?;
        let trust = RequesterTrust::of(&Issuer::load(&requester_dir)?, &requester_dir)?;
        net::on_fresh_ports(|| async {
            let mut defaults = Options::new(net::free_port()?, net::free_port()?, log_dir)
                .admin_token(&token)
                .requester(trust.clone());
            defaults.approval_signing_key = Some(keys.signing.clone());
            let options = configure(defaults);
            let running = proc::Running::start(extauth::spec(&options, log_dir)?).await?;
            Self::adopt(Started { options, running }, log_dir)
        })
        .await
    }

    /// Where [`ExtAuth::start`] keeps the requester key its gate trusts
    /// (`hitl_lab::requester::KEY_FILE` in it).
    pub fn requester_dir(&self) -> PathBuf {
        self.log_dir.join("requester")
    }

    /// The fixture around a hitl-extauth started elsewhere (by `hitl_lab::stack`, which
    /// hands over its `issuer`), or by [`ExtAuth::start`] (whose issuer is in `log_dir`).
    pub fn adopt(started: Started<Options>, log_dir: &Path) -> anyhow::Result<Self> {
        Self::adopt_with(started, log_dir, Issuer::load(&log_dir.join("requester"))?)
    }

    /// [`ExtAuth::adopt`], with the issuer whose tokens this gate verifies.
    pub fn adopt_with(
        started: Started<Options>,
        log_dir: &Path,
        issuer: Issuer,
    ) -> anyhow::Result<Self> {
        let Started { options, running } = started;
        Ok(Self {
            issuer,
            admin: AdminClient::with_timeouts(
                &options.admin_url(),
                options.admin_token.clone(),
                Duration::from_secs(5),
                PATIENCE,
            )?,
            options,
            log_dir: log_dir.to_path_buf(),
            running,
            http: reqwest::Client::builder().timeout(PATIENCE).build()?,
        })
    }

    /// SIGKILL (a crash: nothing is cleaned up), then start again with the same options.
    pub async fn crash_and_restart(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        self.restart().await
    }

    /// SIGKILL: a crash, nothing cleaned up.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.running.kill().await
    }

    /// Start again with the same options (after [`ExtAuth::kill`]).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let spec = extauth::spec(&self.options, &self.log_dir)?;
        self.running = proc::Running::start(spec).await?;
        Ok(())
    }

    pub fn url(&self, path: &str) -> String {
        self.admin.url(path)
    }

    /// The admin API's client, with the admin token.
    pub fn admin(&self) -> &AdminClient {
        &self.admin
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
        self.admin.authorize(request)
    }

    pub async fn pending(&self) -> anyhow::Result<Vec<ParkedCall>> {
        Ok(self.admin.pending().await?.pending)
    }

    /// `GET /pending/{id}`: one pending call, whole.
    pub async fn pending_call(&self, id: &str) -> anyhow::Result<ParkedCall> {
        Ok(self.admin.pending_call(id).await?)
    }

    /// Poll `/pending` until it holds exactly `n` calls.
    pub async fn wait_pending(&self, n: usize) -> anyhow::Result<Vec<ParkedCall>> {
        let what = format!("{n} parked calls");
        eventually(&what, || async {
            let pending = self.pending().await?;
            anyhow::ensure!(pending.len() == n, "{} so far", pending.len());
            Ok(Some(pending))
        })
        .await
        .with_context(|| self.log_tail())
    }

    /// `POST /decide/{id}` with a raw body (to see how the gate takes a malformed one):
    /// status and JSON answer.
    pub async fn decide_raw(&self, id: &str, body: &str) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .authorized(self.http.post(self.url(&paths::decide(id))))
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
            id_token: None,
            approved,
            reason: reason.to_owned(),
            reviewer: Some(reviewer.to_owned()),
        };
        self.admin
            .decide(id, &request)
            .await
            .with_context(|| format!("decide {id}"))
    }

    /// `GET /history`.
    pub async fn history(&self, query: &HistoryQuery) -> anyhow::Result<HistoryPage> {
        Ok(self.admin.history(query).await?)
    }

    /// Poll `/history` until it holds exactly `n` records.
    pub async fn wait_history(&self, n: usize) -> anyhow::Result<HistoryPage> {
        let what = format!("{n} history records");
        eventually(&what, || async {
            let page = self.history(&HistoryQuery::default()).await?;
            anyhow::ensure!(page.items.len() == n, "{} so far", page.items.len());
            Ok(Some(page))
        })
        .await
        .with_context(|| self.log_tail())
    }

    /// Send one `Check` to the gRPC port as agentgateway does (the body as lossy UTF-8 text
    /// in `body`, never `raw_body`); the answer arrives once the gate decides.
    pub async fn check(
        &self,
        body: &str,
        user: &str,
    ) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<CheckResponse>>> {
        let request = crate::check::verified(
            hitl_scenes::attacks::check::post_as_text(
                "/privileged/mcp",
                body,
                &[(":authority", "gateway.local"), ("x-user-id", user)],
            ),
            &self.issuer,
            user,
        );
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
        Ok(self.admin.metrics().await?)
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
        Ok(EventStream {
            events: Box::pin(self.admin.events().await?),
        })
    }
}

/// A subscription to hitl-extauth's `/events`, each event awaited with [`PATIENCE`].
pub struct EventStream {
    events: Pin<Box<dyn Stream<Item = Result<Event, AdminError>> + Send>>,
}

impl EventStream {
    /// The next event: its SSE name and payload.
    pub async fn next(&mut self) -> anyhow::Result<(String, Event)> {
        let event = tokio::time::timeout(PATIENCE, self.events.next())
            .await
            .context("no event within the patience window")?
            .context("the event stream ended")??;
        Ok((event.name().to_owned(), event))
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

/// A Check's `metadata_context` stating a requester `sub` (as gateways state a payload they
/// verified): the harness's one builder. The gate believes none of it.
pub use hitl_scenes::attacks::check::stated_payload;
