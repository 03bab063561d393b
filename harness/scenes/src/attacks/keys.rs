//! The approval policy's two keys from an attacker's side (issue #28): a migration down to
//! v1 parks under a rule that needs two distinct approvals; the attacker then tries to make
//! one reviewer count twice (again, or under a look-alike name), to decide from outside the
//! rule's groups, as a reviewer the policy does not know, or with groups the request asserts
//! itself (headers, a body field). Each must leave the card as it was and the call waiting;
//! the call is then rejected by an eligible reviewer and never runs.

use std::time::Duration;

use hitl_wire::{
    extauth::{
        DecideAnswer, DecideRequest,
        client::{AdminClient, AdminError},
        paths,
    },
    policy::{PolicyView, RuleView},
};

use super::{
    calls::{InFlight, fresh_requester, parked_id, spawn_migration},
    raw::{Answer, short},
    run::{AttackReport, Target, check},
};

/// Which attempt on the two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysAttack {
    /// The same reviewer approves twice, then again under another spelling.
    SameReviewerTwice,
    /// A reviewer in none of the rule's groups approves.
    OutsideTheGroups,
    /// After one approval, a look-alike of that reviewer's name (a Cyrillic letter) approves.
    LookAlikeSecondKey,
    /// A decision asserting groups in headers and in its body.
    ForgedGroups,
    /// The admin API's holder asserts a reviewer the policy does not know.
    UnknownReviewer,
}

impl KeysAttack {
    /// Each attack's `kind` in the catalogue.
    pub const KINDS: [(&'static str, KeysAttack); 5] = [
        ("same-reviewer-twice", KeysAttack::SameReviewerTwice),
        ("reviewer-outside-groups", KeysAttack::OutsideTheGroups),
        ("look-alike-second-key", KeysAttack::LookAlikeSecondKey),
        ("forged-groups", KeysAttack::ForgedGroups),
        ("unknown-reviewer", KeysAttack::UnknownReviewer),
    ];

    /// The attack a catalogue `kind` names.
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::KINDS
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
    }
}

/// A parked migration down to v1 under a two-key rule, and who may and may not decide it.
struct Parked<'t> {
    admin: &'t AdminClient,
    id: String,
    call: InFlight,
    rule: RuleView,
    /// Eligible static members of the rule's groups.
    eligible: Vec<String>,
    /// A static member of another group.
    outsider: Option<String>,
}

/// Run `attack` on `target`.
pub async fn run(
    target: &Target,
    attack: KeysAttack,
    report: &mut AttackReport,
) -> anyhow::Result<()> {
    let Some(parked) = park(target, report).await? else {
        return Ok(());
    };
    match attack {
        KeysAttack::SameReviewerTwice => same_reviewer_twice(report, &parked).await?,
        KeysAttack::OutsideTheGroups => outside_the_groups(report, &parked).await?,
        KeysAttack::LookAlikeSecondKey => look_alike_second_key(report, &parked).await?,
        KeysAttack::ForgedGroups => forged_groups(report, &parked).await?,
        KeysAttack::UnknownReviewer => {
            let stranger = format!("intruder-{}", super::calls::new_tag());
            let what = "a reviewer the policy does not know is refused";
            expect(report, &parked, &stranger, 403, what).await?;
            approvals(report, &parked, 0).await?;
        }
    }
    reject(report, parked).await
}

/// The first eligible reviewer approves, again, then again in capitals: counted once.
async fn same_reviewer_twice(report: &mut AttackReport, parked: &Parked<'_>) -> anyhow::Result<()> {
    let first = &parked.eligible[0];
    expect(report, parked, first, 202, "the first approval is counted").await?;
    expect(
        report,
        parked,
        first,
        403,
        "the same reviewer again is refused",
    )
    .await?;
    let shouted = first.to_uppercase();
    expect(
        report,
        parked,
        &shouted,
        403,
        "the same reviewer in capitals is refused",
    )
    .await?;
    approvals(report, parked, 1).await
}

