//! Who may approve what (issue #28) in-process: the lab's policy — a migration back down to
//! v1 needs two keys, from `dba` or `sre`, and a reason to reject — against reviewers outside
//! the groups, the requester, the same reviewer twice (under another spelling), a forged
//! group, an ID token, and many reviewers approving at once.

use base64::Engine as _;
use hitl_wire::{
    approval::Claims,
    extauth::{DecidedCall, ParkedCall},
    policy::Policy,
};

use super::*;
use crate::{requester::verify::tests::TestIssuer, reviewer::Tokens};

const POLICY: &str = r#"
[groups.platform]
members = ["reviewer"]
[groups.dba]
members = ["dba-ann", "alice", "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"]
[groups.sre]
members = ["sre-sam"]

[[rule]]
name = "migration-down-to-v1"
tool = "run_migration"
args = { target_version = "v1" }
groups = ["dba", "sre"]
approvals = 2
reason_to_reject = true

[[rule]]
name = "migrations"
tool = "run_migration"
groups = ["platform"]
"#;

pub(super) const DOWN_TO_V1: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_migration","arguments":{"target_version":"v1"}}}"#;
const TRUNCATE: &str = r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"truncate_table","arguments":{"table":"orders"}}}"#;

/// Signs reviewers' ID tokens (the identity provider of these tests).
static IDP: std::sync::LazyLock<TestIssuer> = std::sync::LazyLock::new(TestIssuer::new);

/// The policy of these tests.
pub(super) fn policy() -> std::sync::Arc<Policy> {
    std::sync::Arc::new(Policy::parse(POLICY, "policy.toml").unwrap())
}

