//! Replaying the catalogue against a gate behind a gateway: each attack is sent, its answer
//! classified (refused, passed, or held as parked), and what must hold is checked from its
//! own source — the answer, mock-db-mcp's audit, the gate's `/history`. A check that needs
//! something the gate under test does not offer is reported as "n/a for this gate", never
//! as a pass.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use hitl_wire::{
    approval,
    extauth::{DecideRequest, HistoryQuery, Outcome, client::AdminClient},
    headers,
    mockdb::{State, paths},
};
use serde::Serialize;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use super::catalogue::{
    ApprovalToken, Attack, Backend, Framing, Identity, Kind, Request, To, Verdict,
};
use crate::{
    clients::{Db, ReviewerUi},
    envoy::Endpoint,
    requester::{Issuer, bearer},
    scene::run::Check,
};

/// How decisions reach the gate under test.
#[derive(Debug, Clone)]
pub enum Decider {
    /// hitl-extauth's admin API (`POST /decide/{id}`).
    Admin(AdminClient),
    /// A shell command, `{id}` `{approve}` (`true`/`false`) `{reason}` `{reviewer}` filled in
    /// (each shell-quoted); exit 0 means the decision was taken.
    Command(String),
}

impl Decider {
    /// Decide call `id` as `reviewer`: `Ok(Err(why))` when the decider refused.
    pub async fn decide(
        &self,
        id: &str,
        approve: bool,
        reason: &str,
        reviewer: &str,
    ) -> anyhow::Result<Result<(), String>> {
        match self {
            Decider::Admin(admin) => {
                let request = DecideRequest {
                    approved: approve,
                    reason: reason.to_owned(),
                    reviewer: Some(reviewer.to_owned()),
                };
                Ok(admin
                    .decide(id, &request)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{e:#}")))
            }
            Decider::Command(template) => {
                let command = template
                    .replace("{id}", &shell_quote(id))
                    .replace("{approve}", if approve { "true" } else { "false" })
                    .replace("{reason}", &shell_quote(reason))
                    .replace("{reviewer}", &shell_quote(reviewer));
                let output = tokio::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(&command)
                    .output()
                    .await
                    .with_context(|| format!("running the decide command `{command}`"))?;
                Ok(if output.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "`{command}` exited with {}: {}",
                        output.status,
                        String::from_utf8_lossy(&output.stderr).trim()
                    ))
                })
            }
        }
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The gate under test and everything around it.
pub struct Target {
    /// The gateway's listener.
    pub gateway: Endpoint,
    /// mock-db-mcp, reached directly.
    pub backend: Endpoint,
    pub db: Db,
    /// Mints requester tokens the gateway verifies.
    pub issuer: Issuer,
    /// The requester our calls come from.
    pub requester: String,
    /// hitl-extauth's admin API (pending, history) when the gate is hitl-extauth.
    pub admin: Option<AdminClient>,
    /// The admin API's base URL, to try it without credentials.
    pub admin_url: Option<String>,
    pub decider: Decider,
    /// The reviewer UI and a signed-in reviewer, for separation of duties (the UI enforces it).
    pub ui: Option<(ReviewerUi, String)>,
    /// The gate's Check port, to ask it for an approval token directly.
    pub ext_authz: Option<Endpoint>,
    /// mock-db-mcp verifies approval tokens with the gate's public key.
    pub backend_verifies: bool,
    /// The gate is hitl-extauth: its reasons and its `/history` are part of the contract.
    pub ours: bool,
    /// How long a call may go unanswered before it counts as parked.
    pub park_window: Duration,
}

/// One attack's result: a row in the summary table and the reports.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    pub id: String,
    pub name: String,
    pub family: String,
    pub file: String,
    pub passed: bool,
    /// What was observed, in one line (`refused 403`, `parked`, …).
    pub observed: String,
    pub duration_ms: u64,
    pub checks: Vec<Check>,
    /// Checks that could not apply to this gate, each with why.
    pub not_applicable: Vec<String>,
}

