//! Notifications (issue #28) to a real HTTP receiver on loopback that checks every signature:
//! a request's opening, its decision and another's expiry arrive signed, as generic JSON and as
//! a Slack card; a receiver that is down blocks nothing (the call is still decided and
//! released) and its failures are counted.

use super::*;
use axum::{Router, body::Bytes, http::HeaderMap, routing::post};
use hitl_wire::notify::{Kind, Notification, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};
use tokio::sync::mpsc;

const SECRET: &[u8] = b"a notification key of enough bytes";

/// What the receiver got on each path, once its signature checked out.
type Heard = mpsc::UnboundedReceiver<(String, serde_json::Value)>;

/// A receiver on 127.0.0.1 (paths `/hooks` and `/slack`) that answers 401 to any request whose
/// signature does not verify, else records it: its base URL and what it heard.
async fn receiver() -> (String, Heard) {
    let (tx, rx) = mpsc::unbounded_channel();
    let hear = |path: &'static str, tx: mpsc::UnboundedSender<(String, serde_json::Value)>| {
        post(move |headers: HeaderMap, body: Bytes| async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            if verify(
                SECRET,
                &header(SIGNATURE_HEADER),
                &header(TIMESTAMP_HEADER),
                &body,
                now,
            )
            .is_err()
            {
                return StatusCode::UNAUTHORIZED;
            }
            let _ = tx.send((path.to_owned(), serde_json::from_slice(&body).unwrap()));
            StatusCode::NO_CONTENT
        })
    };
    let app = Router::new()
        .route("/hooks", hear("/hooks", tx.clone()))
        .route("/slack", hear("/slack", tx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, rx)
}

fn notifying(base: &str, ttl: Duration) -> Lab {
    let mut settings = super::requests::settings(Duration::from_secs(300));
    settings.clocks.ttl = ttl;
    settings.notify = Some(crate::notify::Receivers {
        webhooks: vec![format!("{base}/hooks")],
        slack: vec![format!("{base}/slack")],
        secret: SECRET.to_vec(),
        review_url: Some("https://review.example".into()),
    });
    let (audit, _) = Store::open(Path::new(":memory:")).unwrap();
    Lab {
        gate: Gate::start(settings, audit, Vec::new()),
        token: None,
    }
}

/// The next generic notification the receiver heard (checking a Slack card came with it).
async fn next(heard: &mut Heard) -> Notification {
    let mut slack = false;
    loop {
        let (path, body) = tokio::time::timeout(Duration::from_secs(10), heard.recv())
            .await
            .expect("a notification within 10 s")
            .unwrap();
        if path == "/slack" {
            assert!(
                body["text"].as_str().is_some() && body["blocks"].is_array(),
                "{body}"
            );
            slack = true;
            continue;
        }
        let notification: Notification = serde_json::from_value(body).unwrap();
        if !slack {
            // The Slack card of the same notification may come just after.
            let (path, _) = tokio::time::timeout(Duration::from_secs(10), heard.recv())
                .await
                .expect("its Slack card")
                .unwrap();
            assert_eq!(path, "/slack");
        }
        return notification;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_opening_a_decision_and_an_expiry_are_notified_signed() {
    let (base, mut heard) = receiver().await;
    let lab = notifying(&base, Duration::from_secs(2));
    let held = lab.check(MIGRATE);
    let opened = next(&mut heard).await;
    assert_eq!(opened.kind, Kind::Opened);
    assert_eq!(
        (
            opened.tool.as_str(),
            opened.arguments.as_str(),
            opened.requester.as_deref()
        ),
        ("run_migration", r#"{"target_version":"v3"}"#, Some("alice"))
    );
    let id = opened.request_id.clone();
    assert_eq!(
        opened.link.as_deref(),
        Some(format!("https://review.example/#request-{id}").as_str())
    );
    let (status, _) = lab
        .decide(&id, r#"{"approved":true,"reviewer":"bob","reason":"ok"}"#)
        .await;
    assert_eq!(status, StatusCode::OK);
    held.await.unwrap();
    let decided = next(&mut heard).await;
    assert_eq!(
        (
            decided.kind,
            decided.request_id.as_str(),
            decided.outcome.as_deref(),
            decided.reviewer.as_deref()
        ),
        (Kind::Decided, id.as_str(), Some("approved"), Some("bob"))
    );
    // Another request nobody decides expires with its TTL.
    let other = lab.check(MIGRATE_V4);
    assert_eq!(next(&mut heard).await.kind, Kind::Opened);
    other.abort();
    let expired = next(&mut heard).await;
    assert_eq!(expired.kind, Kind::Expired);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_is_down_blocks_nothing_and_is_counted() {
    // Nothing listens on this port: every delivery fails (after its retries).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let lab = notifying(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_secs(3600),
    );
    let held = lab.check(MIGRATE);
    let id = lab.parked(1).await.pending.remove(0).id;
    let (status, _) = lab
        .decide(&id, r#"{"approved":true,"reviewer":"bob"}"#)
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(answer, Answer::Allow { .. }), "{answer:?}");
    for _ in 0..300 {
        let (_, metrics) = lab.call(Method::GET, paths::METRICS, None, None).await;
        let text = String::from_utf8_lossy(&metrics).into_owned();
        if text.contains(r#"hitl_extauth_notifications_total{result="failed"} 4"#) {
            return; // opened and decided, each to two receivers
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the failed deliveries were not counted");
}
