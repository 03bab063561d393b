//! The store's suite: every test runs on each engine — SQLite in memory or in a file, and
//! PostgreSQL on a server of its own under `target/` (Debian's `postgresql`; see
//! `hitl_lab::postgres`) — through the same [`Store`] handle the gate uses.

use std::{path::Path, sync::Arc};

use hitl_wire::extauth::{DecidedCall, HistoryPage, HistoryQuery, Outcome, ParkedCall};
use time::{Duration, OffsetDateTime};

use super::*;

/// Where one test's store lives; dropping it removes it (and stops its server).
enum Place {
    Sqlite(PathBuf),
    Postgres(hitl_lab::postgres::Server),
}

impl Place {
    fn new(engine: &str) -> Self {
        let dir = hitl_lab::bins::target_dir()
            .join("store-tests")
            .join(uuid::Uuid::new_v4().to_string());
        match engine {
            "sqlite" => {
                std::fs::create_dir_all(&dir).unwrap();
                Place::Sqlite(dir)
            }
            _ => Place::Postgres(hitl_lab::postgres::Server::start(&dir).unwrap()),
        }
    }

    fn location(&self) -> Location {
        match self {
            Place::Sqlite(dir) => Location::Sqlite(dir.join("audit.db")),
            Place::Postgres(server) => Location::Postgres {
                url: server.url("postgres"),
                password: Some(server.password.clone()),
                ca_file: None,
            },
        }
    }

    /// The store, as the one replica `test` (a restart is a new life of it).
    fn open(&self) -> (Store, Opened) {
        Store::open_as(&self.location(), Some("test")).unwrap()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Place::Sqlite(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A PostgreSQL server for one test (to stop and start), and the store's location on it.
fn postgres_of_its_own() -> (hitl_lab::postgres::Server, Location) {
    let dir = hitl_lab::bins::target_dir()
        .join("store-tests")
        .join(uuid::Uuid::new_v4().to_string());
    let server = hitl_lab::postgres::Server::start(&dir).unwrap();
    let location = Location::Postgres {
        url: server.url("postgres"),
        password: Some(server.password.clone()),
        ca_file: None,
    };
    (server, location)
}

/// Each test, once per engine: `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_each_engine {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$name(super::Place::new("sqlite")).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$name(super::Place::new("postgres")).await;
            }
        }
    )*};
}

on_each_engine!(
    park_close_history_lookup,
    second_close_is_refused,
    close_without_park_still_records,
    history_pages_and_filters,
    pending_at_restart_is_lost_and_history_survives,
    a_failed_command_leaves_nothing_and_spares_its_batch,
    a_request_opens_attaches_and_moves_once,
    one_live_request_per_action_is_a_store_fact,
    the_oldest_open_requests_are_listed_and_no_more,
);