impl AttackReport {
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// What came back for one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// HTTP ≥ 400, or a JSON-RPC error / a tool result with `isError`.
    Refused { status: u16, body: String },
    /// A 2xx answer that refuses nothing.
    Passed { status: u16, body: String },
    /// No answer within the park window.
    Held,
}

impl Answer {
    pub fn describe(&self) -> String {
        match self {
            Answer::Refused { status, .. } => format!("refused {status}"),
            Answer::Passed { status, .. } => format!("passed {status}"),
            Answer::Held => "parked".into(),
        }
    }

    pub fn body(&self) -> &str {
        match self {
            Answer::Refused { body, .. } | Answer::Passed { body, .. } => body,
            Answer::Held => "",
        }
    }
}

/// Classify a complete HTTP answer.
pub fn classify(status: u16, body: &str) -> Answer {
    let squeezed: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    if status >= 400 || squeezed.contains(r#""isError":true"#) || squeezed.contains(r#""error":{"#)
    {
        Answer::Refused {
            status,
            body: body.to_owned(),
        }
    } else {
        Answer::Passed {
            status,
            body: body.to_owned(),
        }
    }
}

/// Run every attack, in order.
pub async fn run_all(
    target: &Target,
    attacks: &[Attack],
    live: &dyn Fn(&str),
) -> Vec<AttackReport> {
    let mut out = Vec::new();
    for attack in attacks {
        let report = run(target, attack).await;
        live(&format!(
            "   {} attack {:<34} {:<18} {}",
            if report.passed { "✓" } else { "✗" },
            report.id,
            report.observed,
            report
                .failures()
                .map(|c| c.what.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
        out.push(report);
    }
    out
}

/// Run one attack; never fails: an error is a failed check.
pub async fn run(target: &Target, attack: &Attack) -> AttackReport {
    let started = Instant::now();
    let mut report = AttackReport {
        id: attack.id.clone(),
        name: attack.name.clone(),
        family: attack.family.clone(),
        file: attack.file.clone(),
        passed: false,
        observed: String::new(),
        duration_ms: 0,
        checks: Vec::new(),
        not_applicable: Vec::new(),
    };
    let result = match &attack.kind {
        Kind::Request(request) => run_request(target, attack, request, &mut report).await,
        Kind::SelfApproval => self_approval(target, &mut report).await,
        Kind::ReplayApproval => replay_approval(target, &mut report).await,
        Kind::DecideWithoutCredentials => decide_without_credentials(target, &mut report).await,
    };
    if let Err(e) = result {
        report.checks.push(Check {
            passed: false,
            what: format!("could not run: {e:#}"),
        });
    }
    report.passed = !report.checks.is_empty() && report.checks.iter().all(|c| c.passed);
    if report.checks.is_empty() && !report.not_applicable.is_empty() {
        // Nothing applied: n/a, which is not a failure.
        report.passed = true;
        report.observed = "n/a".into();
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

pub(crate) fn check(report: &mut AttackReport, passed: bool, what: impl Into<String>) {
    report.checks.push(Check {
        passed,
        what: what.into(),
    });
}

/// The backend's audit since `before`: (executed, refused checks).
pub(crate) fn since(before: &State, after: &State) -> (Vec<String>, Vec<String>) {
    let last = before.audit.iter().map(|e| e.seq).max().unwrap_or(0);
    let mut executed = Vec::new();
    let mut refused = Vec::new();
    for entry in after.audit.iter().filter(|e| e.seq > last) {
        match &entry.refused {
            Some(check) => refused.push(check.clone()),
            None => executed.push(entry.tool.clone()),
        }
    }
    (executed, refused)
}

/// The number of `denied` decisions on the gate's record (coalesced repeats counted).
async fn denied_count(admin: &AdminClient) -> anyhow::Result<u64> {
    let page = admin.history(&HistoryQuery::latest(500)).await?;
    Ok(page
        .items
        .iter()
        .filter(|r| r.outcome == Outcome::Denied)
        .map(|r| r.count.max(1))
        .sum())
}

async fn run_request(
    target: &Target,
    attack: &Attack,
    request: &Request,
    report: &mut AttackReport,
) -> anyhow::Result<()> {
    let expect = &attack.expect;
    if request.to == To::Backend
        && !target.backend_verifies
        && matches!(expect.backend, Backend::Refused(_))
    {
        report.not_applicable.push(
            "mock-db-mcp does not verify approval tokens here (no public key of this gate's)"
                .into(),
        );
        return Ok(());
    }
    let before = target.db.state().await?;
    let denied_before = match (&target.admin, expect.audited) {
        (Some(admin), true) => Some(denied_count(admin).await?),
        _ => None,
    };
    let bytes = render(target, request)?;
    let endpoint = match request.to {
        To::Gateway => &target.gateway,
        To::Backend => &target.backend,
    };
    let answer = send_raw(endpoint, &bytes, target.park_window).await?;
    report.observed = answer.describe();

    let verdict_ok = matches!(
        (expect.verdict, &answer),
        (Verdict::Refused, Answer::Refused { .. })
            | (Verdict::Parked, Answer::Held)
            | (
                Verdict::RefusedOrParked,
                Answer::Refused { .. } | Answer::Held
            )
    );
    let wanted = match expect.verdict {
        Verdict::Refused => "refused",
        Verdict::Parked => "parked",
        Verdict::RefusedOrParked => "refused or parked",
    };
    check(report, verdict_ok, format!("{wanted}: {}", short(&answer)));
    if let (false, Answer::Refused { status, .. }) = (expect.status.is_empty(), &answer) {
        check(
            report,
            expect.status.contains(status),
            format!("status {status} is one of {:?}", expect.status),
        );
    }
    if let Some(fragment) = &expect.reason {
        if request.to == To::Backend || target.ours {
            check(
                report,
                answer.body().contains(fragment.as_str()),
                format!("the refusal says `{fragment}`"),
            );
        } else {
            report.not_applicable.push(format!(
                "reason `{fragment}` is hitl-extauth's wording: n/a for this gate"
            ));
        }
    }

    let after = target.db.state().await?;
    let (executed, refused) = since(&before, &after);
    check(
        report,
        executed.is_empty() && after.schema_version == before.schema_version,
        if executed.is_empty() {
            "nothing executed".to_owned()
        } else {
            format!("nothing executed, but {} ran", executed.join(", "))
        },
    );
    match &expect.backend {
        Backend::Untouched => check(
            report,
            refused.is_empty(),
            if refused.is_empty() {
                "no unapproved call reached the backend".to_owned()
            } else {
                format!(
                    "the gate let an unapproved call through to the backend (refused there: {})",
                    refused.join(", ")
                )
            },
        ),
        Backend::Refused(want) => check(
            report,
            refused.iter().any(|r| r == want),
            format!("the backend refused it by its `{want}` check (saw {refused:?})"),
        ),
    }
    if expect.audited {
        match (&target.admin, denied_before) {
            (Some(admin), Some(n)) if target.ours => {
                // The record is written as the denial is answered; give it a moment.
                let mut now = denied_count(admin).await?;
                for _ in 0..20 {
                    if now > n {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    now = denied_count(admin).await?;
                }
                check(report, now > n, "on the gate's record as `denied`");
            }
            _ => report
                .not_applicable
                .push("`denied` in /history is hitl-extauth's audit: n/a for this gate".into()),
        }
    }
    Ok(())
}

pub(crate) fn short(answer: &Answer) -> String {
    let body = answer.body();
    let cut: String = body.chars().take(160).collect();
    match answer {
        Answer::Held => "no answer (parked)".into(),
        _ => format!("{} {}", answer.describe(), cut.replace(['\r', '\n'], " ")),
    }
}

/// The request's bytes, HTTP/1.1, `Connection: close`.
fn render(target: &Target, request: &Request) -> anyhow::Result<Vec<u8>> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {}:{}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nconnection: close\r\n",
        request.method,
        request.path,
        match request.to {
            To::Gateway => &target.gateway.host,
            To::Backend => &target.backend.host,
        },
        match request.to {
            To::Gateway => target.gateway.port,
            To::Backend => target.backend.port,
        }
    );
    let mut add = |name: &str, value: &str| head.push_str(&format!("{name}: {value}\r\n"));
    match request.identity {
        Identity::Token => {
            add(
                hitl_wire::identity::TOKEN_HEADER,
                &bearer(&target.issuer.mint(&target.requester)?),
            );
            add(headers::USER_ID, &target.requester);
        }
        Identity::HeaderOnly => {
            add(headers::USER_ID, &target.requester);
            add(headers::FORWARDED_USER, &target.requester);
        }
        Identity::None => {}
    }
    if request.approval == ApprovalToken::Forged {
        add(approval::HEADER, &forged_token(&request.body)?);
    }
    for (name, value) in &request.headers {
        add(name, value);
    }
    let mut bytes = match request.framing {
        Framing::Length => {
            add("content-length", &request.body.len().to_string());
            head.push_str("\r\n");
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&request.body);
            bytes
        }
        Framing::Chunked => {
            add("transfer-encoding", "chunked");
            head.push_str("\r\n");
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(format!("{:x}\r\n", request.body.len()).as_bytes());
            bytes.extend_from_slice(&request.body);
            bytes.extend_from_slice(b"\r\n");
            bytes
        }
    };
    if request.framing == Framing::Chunked {
        bytes.extend_from_slice(b"0\r\n\r\n");
    }
    Ok(bytes)
}

/// A well-formed approval for exactly `body`, signed by a key nobody trusts.
fn forged_token(body: &[u8]) -> anyhow::Result<String> {
    let signer = approval::Signer::generate()?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(signer.sign(&approval::Claims {
        id: uuid::Uuid::new_v4().to_string(),
        sha256: approval::sha256_hex(body),
        tool: hitl_wire::mockdb::tools::RUN_MIGRATION.into(),
        requester: Some("alice".into()),
        reviewer: "mallory".into(),
        iat: now,
        exp: now + approval::TTL_SECS,
    }))
}

/// Write `bytes` to `endpoint` and read the whole answer, or [`Answer::Held`] if none comes
/// within `window` (the connection is then dropped: the client hangs up).
pub async fn send_raw(
    endpoint: &Endpoint,
    bytes: &[u8],
    window: Duration,
) -> anyhow::Result<Answer> {
    let mut stream = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .with_context(|| format!("connecting to {}:{}", endpoint.host, endpoint.port))?;
    stream.write_all(bytes).await?;
    let mut answer = Vec::new();
    match tokio::time::timeout(window, stream.read_to_end(&mut answer)).await {
        Err(_) => Ok(Answer::Held),
        Ok(read) => {
            // A reset after a complete answer is still an answer.
            if let Err(e) = read
                && answer.is_empty()
            {
                return Err(e).context("reading the answer");
            }
            let text = String::from_utf8_lossy(&answer);
            let status = text
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .with_context(|| format!("not an HTTP answer: {text}"))?;
            let body = text
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_owned())
                .unwrap_or_default();
            Ok(classify(status, &body))
        }
    }
}

/// A JSON-RPC `tools/call run_migration` tagged so it can be found again.
pub fn tagged_call(tag: u32, version: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0", "id": tag, "method": "tools/call",
        "params": { "name": hitl_wire::mockdb::tools::RUN_MIGRATION, "arguments": { "version": version } }
    })
    .to_string()
}

/// A random tag for one call.
pub fn new_tag() -> u32 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("randomness");
    u32::from_le_bytes(bytes) >> 1
}

