//! `cargo xtask gate-check`: conformance for ANY gate that speaks
//! `envoy.service.auth.v3.Authorization`. The harness starts mock-db-mcp and a real gateway
//! (agentgateway or Envoy, configured as the local lab's) whose privileged route asks the gate
//! under test, then runs the lifecycle checks (housekeeping passes, a `tools/call` parks,
//! approve → runs, reject → the reason reaches the caller, expiry, client hang-up) and the
//! attack catalogue through it. Decisions go through hitl-extauth's admin API or a command.
//! The contract is written down in `docs/gate-contract.md`.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use hitl_wire::{
    extauth::{HistoryQuery, Outcome, client::AdminClient},
    mockdb::paths,
};

use crate::{
    attacks::{
        Attack, AttackReport, Decider, Target,
        run::{Answer, check, new_tag, parked_id, send_raw, short, since, spawn_call, tagged_call},
    },
    clients::Db,
    components::mock_db,
    envoy::{Endpoint, GatewayPlan, GatewayPorts},
    gateway::Gateway,
    proc,
    requester::{Issuer, bearer},
    scene::SuiteReport,
};

/// What `gate-check` was asked to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The gate's Check port.
    pub ext_authz: Endpoint,
    /// hitl-extauth's admin API (its `/pending`, `/decide`, `/history`), when the gate is one.
    pub admin: Option<String>,
    pub admin_token: Option<String>,
    /// A decide command (`{id}` `{approve}` `{reason}` `{reviewer}`), for gates that decide
    /// elsewhere.
    pub decide_cmd: Option<String>,
    pub gateway: Gateway,
    /// The gate's approval-token public key (hex Ed25519, as mock-db-mcp reads it): with it
    /// mock-db-mcp verifies approvals, and the token checks run.
    pub approval_key: Option<PathBuf>,
    /// The gate's park timeout, when known: the expiry check waits for it.
    pub park_timeout: Option<Duration>,
    /// Logs, generated configs, the database (`target/gate-check`).
    pub dir: PathBuf,
    /// How long an unanswered call counts as parked.
    pub park_window: Duration,
}

impl Options {
    pub fn new(ext_authz: Endpoint, gateway: Gateway) -> Self {
        Self {
            ext_authz,
            admin: None,
            admin_token: None,
            decide_cmd: None,
            gateway,
            approval_key: None,
            park_timeout: None,
            dir: crate::bins::target_dir().join("gate-check"),
            park_window: Duration::from_secs(3),
        }
    }
}

/// The processes gate-check started; stopped on drop.
struct Rig {
    _db: proc::Running,
    _gateway: proc::Running,
}

