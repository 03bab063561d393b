//! Step 4's decisions and answers: which parked call is whose (by its tag), every call
//! decided (even approved, odd rejected with its tag as the reason), and each client's answer
//! checked to be its own.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::StreamExt as _;
use hitl_wire::extauth::client::AdminClient;
use hitl_wire::extauth::{DecideRequest, DenyBody};
use tokio::task::JoinHandle;

use super::{DECIDE_CONCURRENCY, DECIDE_PATIENCE, drain_patience};
use crate::{
    Progress,
    mcp::{Reply, TAG_HEADER},
};

/// Which parked call is whose: call index → parked-call id; and the calls without a tag.
pub(super) async fn parked_ids(
    admin: &AdminClient,
) -> anyhow::Result<(HashMap<usize, String>, Vec<String>)> {
    let pending = admin.pending_all().await?.pending;
    let mut parked_ids: HashMap<usize, String> = HashMap::with_capacity(pending.len());
    let mut problems = Vec::new();
    for call in pending {
        match call.headers.get(TAG_HEADER).and_then(|t| untag(t)) {
            Some(i) if parked_ids.insert(i, call.id.clone()).is_none() => {}
            _ => problems.push(format!(
                "parked call {} has a missing or repeated tag",
                call.id
            )),
        }
    }
    Ok((parked_ids, problems))
}

/// The decisions: when they began, how long they all took, and the ones that failed.
pub(super) struct Decided {
    pub(super) started: Instant,
    pub(super) took: Duration,
    pub(super) errors: Vec<String>,
}

/// Decide them all: even approved, odd rejected with the tag as the reason.
pub(super) async fn decide_all(
    admin: &AdminClient,
    parked_ids: &HashMap<usize, String>,
) -> Decided {
    eprintln!("    deciding {} parked calls…", parked_ids.len());
    let started = Instant::now();
    let errors: Vec<String> = futures::stream::iter(parked_ids.iter())
        .map(|(&i, id)| {
            let admin = admin.clone();
            async move {
                let decision = DecideRequest {
                    id_token: None,
                    approved: approved(i),
                    reason: if approved(i) { String::new() } else { tag(i) },
                    reviewer: Some(crate::mcp::REVIEWER.into()),
                };
                match tokio::time::timeout(DECIDE_PATIENCE, admin.decide(id, &decision)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("decide {}: {e:#}", tag(i))),
                    Err(_) => Err(format!(
                        "decide {}: no answer in {DECIDE_PATIENCE:?}",
                        tag(i)
                    )),
                }
            }
        })
        .buffer_unordered(DECIDE_CONCURRENCY)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    Decided {
        started,
        took: started.elapsed(),
        errors,
    }
}

/// Every client's answer, counted.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) approved_ok: usize,
    pub(super) rejected_ok: usize,
    pub(super) lost: usize,
    pub(super) crossed: usize,
    /// From the first decision to the last answer.
    pub(super) drain: Duration,
    pub(super) problems: Vec<String>,
}

/// Collect every client's answer (bounded by [`drain_patience`]) and check it is its own.
pub(super) async fn drain(
    handles: Vec<JoinHandle<anyhow::Result<Reply>>>,
    parked_ids: &HashMap<usize, String>,
    deciding: Instant,
    calls: usize,
) -> Tally {
    let mut tally = Tally::default();
    let mut last_answer = deciding;
    let mut drain_progress = Progress::new("draining", calls);
    let drain_deadline = tokio::time::Instant::now() + drain_patience(calls);
    for (i, handle) in handles.into_iter().enumerate() {
        let reply = match tokio::time::timeout_at(drain_deadline, handle).await {
            Err(_) => {
                tally.lost += 1;
                tally.problems.push(format!(
                    "{}: no answer within {:?} of the decisions",
                    tag(i),
                    drain_patience(calls)
                ));
                continue;
            }
            Ok(Ok(Ok(reply))) => reply,
            Ok(Ok(Err(e))) => {
                tally.lost += 1;
                tally.problems.push(format!("{}: {e:#}", tag(i)));
                continue;
            }
            Ok(Err(e)) => {
                tally.lost += 1;
                tally
                    .problems
                    .push(format!("{}: client task failed: {e}", tag(i)));
                continue;
            }
        };
        last_answer = last_answer.max(reply.done);
        check(&mut tally, i, parked_ids.get(&i), &reply, deciding);
        drain_progress.tick(i + 1);
    }
    drain_progress.finish();
    tally.drain = last_answer - deciding;
    tally
}

