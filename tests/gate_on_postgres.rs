//! The gate with its store on PostgreSQL (issue #27, one gate process for now), through each
//! real gateway, against a real PostgreSQL server of the test's own under `target/`
//! (Debian's `postgresql`): an approval request outlives a kill -9 of the gate and its retry
//! runs once; with the server gone every gated call is denied (fail closed) and `/readyz`
//! says why, and when it is back the gate goes on by itself, nothing lost.
//!
//! Needs the built binaries, Envoy and agentgateway, as `extauth_gate` does, and PostgreSQL.

use std::time::Duration;

use hitl_lab::postgres::Server;
use hitl_lab_tests::{
    extauth::PATIENCE,
    gate::{Gate, migrate},
    through_both_gateways,
};
use hitl_wire::{
    extauth::{HistoryQuery, Outcome},
    mockdb::paths,
};

const PRIVILEGED: &str = paths::PRIVILEGED_MCP;

/// A PostgreSQL server for `test`, and the gate's store on it.
async fn gate_on_postgres(
    test: &str,
    gateway: hitl_lab::gateway::Gateway,
) -> anyhow::Result<(Server, Gate)> {
    let dir = hitl_lab_tests::scratch_dir(&format!("{test}-{gateway}-pg"));
    let server = Server::start(&dir.join("cluster"))?;
    let password_file = dir.join("store-password");
    server.password_file(&password_file)?;
    let url = server.url("postgres");
    let gate = Gate::start(test, gateway, move |o| {
        o.postgres(url.clone(), password_file.clone())
    })
    .await?;
    Ok((server, gate))
}

/// The gate's `/readyz`: status and text.
async fn readyz(gate: &Gate) -> anyhow::Result<(u16, String)> {
    let url = format!(
        "{}{}",
        gate.extauth.options.admin_url(),
        hitl_wire::extauth::paths::READYZ
    );
    let reply = reqwest::get(url).await?;
    Ok((reply.status().as_u16(), reply.text().await?))
}

through_both_gateways! {
async fn on_postgres_an_open_request_outlives_a_kill_9_and_its_retry_runs_once(gateway) {
    let (_server, mut gate) = gate_on_postgres("pg_restart", gateway).await?;
    let held = gate.spawn_post(PRIVILEGED, migrate(1, "v3"));
    let card = gate.extauth.wait_pending(1).await?.remove(0);
    gate.extauth.crash_and_restart().await?;
    let reply = tokio::time::timeout(PATIENCE, held).await???;
    assert_eq!(reply.status, 403, "the held call fails closed: {reply:?}");

    let pending = gate.extauth.wait_pending(1).await?;
    assert_eq!(pending[0].id, card.id, "the card survived the crash");
    let history = gate.extauth.history(&HistoryQuery::default()).await?;
    assert_eq!(history.items[0].outcome, Outcome::Lost);
    gate.extauth.decide(&card.id, true, "ok", "bob").await?;
    let retry = gate.post(PRIVILEGED, migrate(2, "v3")).await?;
    assert_eq!(retry.status, 200, "{retry:?}");
    assert_eq!(gate.db.state().await?.schema_version, "v3");
    let again = gate.spawn_post(PRIVILEGED, migrate(3, "v3"));
    let next = gate.extauth.wait_pending(1).await?.remove(0);
    assert_ne!(next.id, card.id, "the approval ran once");
    again.abort();
    Ok(())
}
}

through_both_gateways! {
async fn with_postgres_gone_every_gated_call_is_denied_and_the_gate_comes_back(gateway) {
    let (mut server, gate) = gate_on_postgres("pg_down", gateway).await?;
    let first = gate.spawn_post(PRIVILEGED, migrate(1, "v3"));
    let card = gate.extauth.wait_pending(1).await?.remove(0);
    gate.extauth.decide(&card.id, true, "ok", "bob").await?;
    assert_eq!(tokio::time::timeout(PATIENCE, first).await???.status, 200);

    assert_eq!(readyz(&gate).await?.0, 200);
    server.kill();
    let (status, why) = readyz(&gate).await?;
    assert_eq!(status, 503, "not ready while the store is gone: {why}");
    assert!(why.contains("gated calls are denied"), "{why}");
    for id in 2..4 {
        let denied = tokio::time::timeout(PATIENCE, gate.post(PRIVILEGED, migrate(id, "v4"))).await??;
        assert_eq!(denied.status, 403, "fail closed while the store is gone: {denied:?}");
        assert!(denied.body.contains("could not be recorded"), "{}", denied.body);
    }
    assert_eq!(gate.db.state().await?.schema_version, "v3");

    server.restart()?;
    let mut parked = None;
    for id in 4..40 {
        let call = gate.spawn_post(PRIVILEGED, migrate(id, "v4"));
        match tokio::time::timeout(Duration::from_secs(2), gate.extauth.wait_pending(1)).await {
            Ok(Ok(mut cards)) => {
                parked = Some((cards.remove(0), call));
                break;
            }
            _ => {
                call.abort();
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    let (card, call) = parked.expect("the gate parks again once PostgreSQL is back");
    assert_eq!(readyz(&gate).await?.0, 200, "ready again");
    gate.extauth.decide(&card.id, true, "ok", "bob").await?;
    assert_eq!(tokio::time::timeout(PATIENCE, call).await???.status, 200);
    assert_eq!(gate.db.state().await?.schema_version, "v4");
    let history = gate.extauth.history(&HistoryQuery::default()).await?;
    assert!(
        history.items.iter().any(|r| r.call.id == card.id && r.outcome == Outcome::Approved),
        "the approval made before the outage and the one after are both on the record"
    );
    Ok(())
}
}