/// Run the lifecycle checks and the catalogue; the report says what passed.
pub async fn run(
    options: &Options,
    attacks: &[Attack],
    live: &dyn Fn(&str),
) -> anyhow::Result<SuiteReport> {
    let log_dir = options.dir.join("logs");
    let _ = std::fs::remove_dir_all(&options.dir);
    std::fs::create_dir_all(&log_dir)?;
    let decider = match (&options.decide_cmd, &options.admin) {
        (Some(cmd), _) => Decider::Command(cmd.clone()),
        (None, Some(url)) => Decider::Admin(AdminClient::new(url, options.admin_token.clone())?),
        (None, None) => anyhow::bail!(
            "gate-check needs a way to decide: --admin URL (hitl-extauth's admin API) or \
             --decide-cmd 'COMMAND {{id}} {{approve}} {{reason}}'"
        ),
    };

    let mut db_options = mock_db::Options::new(crate::net::free_port()?)
        .db_path(options.dir.join("mock-db.sqlite"))
        .enable_reset(true);
    match &options.approval_key {
        Some(key) => db_options = db_options.verifying_key(key),
        None => db_options.insecure_no_approval_key = true,
    }
    let db_process = proc::Running::start(mock_db::spec(&db_options, &log_dir)?).await?;
    let issuer = Issuer::generate()?;
    let plan = GatewayPlan::lab(
        GatewayPorts::free()?,
        Endpoint::loopback(db_options.port),
        options.ext_authz.clone(),
        options.park_timeout.unwrap_or(Duration::from_secs(600)),
    )
    .with_requester_jwt(issuer.gateway_jwt());
    let gateway_process = proc::Running::start(
        options
            .gateway
            .spec(&plan, &log_dir)?
            .ready_timeout(Duration::from_secs(60)),
    )
    .await?;
    let _rig = Rig {
        _db: db_process,
        _gateway: gateway_process,
    };
    live(&format!(
        "gate-check: {} on 127.0.0.1:{} → gate {}:{}, mock-db-mcp on 127.0.0.1:{} (logs: {})",
        options.gateway,
        plan.listen.port,
        options.ext_authz.host,
        options.ext_authz.port,
        db_options.port,
        log_dir.display()
    ));
    let admin = options
        .admin
        .as_ref()
        .map(|url| AdminClient::new(url, options.admin_token.clone()))
        .transpose()?;
    let target = Target {
        gateway: plan.listen.clone(),
        backend: Endpoint::loopback(db_options.port),
        db: Db::new(db_options.base_url()),
        issuer,
        requester: "alice".into(),
        ours: admin.is_some(),
        admin,
        admin_url: options.admin.clone(),
        decider,
        ui: None,
        ext_authz: Some(options.ext_authz.clone()),
        backend_verifies: options.approval_key.is_some(),
        park_window: options.park_window,
    };

    let mut rows = Vec::new();
    for (id, name) in LIFECYCLE {
        let row = lifecycle(&target, id, name, options.park_timeout).await;
        live(&format!(
            "   {} {:<41} {:<18} {}",
            if row.passed { "✓" } else { "✗" },
            row.id,
            row.observed,
            row.failures()
                .map(|c| c.what.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
        rows.push(row);
    }
    rows.extend(crate::attacks::run_all(&target, attacks, live).await);
    Ok(SuiteReport {
        target: "gate-check".into(),
        model: "none".into(),
        gateway: options.gateway.to_string(),
        scenes: Vec::new(),
        attacks: rows,
    })
}

/// The lifecycle checks, in order.
pub const LIFECYCLE: [(&str, &str); 6] = [
    (
        "housekeeping-passes",
        "MCP initialize and tools/list pass without review",
    ),
    (
        "tools-call-parks",
        "a tools/call waits for a decision, and nothing runs meanwhile",
    ),
    ("approve-runs", "approved, the call runs, once"),
    (
        "reject-reason-reaches-caller",
        "rejected with a reason, the caller gets the reason, nothing runs",
    ),
    (
        "undecided-expires",
        "an undecided call is denied when the gate's park timeout ends",
    ),
    (
        "hang-up-abandons",
        "a caller who hangs up leaves nothing parked and nothing runs",
    ),
];

async fn lifecycle(
    target: &Target,
    id: &str,
    name: &str,
    park_timeout: Option<Duration>,
) -> AttackReport {
    let started = Instant::now();
    let mut report = AttackReport {
        id: id.into(),
        name: name.into(),
        family: "lifecycle".into(),
        file: "harness/src/gate_check.rs".into(),
        passed: false,
        observed: String::new(),
        duration_ms: 0,
        checks: Vec::new(),
        not_applicable: Vec::new(),
    };
    let result = match id {
        "housekeeping-passes" => housekeeping(target, &mut report).await,
        "tools-call-parks" | "reject-reason-reaches-caller" => {
            park_then_reject(target, &mut report, id).await
        }
        "approve-runs" => approve(target, &mut report).await,
        "undecided-expires" => expire(target, &mut report, park_timeout).await,
        _ => hang_up(target, &mut report).await,
    };
    if let Err(e) = result {
        check(&mut report, false, format!("could not run: {e:#}"));
    }
    report.passed = report.checks.iter().all(|c| c.passed);
    if report.checks.is_empty() {
        report.observed = "n/a".into();
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

async fn post(target: &Target, body: &str) -> anyhow::Result<Answer> {
    let request = format!(
        "POST {} HTTP/1.1\r\nhost: {}:{}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nconnection: close\r\n\
         authorization: {}\r\ncontent-length: {}\r\n\r\n{body}",
        paths::PRIVILEGED_MCP,
        target.gateway.host,
        target.gateway.port,
        bearer(&target.issuer.mint(&target.requester)?),
        body.len()
    );
    send_raw(&target.gateway, request.as_bytes(), Duration::from_secs(10)).await
}

async fn housekeeping(target: &Target, report: &mut AttackReport) -> anyhow::Result<()> {
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"gate-check","version":"1"}}}"#;
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let mut observed = Vec::new();
    for (what, body) in [("initialize", initialize), ("tools/list", list)] {
        let answer = post(target, body).await?;
        observed.push(format!("{what} {}", answer.describe()));
        check(
            report,
            matches!(answer, Answer::Passed { .. }),
            format!("{what} passes: {}", short(&answer)),
        );
    }
    report.observed = observed.join(", ");
    Ok(())
}

async fn park_then_reject(
    target: &Target,
    report: &mut AttackReport,
    id: &str,
) -> anyhow::Result<()> {
    let before = target.db.state().await?;
    let tag = new_tag();
    let call = spawn_call(
        target,
        &target.requester,
        tag,
        tagged_call(tag, "v4"),
        Duration::from_secs(120),
    )?;
    tokio::time::sleep(target.park_window).await;
    let held = !call.is_finished();
    if id == "tools-call-parks" {
        check(report, held, "no answer while undecided (parked)");
        let (executed, refused) = since(&before, &target.db.state().await?);
        check(
            report,
            executed.is_empty() && refused.is_empty(),
            "nothing reached the backend while parked",
        );
    }
    if !held {
        let answer = call.await??;
        report.observed = answer.describe();
        check(
            report,
            false,
            format!("it did not park: {}", short(&answer)),
        );
        return Ok(());
    }
    let reason = format!("gate-check {tag}: not in this change window ✋");
    let gate_id = parked_id(target, tag).await?;
    if let Err(why) = target
        .decider
        .decide(&gate_id, false, &reason, "gate-check-reviewer")
        .await?
    {
        check(report, false, format!("the reject did not apply: {why}"));
        call.abort();
        return Ok(());
    }
    let answer = tokio::time::timeout(Duration::from_secs(30), call).await???;
    report.observed = if id == "tools-call-parks" {
        "parked".into()
    } else {
        answer.describe()
    };
    if id == "reject-reason-reaches-caller" {
        check(
            report,
            matches!(answer, Answer::Refused { .. }),
            format!("refused: {}", short(&answer)),
        );
        check(
            report,
            answer_text(&answer).contains(&reason),
            "the reviewer's reason reaches the caller verbatim",
        );
        let (executed, _) = since(&before, &target.db.state().await?);
        check(report, executed.is_empty(), "nothing executed");
    }
    Ok(())
}

fn answer_text(answer: &Answer) -> String {
    match answer {
        Answer::Refused { body, .. } | Answer::Passed { body, .. } => {
            // The reason may travel JSON-escaped.
            body.replace("\\u270b", "✋")
        }
        Answer::Held => String::new(),
    }
}

async fn approve(target: &Target, report: &mut AttackReport) -> anyhow::Result<()> {
    let before = target.db.state().await?;
    let tag = new_tag();
    let call = spawn_call(
        target,
        &target.requester,
        tag,
        tagged_call(tag, "v3"),
        Duration::from_secs(120),
    )?;
    tokio::time::sleep(target.park_window).await;
    if call.is_finished() {
        let answer = call.await??;
        report.observed = answer.describe();
        check(
            report,
            false,
            format!("it did not wait for a decision: {}", short(&answer)),
        );
        return Ok(());
    }
    let gate_id = parked_id(target, tag).await?;
    if let Err(why) = target
        .decider
        .decide(
            &gate_id,
            true,
            "gate-check: approved",
            "gate-check-reviewer",
        )
        .await?
    {
        check(report, false, format!("the approval did not apply: {why}"));
        call.abort();
        return Ok(());
    }
    let answer = tokio::time::timeout(Duration::from_secs(30), call).await???;
    report.observed = answer.describe();
    check(
        report,
        matches!(answer, Answer::Passed { .. }),
        format!("the tool result comes back: {}", short(&answer)),
    );
    let (executed, refused) = since(&before, &target.db.state().await?);
    check(
        report,
        executed.len() == 1 && refused.is_empty(),
        format!("run_migration executed exactly once (executed {executed:?}, refused {refused:?})"),
    );
    Ok(())
}

async fn expire(
    target: &Target,
    report: &mut AttackReport,
    park_timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let Some(timeout) = park_timeout else {
        report
            .not_applicable
            .push("the gate's park timeout is not known (pass --park-timeout SECS)".into());
        return Ok(());
    };
    let before = target.db.state().await?;
    let tag = new_tag();
    let call = spawn_call(
        target,
        &target.requester,
        tag,
        tagged_call(tag, "v4"),
        timeout + Duration::from_secs(15),
    )?;
    let answer = call.await??;
    report.observed = answer.describe();
    check(
        report,
        matches!(answer, Answer::Refused { .. }),
        format!("denied when the park times out: {}", short(&answer)),
    );
    let (executed, _) = since(&before, &target.db.state().await?);
    check(report, executed.is_empty(), "nothing executed");
    Ok(())
}

async fn hang_up(target: &Target, report: &mut AttackReport) -> anyhow::Result<()> {
    let before = target.db.state().await?;
    let tag = new_tag();
    // The call is sent, then the connection dropped after the park window.
    let answer = spawn_call(
        target,
        &target.requester,
        tag,
        tagged_call(tag, "v4"),
        target.park_window,
    )?
    .await??;
    report.observed = format!("hung up ({})", answer.describe());
    if let Some(admin) = &target.admin {
        let deadline = Instant::now() + Duration::from_secs(10);
        let needle = format!("\"id\":{tag},");
        loop {
            let gone = !admin
                .pending()
                .await?
                .pending
                .iter()
                .any(|c| c.body.contains(&needle));
            if gone || Instant::now() > deadline {
                check(report, gone, "the gate let go of the call");
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let history = admin.history(&HistoryQuery::latest(50)).await?;
        let abandoned = history
            .items
            .iter()
            .any(|r| r.call.body.contains(&needle) && r.outcome == Outcome::Abandoned);
        check(report, abandoned, "recorded as abandoned");
    } else {
        tokio::time::sleep(Duration::from_secs(1)).await;
        report
            .not_applicable
            .push("whether the gate let go of the call: n/a without its admin API".into());
    }
    let (executed, _) = since(&before, &target.db.state().await?);
    check(report, executed.is_empty(), "nothing executed");
    Ok(())
}