fn call(id: &str, tool: &str) -> Arc<ParkedCall> {
    let received_at = OffsetDateTime::now_utc();
    Arc::new(ParkedCall {
        id: id.into(),
        received_at,
        method: "POST".into(),
        path: "/privileged/mcp".into(),
        headers: [
            ("x-user-id".to_owned(), "alice".to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ]
        .into(),
        rpc_method: "tools/call".into(),
        tool_name: tool.into(),
        tool_args: serde_json::json!({"target_version": "v3"}),
        body: "{}".into(),
        body_sha256: "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".into(),
        expires_at: received_at + Duration::seconds(600),
        requester: Some("alice".into()),
        claimed_requester: Some("alice".into()),
        preview_of_bytes: None,
        request: None,
    })
}

fn closed(call: &ParkedCall, outcome: Outcome) -> DecidedCall {
    DecidedCall {
        call: call.clone(),
        outcome,
        reviewer: Some("bob".into()),
        reason: format!("{} by bob", outcome.as_str()),
        decided_at: call.received_at + Duration::milliseconds(1500),
        waited_ms: 1500,
        count: 1,
    }
}

async fn park_close_history_lookup(place: Place) {
    let (audit, opened) = place.open();
    assert_eq!(opened.lost, 0);
    let a = call("a", "run_migration");
    let b = call("b", "truncate_table");
    audit.park(a.clone());
    audit.park(b.clone());
    assert_eq!(audit.lookup("a").await.unwrap(), Some(Standing::Pending));
    assert_eq!(audit.lookup("zzz").await.unwrap(), None);
    assert!(
        audit
            .history(HistoryQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    audit
        .close(closed(&a, Outcome::Approved))
        .await
        .unwrap()
        .unwrap();
    audit
        .close(closed(&b, Outcome::Rejected))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        audit.lookup("a").await.unwrap(),
        Some(Standing::Closed(Outcome::Approved))
    );

    let page = audit.history(HistoryQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(
        page.items[0],
        closed(&b, Outcome::Rejected),
        "newest first, round trip"
    );
    assert_eq!(page.items[1].call.id, "a");
    assert_eq!(page.next_before, None);
}

async fn second_close_is_refused(place: Place) {
    let (audit, _) = place.open();
    let a = call("a", "run_migration");
    audit.park(a.clone());
    audit
        .close(closed(&a, Outcome::Expired))
        .await
        .unwrap()
        .unwrap();
    assert!(
        audit
            .close(closed(&a, Outcome::Approved))
            .await
            .unwrap()
            .is_err()
    );
    assert_eq!(
        audit.lookup("a").await.unwrap(),
        Some(Standing::Closed(Outcome::Expired))
    );
}

async fn close_without_park_still_records(place: Place) {
    let (audit, _) = place.open();
    let a = call("a", "run_migration");
    audit
        .close(closed(&a, Outcome::Abandoned))
        .await
        .unwrap()
        .unwrap();
    audit.park(a.clone());
    assert_eq!(
        audit.lookup("a").await.unwrap(),
        Some(Standing::Closed(Outcome::Abandoned))
    );
}

async fn history_pages_and_filters(place: Place) {
    let (audit, _) = place.open();
    for i in 0..5 {
        let c = call(
            &format!("c{i}"),
            if i % 2 == 0 { "run_migration" } else { "other" },
        );
        audit.park(c.clone());
        let outcome = if i < 3 {
            Outcome::Approved
        } else {
            Outcome::Rejected
        };
        audit.close(closed(&c, outcome)).await.unwrap().unwrap();
    }
    let ids = |page: &HistoryPage| {
        page.items
            .iter()
            .map(|r| r.call.id.clone())
            .collect::<Vec<_>>()
    };

    let first = audit
        .history(HistoryQuery {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&first), ["c4", "c3"]);
    let second = audit
        .history(HistoryQuery {
            limit: Some(2),
            before: first.next_before.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&second), ["c2", "c1"]);
    let third = audit
        .history(HistoryQuery {
            limit: Some(2),
            before: second.next_before.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&third), ["c0"]);
    assert_eq!(third.next_before, None);

    let approved = audit
        .history(HistoryQuery {
            outcome: Some(Outcome::Approved),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&approved), ["c2", "c1", "c0"]);
    let tool = audit
        .history(HistoryQuery {
            tool: Some("other".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&tool), ["c3", "c1"]);
    assert!(matches!(
        audit
            .history(HistoryQuery {
                before: Some("x".into()),
                ..Default::default()
            })
            .await,
        Err(StoreError::BadCursor(_))
    ));
}

async fn pending_at_restart_is_lost_and_history_survives(place: Place) {
    {
        let (audit, _) = place.open();
        let a = call("a", "run_migration");
        let b = call("b", "run_migration");
        audit.park(a.clone());
        audit.park(b.clone());
        audit
            .close(closed(&a, Outcome::Approved))
            .await
            .unwrap()
            .unwrap();
    }
    let (audit, opened) = place.open();
    assert_eq!(opened.lost, 1);
    let page = audit.history(HistoryQuery::default()).await.unwrap();
    let summary: Vec<_> = page
        .items
        .iter()
        .map(|r| (r.call.id.as_str(), r.outcome))
        .collect();
    assert_eq!(summary, [("b", Outcome::Lost), ("a", Outcome::Approved)]);
    assert_eq!(page.items[0].reason, LOST_REASON);
    assert_eq!(page.items[0].reviewer, None);
    drop(audit);
    let (_, reopened) = place.open();
    assert_eq!(reopened.lost, 0);
}

/// A command that fails (a second close) is rolled back alone: the batch it shared a
/// transaction with still commits (PostgreSQL would abort the whole transaction otherwise).
async fn a_failed_command_leaves_nothing_and_spares_its_batch(place: Place) {
    let (audit, _) = place.open();
    let a = call("a", "run_migration");
    let b = call("b", "run_migration");
    audit.park(a.clone()).await.unwrap().unwrap();
    audit
        .close(closed(&a, Outcome::Expired))
        .await
        .unwrap()
        .unwrap();
    // Queued together: one fails, the others must land.
    let again = audit.close(closed(&a, Outcome::Approved));
    let parked = audit.park(b.clone());
    let closed_b = audit.close(closed(&b, Outcome::Rejected));
    assert!(again.await.unwrap().is_err());
    parked.await.unwrap().unwrap();
    closed_b.await.unwrap().unwrap();
    assert_eq!(
        audit.lookup("b").await.unwrap(),
        Some(Standing::Closed(Outcome::Rejected))
    );
    assert_eq!(
        audit.lookup("a").await.unwrap(),
        Some(Standing::Closed(Outcome::Expired))
    );
}

fn request(call: &ParkedCall, key: &str) -> requests::Row {
    requests::Row {
        approvals: Vec::new(),
        id: call.id.clone(),
        action_key: key.into(),
        state: crate::approval_request::State::Open,
        card: call.clone(),
        opened_at: call.received_at,
        open_until: call.received_at + Duration::hours(24),
        reviewer: None,
        reason: String::new(),
        decided_at: None,
        usable_until: None,
        attempts: 1,
        waiting: false,
    }
}

/// A request opens with its first attempt, a second attaches, each transition is won once,
/// and what is live is read back after a restart with its attempts counted.
async fn a_request_opens_attaches_and_moves_once(place: Place) {
    use crate::approval_request::{State, Step, state::next};
    let (store, _) = place.open();
    let first = call("r1", "run_migration");
    let second = call("r1-again", "run_migration");
    let row = request(&first, "key-1");
    store
        .park_for(
            first.clone(),
            Some(RequestWrite::Open(Box::new(row))),
            Caps::NONE,
        )
        .await
        .unwrap()
        .unwrap();
    store
        .park_for(
            second.clone(),
            Some(RequestWrite::Attach("r1".into())),
            Caps::NONE,
        )
        .await
        .unwrap()
        .unwrap();
    drop(store);
    let (store, opened) = place.open();
    assert_eq!(opened.lost, 2, "both attempts were held");
    assert_eq!(opened.requests.len(), 1, "the request outlives them");
    assert_eq!(
        (opened.requests[0].attempts, opened.requests[0].state),
        (2, State::Open)
    );

    let now = OffsetDateTime::now_utc();
    let approve = Transition {
        count: None,
        id: "r1".into(),
        from: State::Open,
        to: next(State::Open, Step::Approve).unwrap(),
        at: now,
        reviewer: Some("bob".into()),
        reason: Some("ok".into()),
        usable_until: Some(now + Duration::minutes(15)),
        used_by: None,
    };
    assert!(
        store
            .transition(approve.clone(), None)
            .await
            .unwrap()
            .unwrap()
    );
    assert!(
        !store.transition(approve, None).await.unwrap().unwrap(),
        "won once"
    );
    let used = crate::approval_request::use_by("r1", "r1-retry", now);
    assert!(
        store
            .transition(used.clone(), Some("r1-retry".into()))
            .await
            .unwrap()
            .unwrap()
    );
    assert!(
        !store.transition(used, None).await.unwrap().unwrap(),
        "used once"
    );
    drop(store);
    let (_, opened) = place.open();
    assert!(opened.requests.is_empty(), "a used request is not live");
}

/// Two requests of one action cannot both be live: the second open fails, and its attempt's
/// row goes with it (all or nothing).
async fn one_live_request_per_action_is_a_store_fact(place: Place) {
    let (store, _) = place.open();
    let a = call("a", "run_migration");
    let b = call("b", "run_migration");
    store
        .park_for(
            a.clone(),
            Some(RequestWrite::Open(Box::new(request(&a, "same")))),
            Caps::NONE,
        )
        .await
        .unwrap()
        .unwrap();
    let second = store
        .park_for(
            b.clone(),
            Some(RequestWrite::Open(Box::new(request(&b, "same")))),
            Caps::NONE,
        )
        .await
        .unwrap();
    // (As when another replica opened it a moment before: the error names that request.)
    assert!(
        matches!(&second, Err(StoreError::Raced(id)) if *id == request(&a, "same").id),
        "{second:?}"
    );
    assert_eq!(store.lookup("b").await.unwrap(), None);
    assert_eq!(store.lookup("a").await.unwrap(), Some(Standing::Pending));
}

/// A listing of open requests reads the oldest first and stops at its bound (the store may
/// hold far more than anybody lists).
async fn the_oldest_open_requests_are_listed_and_no_more(place: Place) {
    let (store, _) = place.open();
    for i in 1..=5 {
        opens(&store, &format!("q{i}"), &format!("key-{i}")).await;
    }
    let now = OffsetDateTime::now_utc();
    let ids = |rows: Vec<requests::Row>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .requests(requests::Which::Oldest(3), now)
            .await
            .unwrap()),
        ["q1", "q2", "q3"]
    );
    assert_eq!(
        ids(store
            .requests(requests::Which::Oldest(10), now)
            .await
            .unwrap())
        .len(),
        5
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_trail_and_its_journal_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = std::env::temp_dir().join(format!("hitl-extauth-modes-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.db");
    let (audit, _) = Store::open(&path).unwrap();
    let a = call("a", "run_migration");
    audit.park(a.clone()).await.unwrap().unwrap();
    for file in ["audit.db", "audit.db-wal", "audit.db-shm"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    drop(audit);
    // A trail an older version left world-readable is tightened when opened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _ = Store::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Park call `id` (a `run_migration`) on `store`, opening the request of action `key`.
async fn opens(store: &Store, id: &str, key: &str) {
    let parked = call(id, "run_migration");
    store
        .park_for(
            parked.clone(),
            Some(RequestWrite::Open(Box::new(request(&parked, key)))),
            Caps::NONE,
        )
        .await
        .unwrap()
        .unwrap();
}

/// The next request another replica changed, within 10 s.
async fn next_change(heard: &mut tokio::sync::mpsc::UnboundedReceiver<Change>) -> requests::Row {
    let change = tokio::time::timeout(std::time::Duration::from_secs(10), heard.recv())
        .await
        .unwrap()
        .unwrap();
    let Change::Request(row) = change else {
        panic!("{change:?}")
    };
    *row
}

/// Two replicas share one PostgreSQL store: opening the second loses nothing the first
/// holds; a change one makes is heard by the other (and not by itself); the calls of a
/// replica that falls silent for `DEAD_AFTER` are closed as lost, naming it.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_a_store_and_hear_each_other() {
    let place = Place::new("postgres");
    let (a, _) = Store::open_as(&place.location(), Some("a")).unwrap();
    opens(&a, "x", "k").await;
    let (b, opened) = Store::open_as(&place.location(), Some("b")).unwrap();
    assert_eq!(opened.lost, 0, "a live replica's held call is not lost");
    assert!(opened.requests[0].waiting, "held by another replica");
    let mut heard = b.changes().unwrap();
    let mut own = a.changes().unwrap();
    opens(&a, "y", "k2").await;
    let row = next_change(&mut heard).await;
    assert_eq!((row.id.as_str(), row.waiting), ("y", true));
    assert!(own.try_recv().is_err(), "a replica does not hear itself");

    // A third party's heartbeat, 11 s on: A (and B) look silent, their held calls are lost.
    let Location::Postgres { url, password, .. } = place.location() else {
        unreachable!()
    };
    let (lost, touched) = std::thread::spawn(move || {
        let mut engine = postgres::Postgres::open(&url, password.as_deref(), None).unwrap();
        let later = OffsetDateTime::now_utc() + Duration::seconds(11);
        let mut closed = None;
        engine
            .transaction(&mut |tx| closed = Some(replica::beat(tx, "c", later, true).unwrap()))
            .unwrap();
        closed.unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(lost, 2);
    assert_eq!(touched.len(), 2, "both requests now have nobody waiting");
    let page = b.history(HistoryQuery::default()).await.unwrap();
    assert!(
        page.items
            .iter()
            .all(|r| r.outcome == Outcome::Lost && r.reason.contains("replica a-")),
        "{page:?}"
    );
}

/// A replica restarted under its name closes its previous life's held call at once, and the
/// other replicas hear that nobody waits for that request any more.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_replica_tells_the_others_its_callers_are_gone() {
    let place = Place::new("postgres");
    let (a, _) = Store::open_as(&place.location(), Some("a")).unwrap();
    opens(&a, "x", "k").await;
    let (b, _) = Store::open_as(&place.location(), Some("b")).unwrap();
    let mut heard = b.changes().unwrap();
    drop(a); // kill -9, as far as the store can tell: its rows stay pending
    let (_a, opened) = Store::open_as(&place.location(), Some("a")).unwrap();
    assert_eq!(opened.lost, 1);
    let row = next_change(&mut heard).await;
    assert_eq!((row.id.as_str(), row.waiting), ("x", false));
}

/// A denial answered while PostgreSQL is away is kept and written once it is back: a kill
/// of the server loses no record a caller was answered with.
#[tokio::test(flavor = "multi_thread")]
async fn a_denial_made_while_postgres_is_away_reaches_the_history_when_it_is_back() {
    let (mut server, location) = postgres_of_its_own();
    let (store, _) = Store::open_as(&location, Some("test")).unwrap();
    server.kill();
    let denied = closed(&call("d", "run_migration"), Outcome::Denied);
    store.record(denied);
    store.flush().await;
    assert!(
        store
            .ready(std::time::Duration::from_secs(2))
            .await
            .is_err()
    );
    server.restart().unwrap();
    let mut page = None;
    for _ in 0..100 {
        if let Ok(found) = store.history(HistoryQuery::default()).await
            && !found.items.is_empty()
        {
            page = Some(found);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let page = page.expect("the denial reaches the history once the store is back");
    assert_eq!(
        page.items
            .iter()
            .map(|r| (r.call.id.as_str(), r.outcome))
            .collect::<Vec<_>>(),
        [("d", Outcome::Denied)]
    );
}

#[test]
fn a_password_never_shows_in_a_location() {
    let location = Location::Postgres {
        url: "postgres://hitl:s3cret@db:5432/gate".into(),
        password: None,
        ca_file: None,
    };
    assert_eq!(format!("{location:?}"), "postgres://hitl:***@db:5432/gate");
    for (url, shown) in [
        (
            "postgres://hitl@db/gate?sslmode=require&password=s3cret&x=1",
            "postgres://hitl@db/gate?sslmode=require&password=***&x=1",
        ),
        (
            "postgres://hitl@db/gate?PASSWORD=s3cret",
            "postgres://hitl@db/gate?PASSWORD=***",
        ),
        (
            "host=db user=hitl password='s3 \\'cret' dbname=gate",
            "host=db user=hitl password=*** dbname=gate",
        ),
        ("host=db password=s3cret", "host=db password=***"),
        (
            "postgres://hitl@db/gate?application_name=no-password=here",
            "postgres://hitl@db/gate?application_name=no-password=here",
        ),
    ] {
        assert_eq!(crate::store::postgres::redacted(url), shown, "{url}");
        assert!(
            !crate::store::postgres::redacted(url).contains("s3"),
            "{url}"
        );
    }
}

/// How many parks a second each engine commits when they come in bursts (a measurement, not
/// a check: `cargo test -p hitl-extauth --release -- --ignored parks_per_second --nocapture`;
/// the bench reports the gate's own figures).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement"]
async fn parks_per_second() {
    for engine in ["sqlite", "postgres"] {
        let place = Place::new(engine);
        let (store, _) = place.open();
        let n = 5000;
        let started = std::time::Instant::now();
        let mut acks = Vec::with_capacity(n);
        for i in 0..n {
            let c = call(&format!("p{i}"), "run_migration");
            let row = request(&c, &format!("key-{i}"));
            acks.push(store.park_for(c, Some(RequestWrite::Open(Box::new(row))), Caps::NONE));
        }
        for ack in acks {
            ack.await.unwrap().unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{engine}: {n} parks in {secs:.2} s = {:.0}/s",
            n as f64 / secs
        );
    }
}

/// With `STORE_CA_FILE` the store speaks TLS and believes only a server certificate from
/// that CA: the right CA connects, another CA is refused, and a plaintext client of a server
/// that demands TLS is told to set `STORE_CA_FILE`.
#[tokio::test(flavor = "multi_thread")]
async fn over_tls_the_store_believes_only_its_ca() {
    let dir = hitl_lab::bins::target_dir()
        .join("store-tests")
        .join(uuid::Uuid::new_v4().to_string());
    let issued = hitl_lab::gate_tls::GateTls::issue("store-test-ca").unwrap();
    let server =
        hitl_lab::postgres::Server::start_tls(&dir.join("cluster"), &issued.server).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &issued.ca).unwrap();
    let other = dir.join("other-ca.pem");
    std::fs::write(
        &other,
        hitl_lab::gate_tls::GateTls::issue("other").unwrap().ca,
    )
    .unwrap();
    let at = |ca_file: Option<&Path>| Location::Postgres {
        url: server.url("postgres"),
        password: Some(server.password.clone()),
        ca_file: ca_file.map(Path::to_path_buf),
    };

    let (store, _) = Store::open_at(&at(Some(&ca))).unwrap();
    store
        .ready(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    drop(store);
    let wrong = Store::open_at(&at(Some(&other))).unwrap_err().to_string();
    assert!(wrong.contains("cannot connect"), "{wrong}");
    let plain = Store::open_at(&at(None)).unwrap_err().to_string();
    assert!(
        plain.contains(hitl_wire::env::extauth::STORE_CA_FILE),
        "{plain}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A gate that starts before its PostgreSQL (a pod beside its database, the local lab's
/// processes) waits for it instead of failing: the store opens once the server is up.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_waits_for_its_postgres_to_come_up() {
    let (mut server, location) = postgres_of_its_own();
    server.kill();
    let opening = std::thread::spawn(move || Store::open_at(&location).map(|_| ()));
    std::thread::sleep(std::time::Duration::from_secs(1));
    server.restart().unwrap();
    opening.join().unwrap().unwrap();
}
