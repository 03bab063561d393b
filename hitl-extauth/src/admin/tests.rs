//! The gate and its admin API end to end in-process: checks go straight to [`Gate::check`],
//! the API is driven through the router. (Through a real Envoy: `tests/extauth_gate.rs`.)

use std::{path::Path, sync::Arc, time::Duration};

use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest,
    attribute_context::{HttpRequest, Request as AttrRequest},
};
use futures::StreamExt as _;
use hitl_wire::{
    extauth::{ApiError, DecidedCall, HistoryPage, Outcome, PendingList, paths},
    sse::{CONTENT_TYPE, SseEvent, SseParser},
};
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use tower::ServiceExt as _;

use hitl_wire::approval::Signer;

use super::router;
use crate::{
    classify::AllowList,
    config::AdminAccess,
    gate::{Answer, Gate, NO_REASON_GIVEN, NO_VERIFIED_REQUESTER, Settings},
    park::Capacity,
    requester::verify::tests::TestIssuer,
    store::Store,
};

/// Signs the requester tokens of these tests; the gate verifies with its JWKS.
static ISSUER: std::sync::LazyLock<TestIssuer> = std::sync::LazyLock::new(TestIssuer::new);

const MIGRATE: &str = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"run_migration","arguments":{"target_version":"v3"}}}"#;
const MIGRATE_V4: &str = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"run_migration","arguments":{"target_version":"v4"}}}"#;

/// No token: the API open (these tests are about the gate, not the credential).
fn access(token: Option<String>) -> AdminAccess {
    token.map_or(AdminAccess::Open, AdminAccess::Token)
}

struct Lab {
    gate: Arc<Gate>,
    token: Option<String>,
}

impl Lab {
    fn new() -> Self {
        Self::with(Duration::from_secs(300), 100, None)
    }

    fn with(park_timeout: Duration, max_parked: usize, token: Option<&str>) -> Self {
        Self::configured(park_timeout, max_parked, token, true)
    }

    fn configured(
        park_timeout: Duration,
        max_parked: usize,
        token: Option<&str>,
        require_verified_requester: bool,
    ) -> Self {
        let (audit, _) = Store::open(Path::new(":memory:")).unwrap();
        let gate = Gate::start(
            Settings {
                policy: std::sync::Arc::new(hitl_wire::policy::Policy::anyone_once()),
                reviewers: None,
                allow: AllowList::default(),
                park_timeout,
                capacity: Capacity {
                    total: max_parked,
                    per_requester: max_parked,
                    bytes: usize::MAX,
                },
                require_verified_requester,
                verifier: Some(ISSUER.verifier()),
                signer: Some(Signer::from_seed([1; 32])),
                reviewer_verified: true,
                clocks: crate::approval_request::Clocks {
                    ttl: Duration::from_secs(24 * 3600),
                    window: Duration::from_secs(900),
                    reject_hold: crate::gate::REJECTION_HOLD,
                },
                notify: None,
            },
            audit,
            Vec::new(),
        );
        Self {
            gate,
            token: token.map(str::to_owned),
        }
    }

    /// Start a `Check` for a POST of `body`, as Envoy would send it.
    fn check(&self, body: &str) -> tokio::task::JoinHandle<Answer> {
        self.check_request(post(body))
    }

