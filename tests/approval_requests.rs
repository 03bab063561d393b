//! Approval requests (issue #26) on a real hitl-extauth behind a real gateway, in front of the
//! real mock-db-mcp: open requests survive kill -9 (five times in a row, with callers held
//! and callers gone), a decision made long after the call lets the retry run exactly once,
//! and an approval nobody uses within `APPROVAL_WINDOW` expires.
//!
//! Needs what `tests/extauth_gate.rs` needs: the built binaries, Envoy and agentgateway.

use std::{collections::BTreeMap, time::Duration};

use hitl_lab_tests::{
    Reply,
    extauth::PATIENCE,
    gate::{Gate, tools_call},
    through_both_gateways,
    wait::eventually,
};
use hitl_wire::{
    extauth::{DenyBody, HistoryQuery, Outcome, ParkedCall},
    mockdb::{paths, tools},
};
use serde_json::json;

const PRIVILEGED: &str = paths::PRIVILEGED_MCP;

/// Requests opened per round: the first [`HELD`] with their caller held at the kill.
const PER_ROUND: u64 = 4;
const HELD: u64 = 2;

/// The arguments of action `n`: a multiple of 100 is `run_migration` to v3 (mock-db-mcp audits
/// each run with its approval), any other a read of its own SQL.
fn args(n: u64) -> serde_json::Value {
    if n.is_multiple_of(100) {
        json!({ "version": "v3" })
    } else {
        json!({ "sql": format!("SELECT {n} AS request") })
    }
}

/// Action `n` sent as JSON-RPC id `id`.
fn call(n: u64, id: u64) -> String {
    let tool = if n.is_multiple_of(100) {
        tools::RUN_MIGRATION
    } else {
        tools::CLUSTER_DB_QUERY
    };
    tools_call(id, tool, args(n))
}

/// The card in `/pending` of action `n`, once `ready` holds for it.
async fn card_for(
    gate: &Gate,
    n: u64,
    ready: impl Fn(&ParkedCall) -> bool,
) -> anyhow::Result<ParkedCall> {
    let args = args(n);
    eventually(&format!("a card for {args}"), || async {
        let pending = gate.extauth.pending().await?;
        Ok(pending
            .into_iter()
            .find(|c| c.tool_args == args && ready(c)))
    })
    .await
}

fn waiting(card: &ParkedCall) -> bool {
    card.request.as_ref().is_some_and(|r| r.waiting)
}

fn attempts(card: &ParkedCall) -> u64 {
    card.request.as_ref().map_or(0, |r| r.attempts)
}

/// How many times mock-db-mcp ran a call under approval `id`.
async fn runs_under(gate: &Gate, id: &str) -> anyhow::Result<usize> {
    let state = gate.db.state().await?;
    Ok(state
        .audit
        .iter()
        .filter(|e| e.executed() && e.approval_id.as_deref() == Some(id))
        .count())
}

/// One round: open [`PER_ROUND`] requests (the first [`HELD`] with their caller held, the rest
/// left by a caller who hung up); the held calls, and the SQL of each request by id.
async fn open_requests(
    gate: &Gate,
    round: u64,
) -> anyhow::Result<(
    Vec<tokio::task::JoinHandle<anyhow::Result<Reply>>>,
    Vec<String>,
)> {
    let mut held = Vec::new();
    let mut ids = Vec::new();
    for i in 0..PER_ROUND {
        let n = round * 100 + i;
        if i < HELD {
            held.push(gate.spawn_post(PRIVILEGED, call(n, n)));
            ids.push(card_for(gate, n, waiting).await?.id);
        } else {
            let socket = gate
                .raw_connect(gate.raw_post(&call(n, n)).as_bytes())
                .await?;
            card_for(gate, n, waiting).await?;
            drop(socket);
            ids.push(card_for(gate, n, |c| !waiting(c)).await?.id);
        }
    }
    Ok((held, ids))
}

