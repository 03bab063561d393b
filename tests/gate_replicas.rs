//! The gate as two replicas on one PostgreSQL store (issue #27), behind each real gateway
//! balancing its Checks over both, in front of the real mock-db-mcp, on a PostgreSQL server
//! of the test's own under `target/`. Twenty calls are held across the replicas; then one
//! replica is killed (five rounds), or PostgreSQL is stopped and started again under load. In
//! each: 0 calls run without an approval, 0 run twice, 0 answered attempts missing from
//! `/history`.
//!
//! Every call is `run_migration` to the version in place (mock-db-mcp audits each run with its
//! approval), from a requester of its own: one action, one approval request, per caller.
//!
//! Needs the built binaries, Envoy and agentgateway, as `extauth_gate` does, and PostgreSQL.

use std::{collections::BTreeMap, time::Duration};

use hitl_lab_tests::{
    Reply,
    extauth::{ExtAuth, PATIENCE},
    gate::{Gate, migrate},
    through_both_gateways,
    wait::eventually,
};
use hitl_wire::{
    extauth::{HistoryQuery, Outcome, ParkedCall},
    mockdb::paths,
};

const PRIVILEGED: &str = paths::PRIVILEGED_MCP;
/// Calls held at once.
const HELD: usize = 20;

type Call = tokio::task::JoinHandle<anyhow::Result<Reply>>;

/// The requester of call `i` of round `round`.
fn requester(round: usize, i: usize) -> String {
    format!("user-{round}-{i}")
}

/// Two replicas behind `gateway`; each requester may hold one call.
async fn two_replicas(test: &str, gateway: hitl_lab::gateway::Gateway) -> anyhow::Result<Gate> {
    Gate::start_replicas(test, gateway, 2, |o| o.max_parked_per_requester(2)).await
}

/// Hold [`HELD`] calls of round `round` (the gateway spreads them over the replicas): the
/// calls, and their request ids by requester, once every card shows a caller waiting.
async fn hold(gate: &Gate, round: usize) -> anyhow::Result<(Vec<Call>, BTreeMap<String, String>)> {
    let calls = (0..HELD)
        .map(|i| gate.spawn_post_as(&requester(round, i), PRIVILEGED, migrate(i as u64, "v3")))
        .collect();
    let cards = cards_of(gate, round, waiting).await?;
    Ok((calls, cards))
}

fn waiting(card: &ParkedCall) -> bool {
    card.request.as_ref().is_some_and(|r| r.waiting)
}

/// Round `round`'s [`HELD`] cards on replica 1's `/pending`, once `ready` holds for each:
/// request id by requester.
async fn cards_of(
    gate: &Gate,
    round: usize,
    ready: impl Fn(&ParkedCall) -> bool,
) -> anyhow::Result<BTreeMap<String, String>> {
    let prefix = format!("user-{round}-");
    eventually(&format!("{HELD} cards of round {round}"), || async {
        let cards: BTreeMap<String, String> = gate
            .extauth
            .pending()
            .await?
            .into_iter()
            .filter(|c| {
                c.requester
                    .as_deref()
                    .is_some_and(|r| r.starts_with(&prefix))
                    && ready(c)
            })
            .map(|c| (c.requester.clone().unwrap_or_default(), c.id))
            .collect();
        Ok((cards.len() == HELD).then_some(cards))
    })
    .await
}

/// The calls that have answered, and those still held.
async fn answered(calls: Vec<Call>) -> anyhow::Result<(Vec<(usize, Reply)>, Vec<(usize, Call)>)> {
    let (mut done, mut held) = (Vec::new(), Vec::new());
    for (i, call) in calls.into_iter().enumerate() {
        if call.is_finished() {
            done.push((i, call.await??));
        } else {
            held.push((i, call));
        }
    }
    Ok((done, held))
}

/// Decide every request of `ids` (approve), alternating the replica the reviewer reaches.
async fn approve_all(gate: &Gate, ids: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let replicas: Vec<&ExtAuth> = gate.all_replicas().collect();
    for (n, id) in ids.values().enumerate() {
        replicas[n % replicas.len()]
            .decide(id, true, "replicas test", "bob")
            .await?;
    }
    Ok(())
}

