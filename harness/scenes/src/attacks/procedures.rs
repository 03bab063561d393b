//! The approval chain's procedures in the catalogue: a requester approving their own call,
//! an approval token spent twice, a decision without the admin credential, a requester only
//! stated to the Check port. Each is a short scene of its own against the gate, checked from
//! the answer and mock-db-mcp's audit.

use std::time::Duration;

use hitl_wire::{approval, headers, mockdb::paths};

use super::{
    calls::{fresh_requester, new_tag, parked_id, spawn_migration, tagged_call},
    check::{added_header, check_over as ask_gate, post, stated_payload, verified_post},
    raw::{Answer, privileged_post, send_raw, short},
    run::{AttackReport, Target, check, since},
};

/// A requester tries to approve their own call in the reviewer UI: refused. Then another
/// reviewer approves and it runs.
pub async fn self_approval(target: &Target, report: &mut AttackReport) -> anyhow::Result<()> {
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
    // The requester is the reviewer themself.
    let (tag, call) = spawn_migration(
        target,
        reviewer,
        &before.schema_version,
        Duration::from_secs(120),
    )?;
    let id = parked_id(target, tag).await?;
    let (status, text) = ui.decide(&id, true, "my own change, trust me").await?;
    check(
        report,
        status == 403 && text.contains("another reviewer must approve"),
        format!("the requester's own approval is refused (HTTP {status})"),
    );
    let still = still_pending(admin, &id).await?;
    check(
        report,
        still,
        "the call is still waiting after the refused self-approval",
    );
    match target
        .decider
        .decide(&id, true, "second pair of eyes", "platform-oncall")
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
pub async fn replay_approval(target: &Target, report: &mut AttackReport) -> anyhow::Result<()> {
    let Some(endpoint) = target.check_port(report) else {
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
    let request = verified_post(
        paths::PRIVILEGED_MCP,
        &body,
        &target.issuer.mint(&fresh_requester(target))?,
        &[(headers::CHECK_ID, &tag.to_string())],
    );
    let (endpoint, tls) = (endpoint.clone(), target.ext_authz_tls.clone());
    let pending = tokio::spawn(async move { ask_gate(&endpoint, tls.as_ref(), request).await });
    let id = parked_id(target, tag).await?;
    if let Err(why) = target
        .decider
        .decide(&id, true, "approve once", "platform-reviewer")
        .await?
    {
        check(report, false, format!("could not approve: {why}"));
        return Ok(());
    }
    let response = tokio::time::timeout(Duration::from_secs(60), pending).await???;
    let Some(token) = added_header(&response, approval::HEADER) else {
        report.not_applicable.push(format!(
            "this gate adds no `{}` token to an approval",
            approval::HEADER
        ));
        return Ok(());
    };
    spend_twice(target, &body, token, report).await
}

/// Spend the approval `token` for `body` at the backend once (it runs), then again (refused
/// as `replayed`, nothing runs).
async fn spend_twice(
    target: &Target,
    body: &str,
    token: String,
    report: &mut AttackReport,
) -> anyhow::Result<()> {
    let send = |token: String| {
        let backend = target.backend.clone();
        let request = privileged_post(&backend, &[(approval::HEADER, &token)], body);
        async move { send_raw(&backend, request.as_bytes(), Duration::from_secs(30)).await }
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
pub async fn decide_without_credentials(
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
    let (tag, call) = spawn_migration(
        target,
        &fresh_requester(target),
        "v4",
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
    let still = still_pending(admin, &id).await?;
    check(report, still, "the call is still waiting");
    // Close it as a reviewer would.
    if let Err(why) = target.decider.clean_up(&id).await? {
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

/// A Check straight to the gate's port that names the requester only in `metadata_context`
/// (the JWT payload a gateway would state), with no token: denied at once, nothing parks,
/// nothing runs. (Before the gate verified tokens itself, this parked as the named requester.)
pub async fn stated_requester(target: &Target, report: &mut AttackReport) -> anyhow::Result<()> {
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    let Some(endpoint) = target.check_port(report) else {
        return Ok(());
    };
    let before = target.db.state().await?;
    let tag = new_tag();
    let body = tagged_call(tag, &before.schema_version);
    let mut request = post(
        paths::PRIVILEGED_MCP,
        &body,
        &[(headers::CHECK_ID, &tag.to_string())],
    );
    if let Some(attributes) = request.attributes.as_mut() {
        attributes.context_extensions = [("route".to_owned(), "privileged-mcp".to_owned())].into();
        attributes.metadata_context = Some(stated_payload(&target.requester));
    }
    let (endpoint, tls) = (endpoint.clone(), target.ext_authz_tls.clone());
    let pending = tokio::spawn(async move { ask_gate(&endpoint, tls.as_ref(), request).await });
    match tokio::time::timeout(target.park_window, pending).await {
        Ok(answer) => {
            let denied = match answer??.http_response {
                Some(HttpResponse::DeniedResponse(denied)) => Some(denied.body),
                _ => None,
            };
            report.observed = format!("denied: {}", denied.is_some());
            check(report, denied.is_some(), "the Check is denied at once");
            if target.ours {
                check(
                    report,
                    denied.is_some_and(|b| b.contains("no verified requester")),
                    "the reason: no verified requester",
                );
            }
        }
        Err(_) => {
            report.observed = "parked".into();
            check(
                report,
                false,
                "the Check parked: a stated requester named someone",
            );
            let id = parked_id(target, tag).await?;
            let _ = target.decider.clean_up(&id).await?;
        }
    }
    let after = target.db.state().await?;
    let (executed, _) = since(&before, &after);
    check(report, executed.is_empty(), "nothing executed");
    Ok(())
}

/// Whether call `id` is still on the gate's queue (however long the queue).
async fn still_pending(
    admin: &hitl_wire::extauth::client::AdminClient,
    id: &str,
) -> anyhow::Result<bool> {
    Ok(admin
        .pending_all()
        .await?
        .pending
        .iter()
        .any(|c| c.id == id))
}
