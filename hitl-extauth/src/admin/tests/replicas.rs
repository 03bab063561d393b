//! Two gate replicas on one PostgreSQL store (issue #27), in-process: each with its own
//! parking lot, index and admin API, sharing only the store — as two pods do. A decision on
//! one releases the call held on the other; fifty reviewers racing over both make one
//! decision; a retry through the other replica uses the approval once; the caps hold for the
//! fleet.

use super::*;
use crate::store::Location;
use hitl_wire::extauth::{HistoryQuery, Outcome};

/// A PostgreSQL server of the test's own, under `target/`.
fn server(test: &str) -> hitl_lab::postgres::Server {
    let dir = hitl_lab::bins::target_dir()
        .join("store-tests")
        .join(format!("{test}-{}", uuid::Uuid::new_v4()));
    hitl_lab::postgres::Server::start(&dir).unwrap()
}

/// One replica of the gate on `server`'s store, holding calls `park_timeout`, with
/// `per_requester` the most calls (and live requests) one requester may have.
fn replica(
    server: &hitl_lab::postgres::Server,
    name: &str,
    park_timeout: Duration,
    per_requester: usize,
) -> Lab {
    replica_hearing(server, name, park_timeout, per_requester, true)
}

/// [`replica`]; `hears`: whether it follows the others' changes (a deaf one learns of them
/// only from the store's answers to its own writes).
fn replica_hearing(
    server: &hitl_lab::postgres::Server,
    name: &str,
    park_timeout: Duration,
    per_requester: usize,
    hears: bool,
) -> Lab {
    replica_with(server, name, park_timeout, per_requester, hears, None)
}

/// [`replica_hearing`] under the approval policy `policy` (`None`: anyone, once).
fn replica_with(
    server: &hitl_lab::postgres::Server,
    name: &str,
    park_timeout: Duration,
    per_requester: usize,
    hears: bool,
    policy: Option<std::sync::Arc<hitl_wire::policy::Policy>>,
) -> Lab {
    let location = Location::Postgres {
        url: server.url("postgres"),
        password: Some(server.password.clone()),
        ca_file: None,
    };
    let (audit, opened) = Store::open_as(&location, Some(name)).unwrap();
    if !hears {
        drop(audit.changes());
    }
    let mut settings = super::requests::settings(park_timeout);
    settings.capacity.total = 1000;
    settings.capacity.per_requester = per_requester;
    if let Some(policy) = policy {
        settings.policy = policy;
    }
    Lab {
        gate: Gate::start(settings, audit, opened.requests),
        token: None,
    }
}