/// The three zeros over `ids` (request id by requester): each approval ran exactly once, no
/// call ran without an approval, and `/history` holds `approved` attempts for all of them and
/// `lost` ones for the `lost` requesters.
async fn three_zeros(
    gate: &Gate,
    ids: &BTreeMap<String, String>,
    lost: &[String],
) -> anyhow::Result<()> {
    let state = gate.db.state().await?;
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for entry in state.audit.iter().filter(|e| e.executed()) {
        let id = entry
            .approval_id
            .clone()
            .expect("no call runs without an approval");
        *runs.entry(id).or_default() += 1;
    }
    for (who, id) in ids {
        assert_eq!(
            runs.get(id),
            Some(&1),
            "{who}'s approval {id} ran exactly once: {runs:?}"
        );
    }
    let history = eventually("every attempt on the record", || async {
        let page = gate.extauth.history(&HistoryQuery::latest(500)).await?;
        let of = |who: &str, outcome: Outcome| {
            page.items
                .iter()
                .filter(|r| r.call.requester.as_deref() == Some(who) && r.outcome == outcome)
                .count()
        };
        let complete = ids.keys().all(|who| of(who, Outcome::Approved) >= 1)
            && lost.iter().all(|who| of(who, Outcome::Lost) == 1);
        Ok(complete.then_some(page))
    })
    .await?;
    assert!(history.items.iter().all(|r| {
        r.outcome != Outcome::Lost
            || r.call
                .requester
                .as_ref()
                .is_some_and(|who| lost.contains(who))
    }));
    Ok(())
}

through_both_gateways! {
/// kill -9 of one replica with twenty calls held across both, five rounds: the killed one's
/// callers are refused at once (fail closed), their requests stay open, their retries through
/// the surviving replica attach, the restarted replica closes its previous life's attempts as
/// lost, and every approval runs exactly once.
async fn killing_a_replica_with_20_calls_held_runs_nothing_twice_and_loses_nothing(gateway) {
    let mut gate = two_replicas("replicas_kill", gateway).await?;
    let mut all_lost = Vec::new();
    for round in 0..5 {
        let (calls, ids) = hold(&gate, round).await?;
        gate.replicas[0].kill().await?;
        // The replica's callers are answered by the gateway at once; the others stay held.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (cut, mut held) = answered(calls).await?;
        assert!(cut.iter().all(|(_, r)| r.status == 403), "round {round}: fail closed: {cut:?}");
        all_lost.extend(cut.iter().map(|(i, _)| requester(round, *i)));
        // Each cut call, sent again until it reaches the live replica, attaches to its request.
        for (i, _) in &cut {
            held.push((*i, retry_until_held(&gate, round, *i).await?));
        }
        cards_of(&gate, round, waiting).await?;
        gate.replicas[0].restart().await?;
        approve_all(&gate, &ids).await?;
        for (i, call) in held {
            let reply = tokio::time::timeout(PATIENCE, call).await???;
            assert_eq!(reply.status, 200, "round {round}, call {i}: {reply:?}");
        }
        three_zeros(&gate, &ids, &all_lost).await?;
    }
    Ok(())
}
}

/// Send call `i` of round `round` again until it is held by a live replica (the gateway may
/// first pick the dead one: refused, nothing recorded).
async fn retry_until_held(gate: &Gate, round: usize, i: usize) -> anyhow::Result<Call> {
    for _ in 0..20 {
        let call = gate.spawn_post_as(
            &requester(round, i),
            PRIVILEGED,
            migrate(100 + i as u64, "v3"),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        if !call.is_finished() {
            return Ok(call);
        }
        let refused = call.await??;
        assert_eq!(refused.status, 403, "{refused:?}");
    }
    anyhow::bail!("call {i} of round {round} never reached the live replica")
}

through_both_gateways! {
/// PostgreSQL stopped under load and started again: while it is away every new gated call is
/// denied and both replicas say not ready; once it is back both recover by themselves, the
/// twenty calls held all along are approved and run exactly once, and the denials made
/// meanwhile are on the record.
async fn postgres_stopped_and_restarted_under_load_runs_nothing_twice_and_loses_nothing(gateway) {
    let mut gate = two_replicas("replicas_pg", gateway).await?;
    let (calls, ids) = hold(&gate, 0).await?;
    gate.postgres.as_mut().expect("the replicas' server").kill();
    let mut denied = Vec::new();
    for i in 0..10 {
        let who = requester(1, i);
        let reply = gate.spawn_post_as(&who, PRIVILEGED, migrate(i as u64, "v3")).await??;
        assert_eq!(reply.status, 403, "fail closed while PostgreSQL is away: {reply:?}");
        denied.push(who);
    }
    gate.postgres.as_mut().expect("the replicas' server").restart()?;
    for replica in gate.all_replicas() {
        eventually("ready again", || async {
            let url = format!("{}{}", replica.options.admin_url(), hitl_wire::extauth::paths::READYZ);
            Ok((reqwest::get(url).await?.status() == 200).then_some(()))
        })
        .await?;
    }
    approve_all(&gate, &ids).await?;
    for call in calls {
        let reply = tokio::time::timeout(PATIENCE, call).await???;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    three_zeros(&gate, &ids, &[]).await?;
    let history = gate.extauth.history(&HistoryQuery::latest(500)).await?;
    for who in &denied {
        assert!(
            history.items.iter().any(|r| r.call.requester.as_deref() == Some(who.as_str())
                && r.outcome == Outcome::Denied),
            "the denial of {who} while PostgreSQL was away is on the record"
        );
    }
    Ok(())
}
}
