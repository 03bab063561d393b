//! Approval requests (issue #26) in-process: one card per action however it is sent, an
//! approval used once by a later retry, a rejection repeated at once, and open requests
//! that outlive the process.

use super::*;
use crate::{approval_request::Clocks, gate::REJECTION_HOLD};
use hitl_wire::extauth::{HistoryQuery, Outcome, ParkedCall, PendingList};

/// `run_migration` to v3 as alice's client might send it: another JSON-RPC id, key order,
/// whitespace, `\u` escapes — the same action.
const SAME_V3: [&str; 3] = [
    r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"run_migration","arguments":{"target_version":"v3"}}}"#,
    r#"{"id":"retry-1","jsonrpc":"2.0","method":"tools/call","params":{"arguments":{"target_version":"v3"},"name":"run_migration"}}"#,
    "{ \"jsonrpc\": \"2.0\", \"id\": 99, \"method\": \"tools/call\",\n  \"params\": { \"name\": \"run_migration\", \"arguments\": { \"target_version\": \"\\u0076\\u0033\" } } }",
];

pub(super) fn settings(park_timeout: Duration) -> Settings {
    Settings {
        policy: std::sync::Arc::new(hitl_wire::policy::Policy::anyone_once()),
        reviewers: None,
        allow: AllowList::default(),
        park_timeout,
        capacity: Capacity {
            total: 100,
            per_requester: 100,
            bytes: usize::MAX,
        },
        require_verified_requester: true,
        signer: Some(Signer::from_seed([1; 32])),
        reviewer_verified: true,
        verifier: Some(ISSUER.verifier()),
        clocks: Clocks {
            ttl: Duration::from_secs(24 * 3600),
            window: Duration::from_secs(900),
            reject_hold: REJECTION_HOLD,
        },
        notify: None,
    }
}

/// A lab whose audit trail is the file `db`, reading back the requests it holds.
fn lab_on(db: &Path, park_timeout: Duration) -> Lab {
    let (audit, opened) = Store::open(db).unwrap();
    Lab {
        gate: Gate::start(settings(park_timeout), audit, opened.requests),
        token: None,
    }
}

fn allowed(answer: &Answer) -> bool {
    matches!(answer, Answer::Allow { .. })
}

