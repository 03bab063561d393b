//! gate-check's lifecycle checks, each against the gate through the gateway: housekeeping
//! passes, a `tools/call` parks (and nothing runs meanwhile), approve → runs once, reject →
//! the reason reaches the caller, an undecided call expires, a caller's hang-up abandons.

use std::time::Duration;

use hitl_wire::extauth::{HistoryQuery, Outcome};

use crate::attacks::{
    AttackReport, Target,
    calls::{decide_held, fresh_requester, held, released, spawn_migration, tag_needle},
    raw::{Answer, privileged_post, send_raw, short},
    run::{check, since},
};
use hitl_lab::requester::bearer;

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
        "a caller who hangs up is let go (nobody held for it) and nothing runs",
    ),
];

/// Run the lifecycle check `id`; never fails: an error is a failed check.
pub async fn run(
    target: &Target,
    id: &str,
    name: &str,
    park_timeout: Option<Duration>,
) -> AttackReport {
    let report = AttackReport::new(id, name, "lifecycle", file!());
    report
        .run(async |report| match id {
            "housekeeping-passes" => housekeeping(target, report).await,
            "tools-call-parks" | "reject-reason-reaches-caller" => {
                park_then_reject(target, report, id).await
            }
            "approve-runs" => approve(target, report).await,
            "undecided-expires" => expire(target, report, park_timeout).await,
            _ => hang_up(target, report).await,
        })
        .await
}

async fn post(target: &Target, body: &str) -> anyhow::Result<Answer> {
    let token = bearer(&target.issuer.mint(&target.requester)?);
    let request = privileged_post(&target.gateway, &[("authorization", &token)], body);
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
    let (tag, call) = spawn_migration(
        target,
        &fresh_requester(target),
        "v4",
        Duration::from_secs(120),
    )?;
    let call = held(target, call).await?;
    if id == "tools-call-parks" {
        check(report, call.is_ok(), "no answer while undecided (parked)");
        let (executed, refused) = since(&before, &target.db.state().await?);
        check(
            report,
            executed.is_empty() && refused.is_empty(),
            "nothing reached the backend while parked",
        );
    }
    let call = match call {
        Ok(call) => call,
        Err(answer) => {
            answered_early(report, "it did not park", &answer);
            return Ok(());
        }
    };
    let reason = format!("gate-check {tag}: not in this change window ✋");
    let decision = (false, reason.as_str());
    let call = match decide_held(target, call, tag, decision, "gate-check-reviewer").await? {
        Ok(call) => call,
        Err(why) => {
            check(report, false, format!("the reject did not apply: {why}"));
            return Ok(());
        }
    };
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

/// A call answered before any decision: a failed check with the answer.
fn answered_early(report: &mut AttackReport, what: &str, answer: &Answer) {
    report.observed = answer.describe();
    check(report, false, format!("{what}: {}", short(answer)));
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
    let (tag, call) = spawn_migration(
        target,
        &fresh_requester(target),
        "v3",
        Duration::from_secs(120),
    )?;
    let call = match held(target, call).await? {
        Ok(call) => call,
        Err(answer) => {
            answered_early(report, "it did not wait for a decision", &answer);
            return Ok(());
        }
    };
    let decision = (true, "gate-check: approved");
    let call = match decide_held(target, call, tag, decision, "gate-check-reviewer").await? {
        Ok(call) => call,
        Err(why) => {
            check(report, false, format!("the approval did not apply: {why}"));
            return Ok(());
        }
    };
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
    let (_, call) = spawn_migration(
        target,
        &fresh_requester(target),
        "v4",
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
    // The call is sent, then the connection dropped after the park window.
    let (tag, call) = spawn_migration(target, &fresh_requester(target), "v4", target.park_window)?;
    let answer = call.await??;
    report.observed = format!("hung up ({})", answer.describe());
    if let Some(admin) = &target.admin {
        let gone = released(admin, tag, Duration::from_secs(10)).await?;
        check(report, gone, "the gate let go of the call");
        let needle = tag_needle(tag);
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