fn lab() -> Lab {
    let mut settings = super::requests::settings(Duration::from_secs(300));
    settings.policy = policy();
    let jwks = std::env::temp_dir().join(format!("idp-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&jwks, IDP.jwks()).unwrap();
    let audiences = [crate::requester::verify::tests::AUDIENCE.to_owned()];
    settings.reviewers = Some(
        Tokens::from_file(
            &jwks,
            crate::requester::verify::tests::ISSUER,
            &audiences,
            "preferred_username",
            "groups",
        )
        .unwrap(),
    );
    let (audit, _) = Store::open(Path::new(":memory:")).unwrap();
    Lab {
        gate: Gate::start(settings, audit, Vec::new()),
        token: None,
    }
}

/// `reviewer`'s ID token from the test identity provider, in `groups`.
fn id_token(reviewer: &str, groups: &[&str]) -> String {
    let mut claims = TestIssuer::claims("subject-id-123");
    claims["preferred_username"] = reviewer.into();
    claims["groups"] = groups.iter().map(|g| serde_json::json!(g)).collect();
    IDP.sign(&claims)
}

fn body(approve: bool, reviewer: &str, reason: &str) -> String {
    serde_json::json!({"approved": approve, "reviewer": reviewer, "reason": reason}).to_string()
}

/// What the approval token of an allowed answer asserts.
pub(super) fn claims(answer: &Answer) -> Claims {
    let Answer::Allow {
        token: Some(token), ..
    } = answer
    else {
        panic!("not allowed with a token: {answer:?}")
    };
    let part = token.split('.').nth(1).unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[tokio::test]
async fn two_keys_one_dba_then_one_sre_release_the_migration_down_once() {
    let lab = lab();
    let held = lab.check(DOWN_TO_V1);
    let card = lab.parked(1).await.pending.remove(0);
    let rule = card.request.as_ref().unwrap().rule.clone().unwrap();
    assert_eq!(
        (rule.name.as_str(), rule.approvals),
        ("migration-down-to-v1", 2)
    );
    assert_eq!(rule.groups, ["dba", "sre"]);

    // Nobody outside dba/sre, not the requester, no rejection without a reason.
    for (decision, why) in [
        (body(true, "reviewer", ""), "in none of them"),
        (body(true, "mallory", ""), "in none of them"),
        (body(true, "alice", ""), "you asked for this call"),
        (body(false, "sre-sam", " "), "requires a reason to reject"),
    ] {
        let (status, answer) = lab.decide(&card.id, &decision).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{decision}: {}",
            text(&answer)
        );
        assert!(text(&answer).contains(why), "{}", text(&answer));
    }

    // One dba: counted, and the call still waits.
    let (status, answer) = lab.decide(&card.id, &body(true, "dba-ann", "")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", text(&answer));
    let counted: ParkedCall = serde_json::from_slice(&answer).unwrap();
    let approvals = &counted.request.as_ref().unwrap().approvals;
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].reviewer, "dba-ann");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!held.is_finished(), "one key does not open the door");
    let shown = lab.gate.pending().remove(0);
    assert_eq!(
        shown.request.as_ref().unwrap().approvals.len(),
        1,
        "the card shows it"
    );

    // The same dba again, under another spelling, does not make two.
    let (status, answer) = lab.decide(&card.id, &body(true, "DBA-Ann", "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}", text(&answer));
    assert!(text(&answer).contains("already approved"));

    // An sre: the second key. The call runs once, its token names both and the rule.
    let (status, answer) = lab.decide(&card.id, &body(true, "sre-sam", "ok")).await;
    assert_eq!(status, StatusCode::OK, "{}", text(&answer));
    let decided: DecidedCall = serde_json::from_slice(&answer).unwrap();
    assert_eq!(decided.reviewer.as_deref(), Some("sre-sam"));
    let answer = held.await.unwrap();
    let claims = claims(&answer);
    assert_eq!(claims.approvers, ["dba-ann", "sre-sam"]);
    assert_eq!(claims.rule.as_deref(), Some("migration-down-to-v1"));
    assert!(lab.gate.pending().is_empty());
}

#[tokio::test]
async fn a_call_no_rule_covers_is_denied_and_a_migration_up_needs_platform() {
    let lab = lab();
    let answer = lab.check(TRUNCATE).await.unwrap();
    let Answer::Deny { reason, .. } = answer else {
        panic!("passed: {answer:?}")
    };
    assert!(
        reason.contains("no rule of the approval policy covers truncate_table"),
        "{reason}"
    );
    assert!(lab.gate.pending().is_empty(), "nothing to decide");

    let held = lab.check(MIGRATE);
    let card = lab.parked(1).await.pending.remove(0);
    let (status, _) = lab.decide(&card.id, &body(true, "dba-ann", "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "dba is not platform");
    let (status, _) = lab.decide(&card.id, &body(true, "reviewer", "")).await;
    assert_eq!(status, StatusCode::OK, "one platform approval is enough");
    assert_eq!(
        claims(&held.await.unwrap()).rule.as_deref(),
        Some("migrations")
    );
}

#[tokio::test]
async fn an_id_token_names_the_reviewer_and_brings_groups_a_header_cannot() {
    let lab = lab();
    let held = lab.check(DOWN_TO_V1);
    let card = lab.parked(1).await.pending.remove(0);
    // Asserted groups are no field of a decision: refused whole, nothing decided.
    let forged = r#"{"approved":true,"reviewer":"ivan","groups":["dba"]}"#;
    let (status, _) = lab.decide(&card.id, forged).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A name the policy does not know, asserted by the admin API's holder: in no group.
    let (status, _) = lab.decide(&card.id, &body(true, "ivan", "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A token whose signature does not verify (another identity provider's key).
    let other = TestIssuer::new();
    let mut forged = TestIssuer::claims("x");
    forged["preferred_username"] = "ivan".into();
    forged["groups"] = serde_json::json!(["dba"]);
    let decision = serde_json::json!({"approved": true, "idToken": other.sign(&forged)});
    let (status, answer) = lab.decide(&card.id, &decision.to_string()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}", text(&answer));
    // A token naming someone else than the decision does.
    let decision = serde_json::json!({"approved": true, "reviewer": "dba-ann",
        "idToken": id_token("ivan", &["dba"])});
    let (status, _) = lab.decide(&card.id, &decision.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A provider's account that took the name of a static dba member is not a dba: its
    // groups are the provider's word alone.
    let decision = serde_json::json!({"approved": true, "idToken": id_token("dba-ann", &[])});
    let (status, answer) = lab.decide(&card.id, &decision.to_string()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}", text(&answer));
    // The identity provider says ivan is a dba, and olga an sre: two keys.
    for (who, group, want) in [
        ("ivan", "dba", StatusCode::ACCEPTED),
        ("olga", "sre", StatusCode::OK),
    ] {
        let decision = serde_json::json!({"approved": true, "idToken": id_token(who, &[group])});
        let (status, answer) = lab.decide(&card.id, &decision.to_string()).await;
        assert_eq!(status, want, "{who}: {}", text(&answer));
    }
    assert_eq!(claims(&held.await.unwrap()).approvers, ["ivan", "olga"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_dbas_approving_at_once_count_once_each_and_release_once() {
    let lab = std::sync::Arc::new(lab());
    let held = lab.check(DOWN_TO_V1);
    let id = lab.parked(1).await.pending.remove(0).id;
    let decisions: Vec<_> = (0..8)
        .map(|n| {
            let lab = std::sync::Arc::clone(&lab);
            let id = id.clone();
            tokio::spawn(async move { lab.decide(&id, &body(true, &format!("r{n}"), "")).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for decision in decisions {
        statuses.push(decision.await.unwrap().0);
    }
    let count = |want| statuses.iter().filter(|s| **s == want).count();
    assert_eq!(
        (count(StatusCode::ACCEPTED), count(StatusCode::OK)),
        (1, 1),
        "one counted, one approved: {statuses:?}"
    );
    assert_eq!(count(StatusCode::CONFLICT), 6, "{statuses:?}");
    let claims = claims(&held.await.unwrap());
    assert_eq!(claims.approvers.len(), 2);
    assert_ne!(claims.approvers[0], claims.approvers[1]);
}

/// A counted approval is committed before its 202: a gate that dies after it (a new process
/// on the same store) shows the card with that approval, refuses the same reviewer again, and
/// the second key then lets a retry of the call through once, its token naming both.
#[tokio::test]
async fn a_counted_approval_outlives_the_process() {
    let dir = std::env::temp_dir().join(format!("hitl-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("audit.db");
    let on = |db: &Path| {
        let mut settings = super::requests::settings(Duration::from_secs(300));
        settings.policy = policy();
        let (audit, opened) = Store::open(db).unwrap();
        Lab {
            gate: Gate::start(settings, audit, opened.requests),
            token: None,
        }
    };
    let id = {
        let lab = on(&db);
        let held = lab.check(DOWN_TO_V1);
        let id = lab.parked(1).await.pending.remove(0).id;
        let (status, _) = lab.decide(&id, &body(true, "dba-ann", "")).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        held.abort();
        id
    };
    let lab = on(&db);
    let card = lab.parked(1).await.pending.remove(0);
    assert_eq!(card.id, id);
    let approvals = &card.request.as_ref().unwrap().approvals;
    assert_eq!(approvals.len(), 1, "the counted approval is still there");
    assert_eq!(approvals[0].reviewer, "dba-ann");
    let (status, _) = lab.decide(&id, &body(true, "dba-ann", "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "still counted as dba-ann's");
    let (status, answer) = lab.decide(&id, &body(true, "sre-sam", "")).await;
    assert_eq!(status, StatusCode::OK, "{}", text(&answer));
    let retry = lab.check(DOWN_TO_V1).await.unwrap();
    assert_eq!(claims(&retry).approvers, ["dba-ann", "sre-sam"]);
    std::fs::remove_dir_all(&dir).ok();
}
