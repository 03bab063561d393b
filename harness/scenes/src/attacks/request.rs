//! One catalogue request, replayed: sent byte for byte to the gateway (or around it to the
//! backend), then checked from each source — the answer's verdict, status and reason,
//! mock-db-mcp's audit, and the gate's `/history`.

use std::time::Duration;

use hitl_wire::{extauth::Outcome, mockdb::State};

use super::{
    catalogue::{Attack, Backend, Expect, Request, To, Verdict},
    raw::{Answer, render, send_raw, short},
    run::{AttackReport, Target, check, since},
};
use hitl_wire::extauth::{HistoryQuery, client::AdminClient};

/// How often the gate's `denied` record is looked for again (50 ms apart) after its answer.
const RECORD_TRIES: usize = 20;

/// Send `request` and check everything `attack` expects of it.
pub async fn run(
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
    let endpoint = match request.to {
        To::Gateway => &target.gateway,
        To::Backend => &target.backend,
    };
    let answer = send_raw(endpoint, &render(target, request)?, target.park_window).await?;
    report.observed = answer.describe();
    the_answer(target, expect, request, &answer, report);
    let after = target.db.state().await?;
    the_backend(expect, &before, &after, report);
    if expect.audited {
        the_record(target, denied_before, report).await?;
    }
    Ok(())
}

/// The verdict, the status and the reason, from the answer.
fn the_answer(
    target: &Target,
    expect: &Expect,
    request: &Request,
    answer: &Answer,
    report: &mut AttackReport,
) {
    let verdict_ok = matches!(
        (expect.verdict, answer),
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
    check(report, verdict_ok, format!("{wanted}: {}", short(answer)));
    if let (false, Answer::Refused { status, .. }) = (expect.status.is_empty(), answer) {
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
}

/// Nothing ran, and the backend saw what it should have, from mock-db-mcp's audit.
fn the_backend(expect: &Expect, before: &State, after: &State, report: &mut AttackReport) {
    let (executed, refused) = since(before, after);
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
}

/// A `denied` record on the gate's `/history` (hitl-extauth only).
async fn the_record(
    target: &Target,
    denied_before: Option<u64>,
    report: &mut AttackReport,
) -> anyhow::Result<()> {
    match (&target.admin, denied_before) {
        (Some(admin), Some(n)) if target.ours => {
            // The record is written as the denial is answered; give it a moment.
            let mut now = denied_count(admin).await?;
            for _ in 0..RECORD_TRIES {
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
    Ok(())
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