#[tokio::test]
async fn three_sends_of_one_action_make_one_card_and_one_use() {
    let lab = Lab::new();
    let mut held = Vec::new();
    for (n, body) in SAME_V3.iter().enumerate() {
        held.push(lab.check(body));
        // Each send attaches: one card, counting attempts.
        let card = lab.parked(1).await.pending.remove(0);
        for _ in 0..200 {
            if lab.gate.pending()[0].request.as_ref().unwrap().attempts == n as u64 + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(card.tool_args, serde_json::json!({"target_version": "v3"}));
    }
    let card = lab.gate.pending().remove(0);
    let view = card.request.clone().unwrap();
    assert_eq!((view.attempts, view.waiting), (3, true));
    assert_eq!(view.canonical_args, r#"{"target_version":"v3"}"#);

    let (status, _) = lab
        .decide(&card.id, r#"{"approved":true,"reviewer":"bob"}"#)
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut answers = Vec::new();
    for check in held {
        answers.push(check.await.unwrap());
    }
    assert_eq!(
        answers.iter().filter(|a| allowed(a)).count(),
        1,
        "{answers:?}"
    );
    assert!(lab.gate.pending().is_empty());
}

#[tokio::test]
async fn an_approval_made_after_the_hold_lets_one_retry_through_bound_to_its_bytes() {
    let lab = Lab::with(Duration::from_millis(300), 100, None);
    let Answer::Deny { id, .. } = lab.check(SAME_V3[0]).await.unwrap() else {
        panic!("passed unreviewed")
    };
    let id = id.unwrap();
    let (status, _) = lab
        .decide(&id, r#"{"approved":true,"reason":"ok","reviewer":"bob"}"#)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "no caller waits, the request is decidable"
    );
    // Nobody was held: the request's own record carries the decision on the history.
    let history = lab.gate.history(HistoryQuery::default()).await.unwrap();
    let decision = history
        .items
        .iter()
        .find(|r| r.call.id == format!("{id}{}", crate::gate::DECISION_SUFFIX))
        .expect("the decision on the history");
    assert_eq!(
        (decision.outcome, decision.reviewer.as_deref()),
        (Outcome::Approved, Some("bob"))
    );

    let Answer::Allow { approval_id, token } = lab.check(SAME_V3[1]).await.unwrap() else {
        panic!("the approved retry was denied")
    };
    assert_eq!(approval_id.as_deref(), Some(id.as_str()));
    // The token is bound to the retry's exact bytes, as mock-db-mcp checks it.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verifier = Signer::from_seed([1; 32]).verifier();
    let claims = verifier
        .verify(
            token.as_deref(),
            SAME_V3[1].as_bytes(),
            "run_migration",
            now,
        )
        .unwrap();
    assert_eq!(
        claims.sha256,
        hex::encode(Sha256::digest(SAME_V3[1].as_bytes()))
    );
    assert_eq!(claims.id, id);

    // Used: the next send is a new request, not a second pass.
    let again = lab.check(SAME_V3[2]);
    let card = lab.parked(1).await.pending.remove(0);
    assert_ne!(card.id, id);
    again.abort();
}

#[tokio::test]
async fn a_rejection_is_repeated_at_once_and_other_actions_are_other_requests() {
    let lab = Lab::with(Duration::from_millis(300), 100, None);
    let Answer::Deny { id, .. } = lab.check(SAME_V3[0]).await.unwrap() else {
        panic!("passed unreviewed")
    };
    let id = id.unwrap();
    lab.decide(
        &id,
        r#"{"approved":false,"reason":"not today","reviewer":"bob"}"#,
    )
    .await;
    let answer = lab.check(SAME_V3[2]).await.unwrap();
    assert_eq!(
        answer,
        Answer::Deny {
            reason: "not today".into(),
            id: Some(id.clone())
        }
    );
    assert!(lab.gate.pending().is_empty(), "no second card");

    // bob's call, or alice's v4, is another action: another request.
    let bob = lab.check_request(post_from(SAME_V3[0], Some("bob"), "bob"));
    let v4 = lab.check(&SAME_V3[0].replace("v3", "v4"));
    let cards = lab.parked(2).await.pending;
    assert!(cards.iter().all(|c| c.id != id));
    bob.abort();
    v4.abort();
}

#[tokio::test]
async fn alices_approval_does_not_let_bob_through() {
    let lab = Lab::with(Duration::from_millis(300), 100, None);
    let Answer::Deny { id, .. } = lab.check(SAME_V3[0]).await.unwrap() else {
        panic!("passed unreviewed")
    };
    lab.decide(&id.unwrap(), r#"{"approved":true,"reviewer":"carol"}"#)
        .await;
    let bob = lab.check_request(post_from(SAME_V3[0], Some("bob"), "alice"));
    let card = lab.parked(1).await.pending.remove(0);
    assert_eq!(card.requester.as_deref(), Some("bob"));
    bob.abort();
}

#[tokio::test]
async fn an_open_request_outlives_the_process() {
    let dir = std::env::temp_dir().join(format!("hitl-requests-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("audit.db");
    let id = {
        let lab = lab_on(&db, Duration::from_secs(300));
        let held = lab.check(SAME_V3[0]);
        let id = lab.parked(1).await.pending.remove(0).id;
        held.abort();
        lab.gate.pending();
        id
    };
    // The next process: the card is still there, decidable, and the retry passes once.
    let lab = lab_on(&db, Duration::from_secs(300));
    let card = lab.parked(1).await.pending.remove(0);
    assert_eq!(card.id, id);
    let (status, _) = lab
        .decide(&id, r#"{"approved":true,"reviewer":"bob"}"#)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(allowed(&lab.check(SAME_V3[1]).await.unwrap()));
    let again = lab.check(SAME_V3[1]);
    assert_ne!(lab.parked(1).await.pending[0].id, id);
    again.abort();
    std::fs::remove_dir_all(&dir).ok();
}

/// A caller who hangs up at once leaves its request open (it outlives the attempt), so opening
/// requests is capped like holding calls: a requester may have `MAX_PARKED_PER_REQUESTER` live
/// requests and everyone together `MAX_PARKED`; past that an attempt is refused at once with
/// the reason and nothing opens, while a re-send of an open request still attaches.
#[tokio::test]
async fn a_requester_who_hangs_up_cannot_open_requests_without_end() {
    let mut settings = settings(Duration::from_secs(300));
    settings.capacity.per_requester = 2;
    settings.capacity.total = 3;
    let (audit, _) = Store::open(Path::new(":memory:")).unwrap();
    let lab = Lab {
        gate: Gate::start(settings, audit, Vec::new()),
        token: None,
    };
    let version = |v: &str| SAME_V3[0].replace("v3", v);
    let send = |body: &str, who: &str| lab.check_request(post_from(body, Some(who), who));
    for (n, v) in ["v3", "v4"].into_iter().enumerate() {
        let held = send(&version(v), "alice");
        lab.parked(n + 1).await;
        held.abort();
    }
    let Answer::Deny { reason, id } = send(&version("v5"), "alice").await.unwrap() else {
        panic!("a third request of alice's opened")
    };
    assert!(
        reason.contains("\"alice\" already has 2 approval requests"),
        "{reason}"
    );
    assert_eq!((id, lab.gate.pending().len()), (None, 2));

    // A re-send of one of hers attaches; bob opens the third request, and then nobody more.
    let again = send(&version("v3"), "alice");
    let bob = send(&version("v5"), "bob");
    lab.parked(3).await;
    bob.abort();
    let Answer::Deny { reason, .. } = send(&version("v6"), "carol").await.unwrap() else {
        panic!("a fourth request opened")
    };
    assert!(
        reason.contains("3 approval requests are already open"),
        "{reason}"
    );
    assert_eq!(lab.gate.pending().len(), 3);
    again.abort();
}

/// An open request nobody decides expires when its `APPROVAL_TTL` runs out: its card leaves
/// the queue with an `expired` event, a late decision is refused as expired, and the next
/// send is a new request. A rejection past its hold leaves the gate's memory.
#[tokio::test]
async fn a_request_nobody_decides_expires_with_its_ttl() {
    let mut settings = settings(Duration::from_millis(200));
    settings.clocks.ttl = Duration::from_millis(600);
    settings.clocks.reject_hold = Duration::from_millis(100);
    let (audit, _) = Store::open(Path::new(":memory:")).unwrap();
    let lab = Lab {
        gate: Gate::start(settings, audit, Vec::new()),
        token: None,
    };
    let mut events = lab.gate.events().subscribe();
    let Answer::Deny { id, .. } = lab.check(SAME_V3[0]).await.unwrap() else {
        panic!("passed unreviewed")
    };
    let id = id.unwrap();
    assert_eq!(lab.gate.pending().len(), 1, "open after its hold ran out");

    let expired = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let frame = events.recv().await.unwrap();
            if frame.name == "expired" {
                return frame;
            }
        }
    })
    .await
    .expect("an expired event within the TTL and a sweep");
    assert!(
        expired.data.contains(&id) && expired.data.contains(hitl_wire::env::extauth::APPROVAL_TTL)
    );
    assert!(lab.gate.pending().is_empty());
    let history = lab.gate.history(HistoryQuery::default()).await.unwrap();
    let own = history
        .items
        .iter()
        .find(|r| r.call.id == format!("{id}{}", crate::gate::EXPIRY_SUFFIX))
        .expect("the request's expiry on the history");
    assert_eq!(own.outcome, Outcome::Expired);
    let (status, body) = lab
        .decide(&id, r#"{"approved":true,"reviewer":"bob"}"#)
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(String::from_utf8_lossy(&body).contains("expired"));

    // The next send asks anew; rejected, it is held for its hold, then forgotten.
    let again = lab.check(SAME_V3[1]);
    let card = lab.parked(1).await.pending.remove(0);
    assert_ne!(card.id, id);
    lab.decide(
        &card.id,
        r#"{"approved":false,"reason":"no","reviewer":"bob"}"#,
    )
    .await;
    let _ = again.await;
    for _ in 0..50 {
        if lab.gate.requests_in_memory() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(lab.gate.requests_in_memory(), 0, "swept after the hold");
}

/// A denial is answered only once its record is on disk: a reader of the database file sees
/// it the moment the caller has the answer (so a kill -9 right after cannot lose it), for a
/// refusal without review and for a hold that ran out.
#[tokio::test]
async fn a_denial_is_on_disk_before_the_caller_hears_it() {
    let dir = std::env::temp_dir().join(format!("hitl-denial-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("audit.db");
    let lab = lab_on(&db, Duration::from_millis(200));
    let on_disk = |outcome: &str| -> i64 {
        let reader = rusqlite::Connection::open(&db).unwrap();
        reader
            .query_row(
                "SELECT count(*) FROM parked_calls WHERE outcome = ?1",
                [outcome],
                |row| row.get(0),
            )
            .unwrap()
    };
    let Answer::Deny { .. } = lab.check(r#"[{"jsonrpc":"2.0"}]"#).await.unwrap() else {
        panic!("a batch passed")
    };
    assert_eq!(on_disk("denied"), 1);
    let Answer::Deny { .. } = lab.check(SAME_V3[0]).await.unwrap() else {
        panic!("passed unreviewed")
    };
    assert_eq!(on_disk("expired"), 1);
    std::fs::remove_dir_all(&dir).ok();
}

/// Two integers past 2^53 share one RFC 8785 form, so an approval of one would let the other
/// through: such arguments are refused at once with the way out, and nothing opens.
#[tokio::test]
async fn an_integer_past_2_53_is_refused_not_rounded_into_another_approval() {
    let lab = Lab::new();
    let body = SAME_V3[0].replace(r#""v3""#, "9007199254740993");
    let Answer::Deny { reason, id } = lab.check(&body).await.unwrap() else {
        panic!("passed unreviewed")
    };
    assert!(reason.contains("send it as a string"), "{reason}");
    assert_eq!((id, lab.gate.pending().len()), (None, 0));
}

/// A backlog of open requests nobody waits for lives in the store, not in the gate's memory
/// (past its hot entries): all are still listed, a re-send of a cold one attaches to it, a
/// cold one can be decided, and each expires with its TTL.
#[tokio::test(flavor = "multi_thread")]
async fn a_backlog_of_open_requests_lives_in_the_store_not_in_memory() {
    let mut settings = settings(Duration::from_millis(100));
    settings.clocks.ttl = Duration::from_secs(3);
    let (audit, _) = Store::open(Path::new(":memory:")).unwrap();
    let lab = Lab {
        gate: Gate::start_hot(settings, audit, Vec::new(), 2),
        token: None,
    };
    let version = |v: usize| SAME_V3[0].replace("v3", &format!("v{v}"));
    for v in 1..=8 {
        assert!(matches!(
            lab.check(&version(v)).await.unwrap(),
            Answer::Deny { .. }
        ));
    }
    assert!(
        lab.gate.requests_in_memory() <= 4,
        "{}",
        lab.gate.requests_in_memory()
    );
    let cards = lab.parked(8).await.pending;
    let of = |v: usize| {
        let args = serde_json::json!({ "target_version": format!("v{v}") });
        cards
            .iter()
            .find(|c| c.tool_args == args)
            .unwrap()
            .id
            .clone()
    };
    // The oldest is cold: its re-send attaches to it.
    lab.check(&version(1)).await.unwrap();
    let again = lab.parked(8).await.pending;
    let first = again
        .iter()
        .find(|c| c.id == of(1))
        .expect("still one card");
    assert_eq!(first.request.as_ref().unwrap().attempts, 2);
    let (status, _) = lab
        .decide(
            &of(2),
            r#"{"approved":false,"reviewer":"bob","reason":"no"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a cold request is decided");
    lab.parked(7).await;
    // Each expires with its TTL, cold or not.
    for _ in 0..150 {
        if lab
            .get::<PendingList>(paths::PENDING)
            .await
            .pending
            .is_empty()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the backlog did not expire");
}

/// Listing the queue reads only its oldest requests, from memory or from the store, and
/// says whether more wait; any one of the others is still found by its id.
#[tokio::test]
async fn a_listing_holds_the_oldest_requests_and_says_more_wait() {
    for hot in [2, crate::approval_request::HOT] {
        let (audit, _) = Store::open(Path::new(":memory:")).unwrap();
        let lab = Lab {
            gate: Gate::start_hot(settings(Duration::from_millis(100)), audit, Vec::new(), hot),
            token: None,
        };
        let version = |v: usize| SAME_V3[0].replace("v3", &format!("v{v}"));
        for v in 1..=5 {
            lab.check(&version(v)).await.unwrap();
        }
        let all = lab.parked(5).await;
        assert!(!all.more, "hot {hot}");
        if hot == 2 {
            assert!(
                lab.gate.requests_in_memory() < 5,
                "some were left to the store"
            );
        }
        let target = |c: &ParkedCall| c.tool_args["target_version"].as_str().unwrap().to_owned();
        let listed = lab.gate.pending_listed(3).await;
        assert!(listed.more, "hot {hot}");
        assert_eq!(
            listed.calls.iter().map(|c| target(c)).collect::<Vec<_>>(),
            ["v1", "v2", "v3"],
            "hot {hot}: the oldest, oldest first"
        );
        assert!(!lab.gate.pending_listed(5).await.more, "hot {hot}");
        let asked: PendingList = lab.get(&format!("{}?limit=3", paths::PENDING)).await;
        assert_eq!((asked.pending.len(), asked.more), (3, true), "hot {hot}");
        for bad in ["0", "-1", "many"] {
            let uri = format!("{}?limit={bad}", paths::PENDING);
            let (status, _) = lab.call(Method::GET, &uri, None, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "limit={bad}");
        }
        let newest = all.pending.iter().find(|c| target(c) == "v5").unwrap();
        let one: ParkedCall = lab.get(&paths::pending_call(&newest.id)).await;
        assert_eq!(
            target(&one),
            "v5",
            "hot {hot}: an unlisted request by its id"
        );
        let (status, _) = lab
            .call(Method::GET, &paths::pending_call("no-such-id"), None, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
