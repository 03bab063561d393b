//! Steps 2 and 3, one parked call at a time: a gated `tools/call` goes out through Envoy,
//! parks at hitl-extauth, shows up on an `/events` subscriber (park → visible), and is
//! approved with `POST /decide`; the time until its result reaches the client is decision →
//! release.
//!
//! Park → visible is measured from the moment the client starts sending the request (it
//! includes Envoy, the gRPC Check, classification, the audit enqueue and SSE delivery), to
//! the moment the subscriber — our own SSE client, as hitl-ui uses — has parsed the `parked`
//! event. Decision → release runs from just before the `POST /decide` to the last byte of
//! the tool result at the client; it includes the audit commit an approval waits for, the
//! gRPC answer, and Envoy forwarding to mock-db-mcp. The call is `run_migration` to the
//! version the database is already at, so the upstream changes nothing.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::StreamExt as _;
use hitl_wire::extauth::client::AdminClient;
use hitl_wire::{
    extauth::{DecideRequest, Event},
    mockdb::{paths, tools},
};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::{
    Progress, Target, host,
    mcp::{self, TAG_HEADER},
    stack::Stack,
    stats::Summary,
};

/// Decision → release p99 target.
pub const RELEASE_P99_TARGET_MS: f64 = 20.0;
/// Park → visible p99 target.
pub const VISIBLE_P99_TARGET_MS: f64 = 250.0;

/// How long one step may take before the bench gives up (a hang guard, not a measurement).
const PATIENCE: Duration = Duration::from_secs(30);

/// Steps 2 and 3's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Release {
    /// Client starts sending → `parked` event at the `/events` subscriber.
    pub park_to_visible: Summary,
    /// `POST /decide` sent → tool result fully at the client.
    pub decision_to_release: Summary,
    /// `POST /decide` round trip alone (it answers once the approval is recorded).
    pub decide_round_trip: Summary,
    /// CPU each of our processes used per timed round (park, event, decide, release), in
    /// microseconds.
    pub cpu_us_per_call: BTreeMap<&'static str, f64>,
}

impl Release {
    pub fn targets(&self) -> Vec<Target> {
        vec![
            Target::below(
                "decision → release: p99",
                "ms",
                self.decision_to_release.p99_ms,
                RELEASE_P99_TARGET_MS,
            ),
            Target::below(
                "park → visible: p99",
                "ms",
                self.park_to_visible.p99_ms,
                VISIBLE_P99_TARGET_MS,
            ),
        ]
    }
}

/// `samples` timed park-and-approve rounds after `warmup` untimed ones.
pub async fn measure(stack: &Stack, samples: usize, warmup: usize) -> anyhow::Result<Release> {
    let admin = stack.admin()?;
    let version = stack.db_client().state().await?.schema_version;
    let url = stack.gateway_url(paths::PRIVILEGED_MCP);
    let http = mcp::http1(PATIENCE)?;

    // The subscriber: every event, stamped the moment it is parsed.
    let mut events = Box::pin(admin.events().await?);
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Event)>();
    let subscriber = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let Ok(event) = event else { break };
            if tx.send((Instant::now(), event)).is_err() {
                break;
            }
        }
    });

    let (mut visible, mut release, mut decide_rtt) = (Vec::new(), Vec::new(), Vec::new());
    let mut progress = Progress::new("park → visible, decision → release", warmup + samples);
    let mut meter = None;
    for round in 0..warmup + samples {
        if round == warmup {
            meter = Some(host::CpuMeter::start(stack.processes()));
        }
        let t = one_round(
            stack,
            &admin,
            &http,
            &url,
            &version,
            round as u64 + 1,
            &mut rx,
        )
        .await?;
        if round >= warmup {
            visible.push(t.visible);
            release.push(t.release);
            decide_rtt.push(t.decide_rtt);
        }
        progress.tick(round + 1);
    }
    progress.finish();
    let cpu_us_per_call = meter.map(|m| m.per_request_us(samples)).unwrap_or_default();
    subscriber.abort();

    let summary = |s: &[Duration]| Summary::of(s).context("no samples taken");
    Ok(Release {
        park_to_visible: summary(&visible)?,
        decision_to_release: summary(&release)?,
        decide_round_trip: summary(&decide_rtt)?,
        cpu_us_per_call,
    })
}

/// One round's three figures.
struct Round {
    visible: Duration,
    release: Duration,
    decide_rtt: Duration,
}

/// Send gated call `id`, wait for its `parked` event, approve it, wait for its release.
async fn one_round(
    stack: &Stack,
    admin: &AdminClient,
    http: &reqwest::Client,
    url: &str,
    version: &str,
    id: u64,
    rx: &mut mpsc::UnboundedReceiver<(Instant, Event)>,
) -> anyhow::Result<Round> {
    let tag = format!("release-{id}");
    let body = mcp::tools_call(id, tools::RUN_MIGRATION, json!({ "version": version }));
    let call = {
        let (http, url, tag) = (http.clone(), url.to_owned(), tag.clone());
        tokio::spawn(async move {
            let sent = Instant::now();
            mcp::post(&http, &url, body, Some(&tag))
                .await
                .map(|reply| (sent, reply))
        })
    };

    // Park → visible: our tag on a `parked` event.
    let (seen, parked_id) = tokio::time::timeout(PATIENCE, async {
        loop {
            let (at, event) = rx.recv().await.context("the /events stream ended")?;
            if let Event::Parked { call } = event
                && call.headers.get(TAG_HEADER) == Some(&tag)
            {
                return anyhow::Ok((at, call.id));
            }
        }
    })
    .await
    .with_context(|| {
        format!(
            "call {tag} never showed up as parked\n{}",
            stack.log_tails(15)
        )
    })??;

    // Decision → release.
    let decided_at = Instant::now();
    let decision = DecideRequest {
        id_token: None,
        approved: true,
        reason: String::new(),
        reviewer: Some(crate::mcp::REVIEWER.into()),
    };
    tokio::time::timeout(PATIENCE, admin.decide(&parked_id, &decision))
        .await
        .context("POST /decide timed out")??;
    let answered = Instant::now();
    let (sent, reply) = tokio::time::timeout(PATIENCE, call)
        .await
        .with_context(|| format!("approved call {tag} was never released"))?
        .context("the client task failed")??;
    reply
        .rpc_result(id)
        .with_context(|| format!("approved call {tag}"))?;

    Ok(Round {
        visible: seen.saturating_duration_since(sent),
        release: reply.done.saturating_duration_since(decided_at),
        decide_rtt: answered - decided_at,
    })
}