/// Send `body` through the gateway as `sub` in the background; the task ends with the answer.
pub fn spawn_call(
    target: &Target,
    sub: &str,
    tag: u32,
    body: String,
    patience: Duration,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<Answer>>> {
    let request = format!(
        "POST {} HTTP/1.1\r\nhost: {}:{}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nconnection: close\r\n\
         authorization: {}\r\n{}: {sub}\r\n{}: {tag}\r\ncontent-length: {}\r\n\r\n{body}",
        paths::PRIVILEGED_MCP,
        target.gateway.host,
        target.gateway.port,
        bearer(&target.issuer.mint(sub)?),
        headers::USER_ID,
        headers::CHECK_ID,
        body.len()
    );
    let endpoint = target.gateway.clone();
    Ok(tokio::spawn(async move {
        send_raw(&endpoint, request.as_bytes(), patience).await
    }))
}

/// The id under which the gate holds the call tagged `tag`: from hitl-extauth's `/pending`
/// when there is one (waiting up to 30 s for it to appear), else the tag itself (what
/// `--decide-cmd` gets as `{id}`; the call carries it in `x-hitl-check-id`).
pub async fn parked_id(target: &Target, tag: u32) -> anyhow::Result<String> {
    let Some(admin) = &target.admin else {
        tokio::time::sleep(Duration::from_millis(500)).await;
        return Ok(tag.to_string());
    };
    let needle = format!("\"id\":{tag},");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(call) = admin
            .pending()
            .await?
            .pending
            .into_iter()
            .find(|c| c.body.contains(&needle))
        {
            return Ok(call.id);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "call {tag} never showed up in /pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A requester tries to approve their own call in the reviewer UI: refused. Then another
/// reviewer approves and it runs.
async fn self_approval(target: &Target, report: &mut AttackReport) -> anyhow::Result<()> {
    let Some((ui, reviewer)) = &target.ui else {
        report.not_applicable.push(
            "separation of duties is the reviewer UI's to enforce (hitl-extauth trusts its token \
             holder): no reviewer UI given"
                .into(),
        );
        return Ok(());
    };
    let Some(admin) = &target.admin else {
        report
            .not_applicable
            .push("needs the gate's admin API to find the call".into());
        return Ok(());
    };
    let before = target.db.state().await?;
    let tag = new_tag();
    // The requester is the reviewer themself.
    let call = spawn_call(
        target,
        reviewer,
        tag,
        tagged_call(tag, &before.schema_version),
        Duration::from_secs(120),
    )?;
    let id = parked_id(target, tag).await?;
    let (status, text) = ui.decide(&id, true, "my own change, trust me").await?;
    check(
        report,
        status == 403 && text.contains("another reviewer must approve"),
        format!("the requester's own approval is refused (HTTP {status})"),
    );
    let still = admin.pending().await?.pending.iter().any(|c| c.id == id);
    check(
        report,
        still,
        "the call is still waiting after the refused self-approval",
    );
    match target
        .decider
        .decide(
            &id,
            true,
            "second pair of eyes",
            "conformance-second-reviewer",
        )
        .await?
    {
        Ok(()) => {}
        Err(why) => check(
            report,
            false,
            format!("another reviewer could not approve: {why}"),
        ),
    }
    let answer = tokio::time::timeout(Duration::from_secs(60), call).await???;
    report.observed = format!("self refused, other approved: {}", answer.describe());
    check(
        report,
        matches!(answer, Answer::Passed { .. }),
        format!("approved by another reviewer, it runs: {}", short(&answer)),
    );
    let after = target.db.state().await?;
    let ran = after.audit.iter().any(|e| {
        e.seq > before.audit.iter().map(|e| e.seq).max().unwrap_or(0)
            && e.executed()
            && e.approval_id.as_deref() == Some(id.as_str())
    });
    check(report, ran, "the backend ran it under that approval");
    Ok(())
}

/// Ask the gate directly for an approval, spend it once at the backend, then again.
async fn replay_approval(target: &Target, report: &mut AttackReport) -> anyhow::Result<()> {
    let Some(endpoint) = &target.ext_authz else {
        report
            .not_applicable
            .push("the gate's Check port is not known".into());
        return Ok(());
    };
    if !target.backend_verifies {
        report.not_applicable.push(
            "mock-db-mcp does not verify approval tokens here (no public key of this gate's)"
                .into(),
        );
        return Ok(());
    }
    let before = target.db.state().await?;
    let tag = new_tag();
    let body = tagged_call(tag, &before.schema_version);
    let request = super::check::verified_post(
        paths::PRIVILEGED_MCP,
        &body,
        &target.requester,
        &[(headers::CHECK_ID, &tag.to_string())],
    );
    let endpoint = endpoint.clone();
    let pending = tokio::spawn(async move { super::check::check(&endpoint, request).await });
    let id = parked_id(target, tag).await?;
    if let Err(why) = target
        .decider
        .decide(&id, true, "approve once", "conformance-reviewer")
        .await?
    {
        check(report, false, format!("could not approve: {why}"));
        return Ok(());
    }
    let response = tokio::time::timeout(Duration::from_secs(60), pending).await???;
    let Some(token) = super::check::added_header(&response, approval::HEADER) else {
        report.not_applicable.push(format!(
            "this gate adds no `{}` token to an approval",
            approval::HEADER
        ));
        return Ok(());
    };
    let send = |token: String| {
        let body = body.clone();
        let backend = target.backend.clone();
        async move {
            let request = format!(
                "POST {} HTTP/1.1\r\nhost: {}:{}\r\ncontent-type: application/json\r\n\
                 accept: application/json, text/event-stream\r\nconnection: close\r\n\
                 {}: {token}\r\ncontent-length: {}\r\n\r\n{body}",
                paths::PRIVILEGED_MCP,
                backend.host,
                backend.port,
                approval::HEADER,
                body.len()
            );
            send_raw(&backend, request.as_bytes(), Duration::from_secs(30)).await
        }
    };
    let first = send(token.clone()).await?;
    check(
        report,
        matches!(first, Answer::Passed { .. }),
        format!("the first use runs: {}", short(&first)),
    );
    let mid = target.db.state().await?;
    let second = send(token).await?;
    report.observed = format!("replay {}", second.describe());
    check(
        report,
        matches!(second, Answer::Refused { .. }) && second.body().contains("replayed"),
        format!("the replay is refused as `replayed`: {}", short(&second)),
    );
    let after = target.db.state().await?;
    let (executed, refused) = since(&mid, &after);
    check(report, executed.is_empty(), "the replay executed nothing");
    check(
        report,
        refused.iter().any(|r| r == "replayed"),
        "the refusal is in the backend's audit",
    );
    Ok(())
}

/// `POST /decide/{id}` on the admin API with no credential, and with a wrong one: refused,
/// the call still waits, nothing runs.
async fn decide_without_credentials(
    target: &Target,
    report: &mut AttackReport,
) -> anyhow::Result<()> {
    let (Some(admin), Some(url)) = (&target.admin, &target.admin_url) else {
        report
            .not_applicable
            .push("no admin API given: this gate decides elsewhere".into());
        return Ok(());
    };
    let before = target.db.state().await?;
    let tag = new_tag();
    let call = spawn_call(
        target,
        &target.requester,
        tag,
        tagged_call(tag, "v4"),
        Duration::from_secs(60),
    )?;
    let id = parked_id(target, tag).await?;
    let http = reqwest::Client::new();
    let approve = r#"{"approved":true,"reason":"","reviewer":"mallory"}"#;
    let mut statuses = Vec::new();
    for bearer in [None, Some("guess")] {
        let mut request = http
            .post(format!("{}/decide/{id}", url.trim_end_matches('/')))
            .header("content-type", "application/json")
            .body(approve);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        statuses.push(request.send().await?.status().as_u16());
    }
    report.observed = format!("decide → {statuses:?}");
    check(
        report,
        statuses.iter().all(|s| matches!(s, 401 | 403 | 503)),
        format!("refused without the credential (HTTP {statuses:?})"),
    );
    let still = admin.pending().await?.pending.iter().any(|c| c.id == id);
    check(report, still, "the call is still waiting");
    // Close it as a reviewer would.
    if let Err(why) = target
        .decider
        .decide(
            &id,
            false,
            "conformance: cleaning up",
            "conformance-reviewer",
        )
        .await?
    {
        check(
            report,
            false,
            format!("could not reject it afterwards: {why}"),
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), call).await;
    let after = target.db.state().await?;
    let (executed, _) = since(&before, &after);
    check(
        report,
        executed.is_empty() && after.schema_version == before.schema_version,
        "nothing executed",
    );
    Ok(())
}