/// Count call `i`'s `reply`: answered before any decision (lost), its own (approved or
/// rejected), or someone else's (crossed).
fn check(
    tally: &mut Tally,
    i: usize,
    parked_id: Option<&String>,
    reply: &Reply,
    deciding: Instant,
) {
    if reply.done < deciding {
        tally.lost += 1;
        tally.problems.push(format!(
            "{}: answered before any decision: HTTP {} {}",
            tag(i),
            reply.status,
            reply.body
        ));
        return;
    }
    match own_answer(i, parked_id, reply) {
        Ok(true) => tally.approved_ok += 1,
        Ok(false) => tally.rejected_ok += 1,
        Err(e) => {
            tally.crossed += 1;
            tally.problems.push(format!("{}: {e:#}", tag(i)));
        }
    }
}

/// Call `i`'s decision: even approved, odd rejected.
fn approved(i: usize) -> bool {
    i.is_multiple_of(2)
}

pub(super) fn tag(i: usize) -> String {
    format!("capacity-{i}")
}

fn untag(tag: &str) -> Option<usize> {
    tag.strip_prefix("capacity-")?.parse().ok()
}

/// Whether `reply` is call `i`'s own decision: `Ok(true)` its tool result (approved),
/// `Ok(false)` its own rejection, `Err` anything else.
fn own_answer(i: usize, parked_id: Option<&String>, reply: &Reply) -> anyhow::Result<bool> {
    if approved(i) {
        reply.rpc_result(i as u64).context("approved")?;
        return Ok(true);
    }
    anyhow::ensure!(
        reply.status == 403,
        "rejected, but got HTTP {}: {}",
        reply.status,
        reply.body
    );
    let deny: DenyBody = serde_json::from_str(&reply.body)
        .with_context(|| format!("rejected, but the 403 is not a deny body: {}", reply.body))?;
    anyhow::ensure!(
        deny.reason == tag(i) && deny.id.as_ref() == parked_id,
        "rejected, but with someone else's decision: {}",
        reply.body
    );
    Ok(false)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;

    fn reply(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            took: Duration::ZERO,
            done: Instant::now(),
        }
    }

    #[test]
    fn tags_round_trip() {
        assert_eq!(untag(&tag(42)), Some(42));
        assert_eq!(untag("release-42"), None);
    }

    #[test]
    fn an_approved_call_needs_its_own_result() {
        let ok = reply(200, json!({"jsonrpc": "2.0", "id": 4, "result": {}}));
        assert!(own_answer(4, None, &ok).unwrap());
        assert!(own_answer(6, None, &ok).is_err(), "someone else's result");
        let denied = reply(403, json!({"approved": false, "reason": "capacity-4"}));
        assert!(own_answer(4, None, &denied).is_err());
    }

    #[test]
    fn a_rejected_call_needs_its_own_reason_and_id() {
        let id = "p-3".to_owned();
        let own = reply(
            403,
            json!({"approved": false, "reason": "capacity-3", "id": "p-3"}),
        );
        assert!(!own_answer(3, Some(&id), &own).unwrap());
        let other = reply(
            403,
            json!({"approved": false, "reason": "capacity-5", "id": "p-3"}),
        );
        assert!(own_answer(3, Some(&id), &other).is_err());
        let other_id = reply(
            403,
            json!({"approved": false, "reason": "capacity-3", "id": "p-5"}),
        );
        assert!(own_answer(3, Some(&id), &other_id).is_err());
        let released = reply(200, json!({"jsonrpc": "2.0", "id": 3, "result": {}}));
        assert!(own_answer(3, Some(&id), &released).is_err());
    }
}