through_both_gateways! {
/// kill -9 of hitl-extauth, five times in a row, each time with requests open (some callers
/// held, some gone): after each restart every open request is still in `/pending` with its
/// attempts and nobody waiting, each held attempt is on the record as cut (`lost`) and its
/// caller was refused, and the retry of one attaches to its request and, once approved, runs
/// exactly once.
async fn no_open_request_is_lost_to_kill_9_five_times(gateway) {
    let mut gate =
        Gate::start("approval_requests_restart", gateway, |o| o.max_parked_per_requester(100))
            .await?;
    // Every request still open: id → attempts.
    let mut open: BTreeMap<String, u64> = BTreeMap::new();
    for round in 1..=5 {
        let (held, ids) = open_requests(&gate, round).await?;
        for card in gate.extauth.pending().await? {
            open.insert(card.id.clone(), attempts(&card));
        }
        assert_eq!(open.len() as u64, round * (PER_ROUND - 1) + 1, "round {round}");
        gate.extauth.crash_and_restart().await?;

        for call in held {
            let reply = tokio::time::timeout(PATIENCE, call).await???;
            assert_eq!(reply.status, 403, "round {round}: a held call fails closed: {reply:?}");
        }
        let after = gate.extauth.wait_pending(open.len()).await?;
        let listed: BTreeMap<String, u64> =
            after.iter().map(|c| (c.id.clone(), attempts(c))).collect();
        assert_eq!(listed, open, "round {round}: 0 open requests lost, attempts kept");
        assert!(after.iter().all(|c| !waiting(c)), "round {round}: nobody waits after the kill");
        let history = gate.extauth.history(&HistoryQuery::latest(500)).await?;
        for (i, id) in ids.iter().enumerate() {
            let cut = history
                .items
                .iter()
                .any(|r| &r.call.id == id && r.outcome == Outcome::Lost);
            assert_eq!(cut, (i as u64) < HELD, "round {round}: request {id} cut iff held");
        }

        // The retry of a held one attaches to its request and, approved, runs exactly once.
        let (id, n) = (&ids[0], round * 100);
        let retry = gate.spawn_post(PRIVILEGED, call(n, n + 50));
        let card = card_for(&gate, n, |c| waiting(c) && attempts(c) == open[id] + 1).await?;
        assert_eq!(&card.id, id, "round {round}: the retry attaches to its request");
        gate.extauth.decide(id, true, "after the restart", "bob").await?;
        let reply = tokio::time::timeout(PATIENCE, retry).await???;
        assert_eq!(reply.status, 200, "round {round}: {reply:?}");
        assert_eq!(runs_under(&gate, id).await?, 1, "round {round}: ran once");
        open.remove(id);
        assert_eq!(gate.extauth.wait_pending(open.len()).await?.len(), open.len());
    }
    Ok(())
}
}

through_both_gateways! {
/// A decision made long after the call (the hold is 1 s, the request open for an hour): the
/// caller was told the request is still open and its id; the reviewer approves later; the
/// retry, under another JSON-RPC id, runs exactly once, and the next send is a new request.
async fn a_decision_long_after_the_call_lets_the_retry_run_once(gateway) {
    let gate = Gate::start("approval_requests_late", gateway, |o| {
        o.park_timeout(Duration::from_secs(1))
            .approval_clocks(Duration::from_secs(3600), Duration::from_secs(900))
    })
    .await?;
    let first = gate.post(PRIVILEGED, call(100, 1)).await?;
    let denied: DenyBody = serde_json::from_str(&first.body)?;
    let id = denied.id.clone().expect("the denial names the open request");
    assert!(denied.reason.contains(&id), "{}", denied.reason);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let card = card_for(&gate, 100, |c| !waiting(c)).await?;
    assert_eq!(card.id, id, "still open, with nobody waiting");
    gate.extauth.decide(&id, true, "decided later", "bob").await?;

    let retry = gate.post(PRIVILEGED, call(100, 2)).await?;
    assert_eq!(retry.status, 200, "{retry:?}");
    assert_eq!(runs_under(&gate, &id).await?, 1);
    let again = gate.spawn_post(PRIVILEGED, call(100, 3));
    let card = card_for(&gate, 100, |_| true).await?;
    assert_ne!(card.id, id, "a used approval passes nothing more");
    again.abort();
    assert_eq!(runs_under(&gate, &id).await?, 1);
    assert_eq!(gate.db.state().await?.schema_version, "v3");
    Ok(())
}
}

through_both_gateways! {
/// An approval nobody uses within `APPROVAL_WINDOW` expires: the retry after it is a new
/// request, and nothing runs.
async fn an_approval_unused_within_the_window_expires(gateway) {
    let gate = Gate::start("approval_requests_window", gateway, |o| {
        o.park_timeout(Duration::from_secs(1))
            .approval_clocks(Duration::from_secs(3600), Duration::from_secs(1))
    })
    .await?;
    let first = gate.post(PRIVILEGED, call(100, 1)).await?;
    let id = serde_json::from_str::<DenyBody>(&first.body)?
        .id
        .expect("the denial names the open request");
    gate.extauth.decide(&id, true, "use it soon", "bob").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let late = gate.spawn_post(PRIVILEGED, call(100, 2));
    let card = card_for(&gate, 100, waiting).await?;
    assert_ne!(card.id, id, "the expired approval passes nothing: a new request");
    gate.extauth.decide(&card.id, false, "closing", "bob").await?;
    let reply = tokio::time::timeout(PATIENCE, late).await???;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(runs_under(&gate, &id).await?, 0);
    assert_eq!(gate.db.state().await?.schema_version, "v2", "nothing ran");
    Ok(())
}
}