/// A static reviewer of another group approves: refused, nothing counted.
async fn outside_the_groups(report: &mut AttackReport, parked: &Parked<'_>) -> anyhow::Result<()> {
    let Some(outsider) = parked.outsider.clone() else {
        report
            .not_applicable
            .push("the policy lists no static reviewer outside the rule's groups".into());
        return Ok(());
    };
    let what = "a reviewer outside the groups is refused";
    expect(report, parked, &outsider, 403, what).await?;
    approvals(report, parked, 0).await
}

/// After the first approval, a Cyrillic look-alike of the same name approves: no second key.
async fn look_alike_second_key(
    report: &mut AttackReport,
    parked: &Parked<'_>,
) -> anyhow::Result<()> {
    let first = &parked.eligible[0];
    expect(report, parked, first, 202, "the first approval is counted").await?;
    let look_alike = look_alike(first);
    let status = decide_as(parked, &look_alike).await?;
    check(
        report,
        matches!(status, 403 | 422),
        format!("{look_alike:?}, a look-alike of {first:?}, is not a second key (HTTP {status})"),
    );
    approvals(report, parked, 1).await
}

/// Park a migration down to v1 and read its rule; `None` (not applicable, said in `report`)
/// when the gate has no admin API, no policy, or asks one key only.
async fn park<'t>(
    target: &'t Target,
    report: &mut AttackReport,
) -> anyhow::Result<Option<Parked<'t>>> {
    let Some(admin) = &target.admin else {
        report
            .not_applicable
            .push("needs the gate's admin API".into());
        return Ok(None);
    };
    let policy: PolicyView = match admin.policy().await {
        Ok(policy) => policy,
        Err(e) => {
            report
                .not_applicable
                .push(format!("the gate serves no approval policy: {e}"));
            return Ok(None);
        }
    };
    let requester = fresh_requester(target);
    let (tag, call) = spawn_migration(target, &requester, "v1", Duration::from_secs(120))?;
    let id = parked_id(target, tag).await?;
    let card = admin
        .pending_all()
        .await?
        .pending
        .into_iter()
        .find(|c| c.id == id);
    let rule = card.and_then(|c| c.request).and_then(|r| r.rule);
    let Some(rule) = rule.filter(|r| r.approvals >= 2) else {
        let _ = target.decider.clean_up(&id).await;
        call.abort();
        report
            .not_applicable
            .push("the gate's policy asks one key for a migration to v1".into());
        return Ok(None);
    };
    let mut eligible: Vec<String> = Vec::new();
    for group in &rule.groups {
        for member in policy.groups.get(group).into_iter().flatten() {
            if !eligible.contains(member) {
                eligible.push(member.clone());
            }
        }
    }
    let outsider = policy
        .groups
        .iter()
        .filter(|(g, _)| !rule.groups.contains(g))
        .flat_map(|(_, m)| m.iter())
        .find(|m| !eligible.contains(m))
        .cloned();
    if eligible.is_empty() {
        let _ = target.decider.clean_up(&id).await;
        call.abort();
        report
            .not_applicable
            .push("the rule's groups list no static reviewer".into());
        return Ok(None);
    }
    Ok(Some(Parked {
        admin,
        id,
        call,
        rule,
        eligible,
        outsider,
    }))
}

/// The HTTP status of `reviewer`'s approval of the parked call.
async fn decide_as(parked: &Parked<'_>, reviewer: &str) -> anyhow::Result<u16> {
    let request = DecideRequest {
        approved: true,
        reason: String::new(),
        reviewer: Some(reviewer.to_owned()),
        id_token: None,
    };
    Ok(match parked.admin.decide_step(&parked.id, &request).await {
        Ok(DecideAnswer::Decided(_)) => 200,
        Ok(DecideAnswer::Counted(_)) => 202,
        Err(AdminError::Status { status, .. }) => status.as_u16(),
        Err(AdminError::Conflict(_)) => 409,
        Err(AdminError::NotFound(_)) => 404,
        Err(e) => return Err(e.into()),
    })
}

