//! A `tools/call run_migration` in flight through the gateway, tagged so it can be found
//! again: sent in the background, found under the gate's id in `/pending`, decided, and
//! waited for — the steps the approval-chain procedures and gate-check's lifecycle share.

use std::time::{Duration, Instant};

use hitl_wire::headers;
use tokio::task::JoinHandle;

use super::{
    raw::{Answer, privileged_post, send_raw},
    run::Target,
};
use hitl_lab::requester::bearer;
use hitl_wire::extauth::client::AdminClient;

/// A call sent in the background; it ends with the gateway's answer.
pub type InFlight = JoinHandle<anyhow::Result<Answer>>;

/// How long a parked call takes to show up in `/pending` at most.
pub const LISTING_LIMIT: Duration = Duration::from_secs(30);

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

/// Send a `run_migration` to `version`, with a fresh tag, through the gateway as `sub` in
/// the background; the tag, and the task, which ends with the answer (or [`Answer::Held`]
/// after `patience`).
pub fn spawn_migration(
    target: &Target,
    sub: &str,
    version: &str,
    patience: Duration,
) -> anyhow::Result<(u32, InFlight)> {
    let tag = new_tag();
    let body = tagged_call(tag, version);
    let token = bearer(&target.issuer.mint(sub)?);
    let tag_header = tag.to_string();
    let request = privileged_post(
        &target.gateway,
        &[
            ("authorization", &token),
            (headers::USER_ID, sub),
            (headers::CHECK_ID, &tag_header),
        ],
        &body,
    );
    let endpoint = target.gateway.clone();
    let call = tokio::spawn(async move { send_raw(&endpoint, request.as_bytes(), patience).await });
    Ok((tag, call))
}

/// The id under which the gate holds the call tagged `tag`: from hitl-extauth's `/pending`
/// when there is one (waiting up to [`LISTING_LIMIT`] for it to appear), else the tag itself
/// (what `--decide-cmd` gets as `{id}`; the call carries it in `x-hitl-check-id`).
pub async fn parked_id(target: &Target, tag: u32) -> anyhow::Result<String> {
    let Some(admin) = &target.admin else {
        tokio::time::sleep(Duration::from_millis(500)).await;
        return Ok(tag.to_string());
    };
    let deadline = Instant::now() + LISTING_LIMIT;
    loop {
        if let Some(id) = pending_id(admin, tag).await? {
            return Ok(id);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "call {tag} never showed up in /pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the gate has let go of the call tagged `tag` within `limit`.
pub async fn released(admin: &AdminClient, tag: u32, limit: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + limit;
    loop {
        let gone = !held_for(admin, tag).await?;
        if gone || Instant::now() > deadline {
            return Ok(gone);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the call tagged `tag` is still held: listed in `/pending` with a caller waiting. (An
/// approval request may stay listed after its caller left, marked not waiting: issue #26.)
async fn held_for(admin: &AdminClient, tag: u32) -> anyhow::Result<bool> {
    let needle = tag_needle(tag);
    Ok(admin
        .pending_all()
        .await?
        .pending
        .iter()
        .any(|c| c.body.contains(&needle) && c.request.as_ref().is_none_or(|r| r.waiting)))
}

/// A requester of our own for one call: each gets its own approval request (one request per
/// action, and the requester is part of the action: issue #26), so a check never meets the
/// request, approval or rejection an earlier check left behind.
pub fn fresh_requester(target: &Target) -> String {
    format!("{}-{}", target.requester, new_tag())
}

/// The id of the call tagged `tag` in `/pending`, if it is listed.
async fn pending_id(admin: &AdminClient, tag: u32) -> anyhow::Result<Option<String>> {
    let needle = tag_needle(tag);
    Ok(admin
        .pending_all()
        .await?
        .pending
        .into_iter()
        .find(|c| c.body.contains(&needle))
        .map(|c| c.id))
}

/// How the tag appears in the call's body.
pub fn tag_needle(tag: u32) -> String {
    format!("\"id\":{tag},")
}

/// Wait out the park window: the call, still held, or the answer it got instead.
pub async fn held(target: &Target, call: InFlight) -> anyhow::Result<Result<InFlight, Answer>> {
    tokio::time::sleep(target.park_window).await;
    if call.is_finished() {
        return Ok(Err(call.await??));
    }
    Ok(Ok(call))
}

/// Decide the held call tagged `tag` as `reviewer`: the call, on its way to its answer, or
/// the decider's refusal (the call stopped).
pub async fn decide_held(
    target: &Target,
    call: InFlight,
    tag: u32,
    (approve, reason): (bool, &str),
    reviewer: &str,
) -> anyhow::Result<Result<InFlight, String>> {
    let id = parked_id(target, tag).await?;
    if let Err(why) = target
        .decider
        .decide(&id, approve, reason, reviewer)
        .await?
    {
        call.abort();
        return Ok(Err(why));
    }
    Ok(Ok(call))
}