const LONG: Duration = Duration::from_secs(300);
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_on_one_replica_releases_the_call_held_on_the_other() {
    let server = server("release");
    let (a, b) = (
        replica(&server, "a", LONG, 100),
        replica(&server, "b", LONG, 100),
    );
    let held = a.check(MIGRATE);
    // B shows the card A holds, with a caller waiting, and decides it.
    let card = b.parked(1).await.pending.remove(0);
    assert!(card.request.as_ref().unwrap().waiting, "{card:?}");
    let (status, body) = b
        .decide(&card.id, r#"{"approved":true,"reviewer":"bob"}"#)
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let answer = tokio::time::timeout(PATIENCE, held).await.unwrap().unwrap();
    assert!(
        matches!(answer, Answer::Allow { token: Some(_), .. }),
        "{answer:?}"
    );
    // One trail: both replicas show the attempt approved by bob, and neither shows the card.
    for lab in [&a, &b] {
        let page = lab.gate.history(HistoryQuery::default()).await.unwrap();
        assert!(
            page.items.iter().any(|r| r.outcome == Outcome::Approved
                && r.reviewer.as_deref() == Some("bob")
                && r.call.id != card.id),
            "{page:?}"
        );
        lab.parked(0).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_decisions_racing_over_two_replicas_make_one() {
    let server = server("race");
    let (a, b) = (
        Arc::new(replica(&server, "a", LONG, 100)),
        Arc::new(replica(&server, "b", LONG, 100)),
    );
    for round in 0..5 {
        race_once(&a, &b, round).await;
    }
}

/// One race: a call held on A, fifty decisions at once, one in two through B. Exactly one
/// wins, and the held call gets that one's decision, whichever replica took it.
async fn race_once(a: &Arc<Lab>, b: &Arc<Lab>, round: usize) {
    let body = MIGRATE.replace("v3", &format!("v{}", 10 + round));
    let held = a.check(&body);
    let id = a.parked(1).await.pending.remove(0).id;
    b.parked(1).await;
    let decisions: Vec<_> = (0..50)
        .map(|n| {
            let lab = Arc::clone(if n % 2 == 0 { a } else { b });
            let id = id.clone();
            let approve = n % 3 != 0;
            tokio::spawn(async move {
                let body = format!(r#"{{"approved":{approve},"reviewer":"r{n}","reason":"r{n}"}}"#);
                lab.decide(&id, &body).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for decision in decisions {
        let (status, body) = decision.await.unwrap();
        assert!(
            matches!(status, StatusCode::OK | StatusCode::CONFLICT),
            "{status}"
        );
        if status == StatusCode::OK {
            winners.push(serde_json::from_slice::<DecidedCall>(&body).unwrap());
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one decision wins across the replicas"
    );
    let answer = tokio::time::timeout(PATIENCE, held).await.unwrap().unwrap();
    match (&winners[0].outcome, &answer) {
        (Outcome::Approved, Answer::Allow { .. }) => {}
        (Outcome::Rejected, Answer::Deny { reason, .. }) => assert_eq!(reason, &winners[0].reason),
        _ => panic!(
            "round {round}: {:?} won, the held call got {answer:?}",
            winners[0]
        ),
    }
    a.parked(0).await;
    b.parked(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_through_the_other_replica_uses_the_approval_once() {
    let server = server("retry");
    let a = replica(&server, "a", Duration::from_millis(300), 100);
    let b = replica(&server, "b", LONG, 100);
    // Held on A until its hold runs out: the request stays open, decided on B later.
    let first = a.check(MIGRATE).await.unwrap();
    assert!(matches!(first, Answer::Deny { .. }), "{first:?}");
    // B hears of the held call's end a moment after A answered it: nobody waits any more.
    let mut card = b.parked(1).await.pending.remove(0);
    for _ in 0..200 {
        if !card.request.as_ref().unwrap().waiting {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        card = b.parked(1).await.pending.remove(0);
    }
    assert!(!card.request.as_ref().unwrap().waiting, "{card:?}");
    let (status, _) = b
        .decide(&card.id, r#"{"approved":true,"reviewer":"bob"}"#)
        .await;
    assert_eq!(status, StatusCode::OK);
    // The retry comes in on A, which learnt of the approval from B: it passes, once.
    let mut retry = None;
    for _ in 0..100 {
        if !a.gate.pending().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        retry = Some(a.check(SAME_V3_RETRY).await.unwrap());
        break;
    }
    let retry = retry.expect("A learns of the decision");
    assert!(matches!(retry, Answer::Allow { .. }), "{retry:?}");
    // On B the approval is spent too: told so if B has not heard yet, then a new request.
    let again = match tokio::time::timeout(Duration::from_millis(500), b.check(MIGRATE)).await {
        Ok(told) => {
            let told = told.unwrap();
            assert!(format!("{told:?}").contains("already used"), "{told:?}");
            b.check(MIGRATE)
        }
        Err(_) => b.check(MIGRATE),
    };
    let next = b.parked(1).await.pending.remove(0);
    assert_ne!(next.id, card.id, "the approval was spent: a new request");
    again.abort();
}

/// Another spelling of [`MIGRATE`]: the same action.
const SAME_V3_RETRY: &str = r#"{"id":"retry","jsonrpc":"2.0","method":"tools/call","params":{"arguments":{"target_version":"v3"},"name":"run_migration"}}"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_requesters_cap_holds_across_the_replicas() {
    let server = server("caps");
    let (a, b) = (
        replica(&server, "a", LONG, 1),
        replica(&server, "b", LONG, 1),
    );
    let held = a.check(MIGRATE);
    a.parked(1).await;
    // Alice has one call held on A: on B her next call is over her cap.
    let answer = tokio::time::timeout(PATIENCE, b.check(MIGRATE_V4))
        .await
        .unwrap()
        .unwrap();
    let Answer::Deny { reason, .. } = answer else {
        panic!("over the cap yet allowed: {answer:?}");
    };
    // (Said by B's own index if it already heard of A's request, else by the store's count.)
    assert!(reason.contains(r#""alice" already has 1"#), "{reason}");
    held.abort();
}

/// Two replicas open a request for one action at the same moment (B has not heard of A's):
/// the store lets one in, and B's attempt meets it again and attaches — one card, two callers
/// held, one decision for both.
#[tokio::test(flavor = "multi_thread")]
async fn one_action_opened_on_two_replicas_at_once_is_one_request() {
    let server = server("raced");
    let a = replica(&server, "a", LONG, 100);
    let b = replica_hearing(&server, "b", LONG, 100, false);
    let first = a.check(MIGRATE);
    let card = a.parked(1).await.pending.remove(0);
    let second = b.check(SAME_V3_RETRY);
    let mut attempts = 0;
    for _ in 0..200 {
        attempts = a.gate.pending()[0].request.as_ref().unwrap().attempts;
        if attempts == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(attempts, 2, "B's attempt attached to A's request");
    assert!(!second.is_finished(), "B's caller is held, not refused");
    // Decided on B (deaf, it would never hear a decision taken on A; A hears B's).
    let (status, _) = b
        .decide(
            &card.id,
            r#"{"approved":false,"reviewer":"bob","reason":"no"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for held in [first, second] {
        let answer = tokio::time::timeout(PATIENCE, held).await.unwrap().unwrap();
        assert!(
            matches!(&answer, Answer::Deny { reason, .. } if reason == "no"),
            "{answer:?}"
        );
    }
}

/// Two keys over two replicas: eight dbas approve a migration down to v1 at once, one in two
/// through each replica. The store counts each approval once: exactly one is counted, one
/// approves, the call held on A runs once with two distinct approvers.
#[tokio::test(flavor = "multi_thread")]
async fn eight_approvals_racing_over_two_replicas_count_once_each_and_release_once() {
    let server = server("k-of-n");
    let policy = super::policy::policy();
    let a = Arc::new(replica_with(
        &server,
        "a",
        LONG,
        100,
        true,
        Some(policy.clone()),
    ));
    let b = Arc::new(replica_with(&server, "b", LONG, 100, true, Some(policy)));
    let held = a.check(super::policy::DOWN_TO_V1);
    let id = a.parked(1).await.pending.remove(0).id;
    b.parked(1).await;
    let decisions: Vec<_> = (0..8)
        .map(|n| {
            let lab = Arc::clone(if n % 2 == 0 { &a } else { &b });
            let id = id.clone();
            tokio::spawn(async move {
                let body = format!(r#"{{"approved":true,"reviewer":"r{n}"}}"#);
                lab.decide(&id, &body).await.0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for decision in decisions {
        statuses.push(decision.await.unwrap());
    }
    let count = |want| statuses.iter().filter(|s| **s == want).count();
    assert_eq!(
        (count(StatusCode::ACCEPTED), count(StatusCode::OK)),
        (1, 1),
        "{statuses:?}"
    );
    let answer = tokio::time::timeout(PATIENCE, held).await.unwrap().unwrap();
    let claims = super::policy::claims(&answer);
    assert_eq!(claims.approvers.len(), 2);
    assert_ne!(claims.approvers[0], claims.approvers[1]);
}