async fn expect(
    report: &mut AttackReport,
    parked: &Parked<'_>,
    reviewer: &str,
    want: u16,
    what: &str,
) -> anyhow::Result<()> {
    let status = decide_as(parked, reviewer).await?;
    check(
        report,
        status == want,
        format!("{what} ({reviewer}: HTTP {status}, want {want})"),
    );
    Ok(())
}

/// The card shows `n` approvals and its caller still waits.
async fn approvals(report: &mut AttackReport, parked: &Parked<'_>, n: usize) -> anyhow::Result<()> {
    let card = parked
        .admin
        .pending_all()
        .await?
        .pending
        .into_iter()
        .find(|c| c.id == parked.id);
    let view = card.and_then(|c| c.request);
    let counted = view.as_ref().map_or(0, |v| v.approvals.len());
    check(
        report,
        counted == n && view.is_some_and(|v| v.waiting),
        format!(
            "the card still shows {n} of {} approvals, its caller waiting (found {counted})",
            parked.rule.approvals
        ),
    );
    check(report, !parked.call.is_finished(), "the call is still held");
    Ok(())
}

/// Groups asserted by the decision itself: in headers (ignored: in no group) and in its body
/// (an unknown field: refused whole).
async fn forged_groups(report: &mut AttackReport, parked: &Parked<'_>) -> anyhow::Result<()> {
    let group = parked.rule.groups[0].clone();
    let stranger = format!("mallory-{}", super::calls::new_tag());
    let url = parked.admin.url(&paths::decide(&parked.id));
    let http = reqwest::Client::new();
    let body = serde_json::json!({"approved": true, "reviewer": stranger}).to_string();
    let mut request = parked.admin.authorize(http.post(&url)).body(body);
    for header in [
        "x-groups",
        "x-forwarded-groups",
        "x-auth-request-groups",
        "x-hitl-groups",
    ] {
        request = request.header(header, &group);
    }
    let status = request.send().await?.status().as_u16();
    check(
        report,
        status == 403,
        format!("groups in headers make nobody eligible (HTTP {status})"),
    );
    let body =
        serde_json::json!({"approved": true, "reviewer": stranger, "groups": [group]}).to_string();
    let status = parked
        .admin
        .authorize(http.post(&url))
        .body(body)
        .send()
        .await?
        .status()
        .as_u16();
    check(
        report,
        status == 422,
        format!("a `groups` field in the decision is refused whole (HTTP {status})"),
    );
    approvals(report, parked, 0).await
}

/// Reject the parked call as an eligible reviewer, with a reason; it must not run.
async fn reject(report: &mut AttackReport, parked: Parked<'_>) -> anyhow::Result<()> {
    let request = DecideRequest {
        approved: false,
        reason: "conformance: two-key attack over".into(),
        reviewer: Some(parked.eligible[0].clone()),
        id_token: None,
    };
    parked.admin.decide(&parked.id, &request).await?;
    let answer = tokio::time::timeout(Duration::from_secs(60), parked.call).await???;
    report.observed = format!("refused; then rejected: {}", short(&answer));
    check(
        report,
        !matches!(answer, Answer::Passed { .. }),
        "the call never ran",
    );
    Ok(())
}

/// `name` with its first Latin letter that has a Cyrillic twin replaced by that twin.
fn look_alike(name: &str) -> String {
    let twins = [
        ('a', 'а'),
        ('e', 'е'),
        ('o', 'о'),
        ('c', 'с'),
        ('p', 'р'),
        ('x', 'х'),
    ];
    let mut done = false;
    name.chars()
        .map(|c| match twins.iter().find(|(l, _)| *l == c) {
            Some((_, twin)) if !done => {
                done = true;
                *twin
            }
            _ => c,
        })
        .collect()
}