    fn check_request(&self, check: CheckRequest) -> tokio::task::JoinHandle<Answer> {
        let gate = Arc::clone(&self.gate);
        tokio::spawn(async move { gate.check(check).await })
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (StatusCode, Vec<u8>) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        let response = router(Arc::clone(&self.gate), access(self.token.clone()), vec![])
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, bytes.to_vec())
    }

    async fn get<T: DeserializeOwned>(&self, uri: &str) -> T {
        let (status, body) = self
            .call(Method::GET, uri, None, self.token.as_deref())
            .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    async fn decide(&self, id: &str, body: &str) -> (StatusCode, Vec<u8>) {
        self.call(
            Method::POST,
            &paths::decide(id),
            Some(body),
            self.token.as_deref(),
        )
        .await
    }

    /// Wait until `n` calls are parked; return them.
    async fn parked(&self, n: usize) -> PendingList {
        for _ in 0..500 {
            let list: PendingList = self.get(paths::PENDING).await;
            if list.pending.len() == n {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never saw {n} parked calls");
    }

    /// Wait until the history holds `n` records; return them.
    async fn history(&self, n: usize) -> HistoryPage {
        for _ in 0..500 {
            let page: HistoryPage = self.get(paths::HISTORY).await;
            if page.items.len() == n {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never saw {n} history records");
    }
}

/// A POST of `body` carrying alice's requester token.
fn post(body: &str) -> CheckRequest {
    post_from(body, Some("alice"), "alice")
}

/// A POST of `body` with `x-user-id: claimed`, and a requester token (as Envoy forwards it)
/// for `verified` (none at all for `None`).
fn post_from(body: &str, verified: Option<&str>, claimed: &str) -> CheckRequest {
    let mut headers: std::collections::HashMap<String, String> = [
        ("content-type", "application/json"),
        ("content-length", &body.len().to_string()),
        ("x-user-id", claimed),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(sub) = verified {
        headers.insert(
            "authorization".into(),
            format!("Bearer {}", ISSUER.mint(sub)),
        );
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    method: "POST".into(),
                    path: "/privileged/mcp".into(),
                    headers,
                    size: body.len() as i64,
                    raw_body: body.as_bytes().to_vec(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

fn error_of(body: &[u8]) -> String {
    serde_json::from_slice::<ApiError>(body).unwrap().error
}

#[tokio::test]
async fn housekeeping_passes_and_junk_is_denied_without_parking() {
    let lab = Lab::new();
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    assert_eq!(
        lab.check(ping).await.unwrap(),
        Answer::Allow {
            approval_id: None,
            token: None
        }
    );
    let Answer::Deny { reason, id } = lab.check("[]").await.unwrap() else {
        panic!("batch passed");
    };
    assert!(reason.contains("batches"), "{reason}");
    assert_eq!(id, None);
    assert!(lab.gate.pending().is_empty());
}

#[tokio::test]
async fn approve_releases_the_call_and_is_recorded() {
    let lab = Lab::new();
    let check = lab.check(MIGRATE);
    let pending = lab.parked(1).await.pending;
    let call = &pending[0];
    assert_eq!(call.tool_name, "run_migration");
    assert_eq!(call.tool_args, serde_json::json!({"target_version": "v3"}));
    assert_eq!(call.rpc_method, "tools/call");
    assert_eq!(call.body, MIGRATE);
    assert_eq!(call.body_sha256, hex::encode(Sha256::digest(MIGRATE)));
    assert_eq!(call.requester.as_deref(), Some("alice"));
    assert_eq!(call.headers["authorization"], "[redacted]");
    assert!(call.expires_at > call.received_at);

    let (status, body) = lab
        .decide(
            &call.id,
            r#"{"approved":true,"reason":"looks fine","reviewer":"bob"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let decided: DecidedCall = serde_json::from_slice(&body).unwrap();
    assert_eq!(decided.outcome, Outcome::Approved);
    assert_eq!(decided.reviewer.as_deref(), Some("bob"));
    let Answer::Allow {
        approval_id,
        token: Some(token),
    } = check.await.unwrap()
    else {
        panic!("approved without a token");
    };
    assert_eq!(approval_id, Some(call.id.clone()));
    let claims = Signer::from_seed([1; 32]).verifier().open(&token).unwrap();
    assert_eq!(claims.id, call.id);
    assert_eq!(claims.sha256, call.body_sha256);
    assert_eq!(claims.tool, "run_migration");
    assert_eq!(claims.reviewer, "bob");
    assert_eq!(claims.exp - claims.iat, hitl_wire::approval::TTL_SECS);
    assert!(lab.gate.pending().is_empty());
    // /decide answered after the record was committed: history has it at once.
    let history: HistoryPage = lab.get(paths::HISTORY).await;
    assert_eq!(history.items, [decided]);
}

#[tokio::test]
async fn reject_denies_with_the_reason_verbatim() {
    let lab = Lab::new();
    let check = lab.check(MIGRATE);
    let id = lab.parked(1).await.pending[0].id.clone();
    let (status, _) = lab
        .decide(
            &id,
            r#"{"approved":false,"reason":"not during business hours ✋","reviewer":"bob"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        check.await.unwrap(),
        Answer::Deny {
            reason: "not during business hours ✋".into(),
            id: Some(id)
        }
    );
}

#[tokio::test]
async fn reject_without_reason_says_so() {
    let lab = Lab::new();
    let check = lab.check(MIGRATE);
    let id = lab.parked(1).await.pending[0].id.clone();
    assert_eq!(
        lab.decide(&id, r#"{"approved":false,"reviewer":"bob"}"#)
            .await
            .0,
        StatusCode::OK
    );
    let Answer::Deny { reason, .. } = check.await.unwrap() else {
        panic!("rejected call passed")
    };
    assert_eq!(reason, NO_REASON_GIVEN);
    assert_eq!(
        lab.history(1).await.items[0].reason,
        "",
        "the record keeps what was given"
    );
}

#[tokio::test]
async fn decisions_apply_exactly_once() {
    let lab = Lab::new();
    let check = lab.check(MIGRATE);
    let id = lab.parked(1).await.pending[0].id.clone();
    assert_eq!(
        lab.decide(&id, r#"{"approved":true,"reviewer":"bob"}"#)
            .await
            .0,
        StatusCode::OK
    );
    check.await.unwrap();
    let (status, body) = lab
        .decide(&id, r#"{"approved":false,"reviewer":"bob"}"#)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        error_of(&body),
        format!("call {id} was already closed: approved")
    );
    let (status, body) = lab
        .decide("no-such-id", r#"{"approved":true,"reviewer":"bob"}"#)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&body), r#"no parked call with id "no-such-id""#);
}

#[tokio::test]
async fn bad_decide_bodies_change_nothing() {
    let lab = Lab::new();
    let _check = lab.check(MIGRATE);
    let id = lab.parked(1).await.pending[0].id.clone();
    for (body, status) in [
        ("", StatusCode::BAD_REQUEST),
        ("{", StatusCode::BAD_REQUEST),
        ("approve", StatusCode::BAD_REQUEST),
        ("{}", StatusCode::UNPROCESSABLE_ENTITY),
        (
            r#"{"approved":"yes","reviewer":"bob"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"approved":true,"extra":1,"reviewer":"bob"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (got, answer) = lab.decide(&id, body).await;
        assert_eq!(got, status, "{body:?}");
        assert!(
            error_of(&answer).starts_with("expected {\"approved\""),
            "{body:?}"
        );
    }
    assert_eq!(lab.parked(1).await.pending[0].id, id);
}

#[tokio::test]
async fn undecided_park_expires_into_a_denial() {
    let lab = Lab::with(Duration::from_secs(1), 100, None);
    let check = lab.check(MIGRATE);
    let Answer::Deny { reason, id } = check.await.unwrap() else {
        panic!("expired call passed")
    };
    // Issue #26: the hold ran out, the approval request did not.
    let id = id.expect("the request's id");
    assert!(
        reason.starts_with(&format!(
            "park timed out after 1 s with no decision from a reviewer; the approval request \
             {id} stays open until "
        )),
        "{reason}"
    );
    assert!(reason.ends_with("send the same call again and it passes once"));
    let record = &lab.history(1).await.items[0];
    assert_eq!((record.outcome, &record.call.id), (Outcome::Expired, &id));
    assert_eq!(record.reason, reason);
    let pending = lab.gate.pending();
    let view = pending[0].request.as_ref().unwrap();
    assert_eq!((pending[0].id.as_str(), view.waiting), (id.as_str(), false));
}

#[tokio::test]
async fn cancelled_check_is_abandoned_at_once() {
    let lab = Lab::new();
    let check = lab.check(MIGRATE);
    let id = lab.parked(1).await.pending[0].id.clone();
    check.abort();
    let record = &lab.history(1).await.items[0];
    assert_eq!(
        (record.outcome, record.call.id.as_str()),
        (Outcome::Abandoned, id.as_str())
    );
    // Issue #26: the request outlives the attempt, still decidable with nobody waiting.
    let pending = lab.gate.pending();
    assert!(!pending[0].request.as_ref().unwrap().waiting);
    let (status, _) = lab
        .decide(&id, r#"{"approved":true,"reviewer":"bob"}"#)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(lab.gate.pending().is_empty());
    // The retry uses the approval, once.
    assert!(matches!(
        lab.check(MIGRATE).await.unwrap(),
        Answer::Allow { .. }
    ));
    let again = lab.check(MIGRATE);
    assert_eq!(
        lab.parked(1).await.pending[0]
            .request
            .as_ref()
            .unwrap()
            .attempts,
        1
    );
    again.abort();
}

#[tokio::test]
async fn a_full_lot_denies_new_calls() {
    let lab = Lab::with(Duration::from_secs(300), 1, None);
    let _first = lab.check(MIGRATE);
    lab.parked(1).await;
    let Answer::Deny { reason, id } = lab.check(MIGRATE).await.unwrap() else {
        panic!("call over capacity passed")
    };
    assert_eq!(id, None);
    assert!(reason.contains("already waiting for review"), "{reason}");
}

#[tokio::test]
async fn admin_token_guards_bodies_and_decisions_only() {
    let lab = Lab::with(Duration::from_secs(300), 100, Some("s3cret"));
    for uri in [paths::PENDING, paths::HISTORY, paths::EVENTS] {
        for token in [None, Some("wrong"), Some("s3cre"), Some("s3cret2")] {
            let (status, body) = lab.call(Method::GET, uri, None, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} {token:?}");
            assert!(error_of(&body).contains("Bearer"));
        }
    }
    let (status, _) = lab
        .call(
            Method::POST,
            "/decide/x",
            Some(r#"{"approved":true,"reviewer":"bob"}"#),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = lab
        .call(
            Method::POST,
            "/decide/x",
            Some(r#"{"approved":true,"reviewer":"bob"}"#),
            Some("s3cret"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for uri in [paths::HEALTHZ, paths::METRICS, paths::READYZ] {
        assert_eq!(
            lab.call(Method::GET, uri, None, None).await.0,
            StatusCode::OK,
            "{uri}"
        );
    }
    let _: PendingList = lab.get(paths::PENDING).await;
}

#[tokio::test]
async fn history_rejects_bad_queries() {
    let lab = Lab::new();
    for uri in [
        "/history?limit=x",
        "/history?outcome=maybe",
        "/history?before=abc",
    ] {
        let (status, body) = lab.call(Method::GET, uri, None, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(!error_of(&body).is_empty());
    }
    let page: HistoryPage = lab
        .get("/history?limit=5&outcome=approved&tool=run_migration")
        .await;
    assert!(page.items.is_empty());
}

#[tokio::test]
async fn events_replay_pending_then_follow_live() {
    let lab = Lab::new();
    let first = lab.check(MIGRATE);
    let first_id = lab.parked(1).await.pending[0].id.clone();

    let response = router(Arc::clone(&lab.gate), AdminAccess::Open, vec![])
        .oneshot(Request::get(paths::EVENTS).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
    let mut stream = response.into_body().into_data_stream();
    let mut parser = SseParser::new();
    let mut ready = std::collections::VecDeque::new();
    let mut next_event = async || -> (String, serde_json::Value) {
        loop {
            if let Some(SseEvent { event, data }) = ready.pop_front() {
                return (event, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .expect("no event within 10 s")
                .unwrap()
                .unwrap();
            ready.extend(parser.push(&chunk).unwrap());
        }
    };

    let (name, data) = next_event().await;
    assert_eq!(
        (name.as_str(), data["type"].as_str()),
        ("parked", Some("parked"))
    );
    assert_eq!(data["call"]["id"], first_id.as_str(), "replayed on connect");

    let second = lab.check(MIGRATE_V4);
    let (name, data) = next_event().await;
    assert_eq!(name, "parked");
    let second_id = data["call"]["id"].as_str().unwrap().to_owned();
    assert_ne!(second_id, first_id);

    lab.decide(
        &first_id,
        r#"{"approved":false,"reason":"no","reviewer":"bob"}"#,
    )
    .await;
    first.await.unwrap();
    let (name, data) = next_event().await;
    assert_eq!(name, "decided");
    assert_eq!(data["record"]["id"], first_id.as_str());
    assert_eq!(data["record"]["outcome"], "rejected");

    // Issue #26: a hung-up caller leaves its request open; the card is re-announced.
    second.abort();
    let (name, data) = next_event().await;
    assert_eq!(name, "parked");
    assert_eq!(data["call"]["id"], second_id.as_str());
    assert_eq!(data["call"]["request"]["waiting"], false);
}

#[tokio::test]
async fn metrics_count_parks_and_outcomes() {
    let lab = Lab::new();
    let check = lab.check(MIGRATE);
    let id = lab.parked(1).await.pending[0].id.clone();
    let (_, text) = lab.call(Method::GET, paths::METRICS, None, None).await;
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("hitl_extauth_parked 1\n"), "{text}");
    lab.decide(&id, r#"{"approved":true,"reviewer":"bob"}"#)
        .await;
    check.await.unwrap();
    let (_, text) = lab.call(Method::GET, paths::METRICS, None, None).await;
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("hitl_extauth_parked 0\n"), "{text}");
    assert!(
        text.contains("hitl_extauth_decisions_total{outcome=\"approved\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("hitl_extauth_park_wait_seconds_count 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_forged_identity_header_without_a_verified_token_is_denied() {
    let lab = Lab::new();
    let answer = lab
        .check_request(post_from(MIGRATE, None, "alice"))
        .await
        .unwrap();
    assert_eq!(
        answer,
        Answer::Deny {
            reason: NO_VERIFIED_REQUESTER.into(),
            id: None
        }
    );
    assert!(lab.gate.pending().is_empty(), "nothing parked");
    // Housekeeping needs no requester.
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    assert_eq!(
        lab.check_request(post_from(ping, None, "x")).await.unwrap(),
        Answer::Allow {
            approval_id: None,
            token: None,
        }
    );
}

#[tokio::test]
async fn the_requester_is_the_verified_one_not_the_header() {
    let lab = Lab::new();
    let _check = lab.check_request(post_from(MIGRATE, Some("Bob"), "alice"));
    let call = lab.parked(1).await.pending.remove(0);
    assert_eq!(
        call.requester.as_deref(),
        Some("bob"),
        "verified, normalised"
    );
    assert_eq!(
        call.claimed_requester.as_deref(),
        Some("alice"),
        "shown only"
    );
}

#[tokio::test]
async fn a_verified_token_with_a_look_alike_name_is_denied() {
    let lab = Lab::new();
    let answer = lab
        .check_request(post_from(MIGRATE, Some("alic\u{0435}"), "alice"))
        .await
        .unwrap();
    let Answer::Deny { reason, id: None } = answer else {
        panic!("parked: {answer:?}");
    };
    assert!(reason.contains("several scripts"), "{reason}");
}

#[tokio::test]
async fn the_opt_out_parks_unverified_calls_without_a_requester() {
    let lab = Lab::configured(Duration::from_secs(300), 100, None, false);
    let _check = lab.check_request(post_from(MIGRATE, None, "mallory"));
    let call = lab.parked(1).await.pending.remove(0);
    assert_eq!(call.requester, None);
    assert_eq!(call.claimed_requester.as_deref(), Some("mallory"));
}

mod notify;
mod policy;
mod replicas;
mod requests;

/// The router serves exactly the operations of its OpenAPI document, each behind the token
/// where the document says so (their answers: `tests/openapi.rs`).
#[test]
fn the_router_serves_what_its_openapi_document_lists() {
    let served: std::collections::BTreeSet<_> = super::served(&[])
        .into_iter()
        .map(|r| (r.method.as_str().to_lowercase(), r.path, r.access))
        .collect();
    let documented: std::collections::BTreeSet<_> = hitl_wire::extauth::openapi::routes()
        .into_iter()
        .map(|(method, path, access)| (method.to_owned(), path, access))
        .collect();
    assert_eq!(served, documented);
}
