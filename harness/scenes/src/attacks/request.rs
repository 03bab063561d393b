//! One catalogue request, replayed: sent byte for byte to the gateway (or around it to the
//! backend), then checked from each source — the answer's verdict, status and reason,
//! mock-db-mcp's audit, and the gate's `/history`.

use std::{collections::BTreeMap, time::Duration};

use hitl_wire::{extauth::Outcome, mockdb::State};

use super::{
    calls::{LISTING_LIMIT, fresh_requester},
    catalogue::{Attack, Backend, Expect, Request, To, Verdict},
    raw::{Answer, render, send_raw, short},
    run::{AttackReport, Target, check, since},
};
use hitl_wire::extauth::{HistoryQuery, client::AdminClient};

/// How often the gate's `denied` record is looked for again (50 ms apart) after its answer.
const RECORD_TRIES: usize = 20;

/// How many of the gate's newest `denied` records are compared before and after. A denial is
/// a new record at the top or a bump of the newest one (see hitl-extauth's `denials`), so a
/// short page always holds it, however long the gate's history is.
const DENIED_PAGE: u32 = 50;

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
        (Some(admin), true) => Some(denials(admin).await?),
        _ => None,
    };
    let endpoint = match request.to {
        To::Gateway => &target.gateway,
        To::Backend => &target.backend,
    };
    // A requester of its own, so the approval request a held attack opens is its alone: no
    // later attack or scene meets it (issue #26: the requester is part of the action).
    let requester = fresh_requester(target);
    let bytes = render(target, request, &requester)?;
    let answer = send_raw(endpoint, &bytes, target.park_window).await?;
    report.observed = answer.describe();
    the_answer(target, expect, request, &answer, report);
    if matches!(answer, Answer::Held) {
        close_what_it_opened(target, &requester, report).await?;
    }
    let after = target.db.state().await?;
    the_backend(expect, &before, &after, report);
    if expect.audited {
        the_record(target, expect, denied_before, report).await?;
    }
    Ok(())
}

/// Reject the approval requests `requester`'s held call opened (it outlives the call: issue
/// #26), as the run's own reviewer, so the reviewer queue is empty after the catalogue.
/// Without hitl-extauth's `/pending` to find them, the gate under test keeps them.
async fn close_what_it_opened(
    target: &Target,
    requester: &str,
    report: &mut AttackReport,
) -> anyhow::Result<()> {
    let Some(admin) = &target.admin else {
        return Ok(());
    };
    let deadline = std::time::Instant::now() + LISTING_LIMIT;
    loop {
        let opened: Vec<String> = admin
            .pending_all()
            .await?
            .pending
            .into_iter()
            .filter(|c| c.requester.as_deref() == Some(requester))
            .map(|c| c.id)
            .collect();
        if !opened.is_empty() {
            for id in opened {
                if let Err(why) = target.decider.clean_up(&id).await? {
                    check(
                        report,
                        false,
                        format!("could not close request {id}: {why}"),
                    );
                }
            }
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            check(
                report,
                false,
                format!("the held call is not listed in /pending under {requester}"),
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// A `denied` record on the gate's `/history` for this request (hitl-extauth only): a new
/// record, or an earlier identical denial's `count` bumped (the gate coalesces repeats), whose
/// reason holds the refusal's expected wording.
async fn the_record(
    target: &Target,
    expect: &Expect,
    denied_before: Option<Denials>,
    report: &mut AttackReport,
) -> anyhow::Result<()> {
    match (&target.admin, denied_before) {
        (Some(admin), Some(before)) if target.ours => {
            // The record is written as the denial is answered; give it a moment.
            let mut now = denials(admin).await?;
            for _ in 0..RECORD_TRIES {
                if !recorded(&before, &now).is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                now = denials(admin).await?;
            }
            let reasons = recorded(&before, &now);
            let fragment = expect.reason.as_deref().unwrap_or_default();
            let passed = reasons.iter().any(|r| r.contains(fragment));
            let what = if passed || reasons.is_empty() {
                "on the gate's record as `denied`".to_owned()
            } else {
                format!("on the gate's record as `denied`, but for {reasons:?}, not `{fragment}`")
            };
            check(report, passed, what);
        }
        _ => report
            .not_applicable
            .push("`denied` in /history is hitl-extauth's audit: n/a for this gate".into()),
    }
    Ok(())
}

/// The gate's newest `denied` records: id → (count, reason).
type Denials = BTreeMap<String, (u64, String)>;

async fn denials(admin: &AdminClient) -> anyhow::Result<Denials> {
    let query = HistoryQuery {
        limit: Some(DENIED_PAGE),
        ..HistoryQuery::outcome(Outcome::Denied)
    };
    let page = admin.history(&query).await?;
    Ok(page
        .items
        .into_iter()
        .map(|r| (r.call.id, (r.count.max(1), r.reason)))
        .collect())
}

/// The reasons of the denials recorded between `before` and `after`: records that are new,
/// and records whose count grew. Records that slid off the page are not denials.
fn recorded<'a>(before: &Denials, after: &'a Denials) -> Vec<&'a str> {
    after
        .iter()
        .filter(|(id, (count, _))| before.get(*id).is_none_or(|(was, _)| count > was))
        .map(|(_, (_, reason))| reason.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(rows: &[(&str, u64, &str)]) -> Denials {
        rows.iter()
            .map(|(id, n, reason)| ((*id).to_owned(), (*n, (*reason).to_owned())))
            .collect()
    }

    #[test]
    fn a_new_record_is_a_denial_even_when_an_old_one_slides_off_the_page() {
        let before = page(&[("old", 1, "batches"), ("a", 1, "duplicate key")]);
        let after = page(&[("a", 1, "duplicate key"), ("b", 1, "allow-list")]);
        assert_eq!(recorded(&before, &after), ["allow-list"]);
    }

    #[test]
    fn a_coalesced_repeat_is_a_denial() {
        let before = page(&[("a", 1, "forwarding limit")]);
        let after = page(&[("a", 2, "forwarding limit")]);
        assert_eq!(recorded(&before, &after), ["forwarding limit"]);
    }

    #[test]
    fn nothing_new_is_no_denial() {
        let before = page(&[("a", 3, "batches"), ("b", 1, "allow-list")]);
        let after = page(&[("b", 1, "allow-list")]);
        assert!(recorded(&before, &after).is_empty());
    }
}
