//! The HTTP surface in-process, against a fake admin API: who may decide, CSRF, separation
//! of duties, what reaches the gate, sign-in, assets and headers.

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    body::Body,
    extract::Path,
    http::{Request, StatusCode, header},
    response::Response,
    routing::{get, post},
};
use hitl_wire::extauth::{DecideRequest, DecidedCall, Outcome, PendingList, paths};
use tower::ServiceExt as _;

use super::*;
use crate::{
    schema::SchemaProbe,
    security::{Credentials, csrf},
    test_support::call_from,
};

const HOST: &str = "ui.test:8080";

/// A fake hitl-extauth admin API holding one pending call `c1` asked for by `alice`, recording
/// every decision it is sent.
async fn fake_gate() -> (String, Arc<Mutex<Vec<(String, DecideRequest)>>>) {
    let decisions = Arc::new(Mutex::new(Vec::new()));
    let seen = decisions.clone();
    let app = Router::new()
        .route(
            paths::PENDING,
            get(|| async {
                Json(PendingList {
                    pending: vec![call_from(Some("alice"), &[("x-user-id", "alice")])],
                    more: false,
                })
            }),
        )
        .route(
            paths::PENDING_CALL,
            get(|Path(id): Path<String>| async move {
                if id != "c1" {
                    return Err((
                        StatusCode::NOT_FOUND,
                        Json(hitl_wire::extauth::ApiError {
                            error: format!("no pending call {id}"),
                        }),
                    ));
                }
                Ok(Json(call_from(Some("alice"), &[("x-user-id", "alice")])))
            }),
        )
        .route(
            paths::DECIDE,
            post(
                move |Path(id): Path<String>, Json(req): Json<DecideRequest>| {
                    let seen = seen.clone();
                    async move {
                        seen.lock().unwrap().push((id.clone(), req.clone()));
                        if id != "c1" {
                            return Err((
                                StatusCode::NOT_FOUND,
                                Json(hitl_wire::extauth::ApiError {
                                    error: format!("no parked call {id}"),
                                }),
                            ));
                        }
                        let call = call_from(Some("alice"), &[]);
                        Ok(Json(DecidedCall {
                            decided_at: call.received_at,
                            call,
                            outcome: if req.approved {
                                Outcome::Approved
                            } else {
                                Outcome::Rejected
                            },
                            reviewer: req.reviewer,
                            reason: req.reason,
                            waited_ms: 1,
                            count: 1,
                        }))
                    }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, decisions)
}

struct Ui {
    app: Router,
    state: SharedState,
    decisions: Arc<Mutex<Vec<(String, DecideRequest)>>>,
}

async fn ui(trusted_header: Option<&'static str>, credentials: Option<&str>) -> Ui {
    let (gate, decisions) = fake_gate().await;
    let signer = Signer::new(Some("test-key")).unwrap();
    let state = Arc::new(AppState {
        live: Arc::new(Live::new()),
        admin: AdminClient::new(&gate, None).unwrap(),
        cards: CardMaker {
            schema: Arc::new(SchemaProbe::new(None).unwrap()),
        },
        identity: IdentitySource::new(
            trusted_header.map(axum::http::HeaderName::from_static),
            credentials.map(|c| Credentials::parse(c).unwrap()),
            signer.clone(),
        ),
        signer,
        cookies: cookies::Policy { secure: false },
        session_ttl: Duration::from_secs(3600),
        separation_of_duties: true,
        allowed_hosts: AllowedHosts::parse(HOST).unwrap(),
        throttle: Throttle::default(),
        oidc: None,
    });
    Ui {
        app: router(state.clone()),
        state,
        decisions,
    }
}

impl Ui {
    /// Send `request`, naming our host unless it names one itself, from a loopback peer (an
    /// auth proxy beside us) unless it names one itself.
    async fn send(&self, mut request: Request<Body>) -> Response {
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, header::HeaderValue::from_static(HOST));
        }
        if request
            .extensions()
            .get::<axum::extract::ConnectInfo<hitl_serve::Peer>>()
            .is_none()
        {
            let peer: hitl_serve::Peer = "127.0.0.1:40000".parse().unwrap();
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        self.app.clone().oneshot(request).await.unwrap()
    }

    /// Sign in as `user` with `password`: the `hitl_session=…` cookie pair.
    async fn session(&self, user: &str, password: &str) -> String {
        let ok = self
            .send(self.post(
                "/signin",
                &format!("username={user}&password={password}"),
                &[],
            ))
            .await;
        assert_eq!(ok.status(), StatusCode::SEE_OTHER);
        let set_cookie = ok.headers()[header::SET_COOKIE].to_str().unwrap();
        set_cookie.split(';').next().unwrap().to_owned()
    }

    /// `GET path` with the CSRF cookie and `session` (if any).
    async fn get(&self, path: &str, session: Option<&str>) -> Response {
        let cookie = match session {
            Some(session) => format!("hitl_csrf=c; {session}"),
            None => "hitl_csrf=c".to_owned(),
        };
        self.send(
            Request::get(path)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// A same-origin POST from a browser holding CSRF cookie `c`, with the right token.
    fn post(&self, uri: &str, body: &str, extra: &[(&str, &str)]) -> Request<Body> {
        let token = csrf::token_for(&self.state.signer, "c");
        let mut builder = Request::post(uri)
            .header(header::HOST, HOST)
            .header(header::ORIGIN, format!("http://{HOST}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(csrf::HEADER, token);
        let mut cookie = "hitl_csrf=c".to_owned();
        for (name, value) in extra {
            if *name == "cookie" {
                cookie.push_str("; ");
                cookie.push_str(value);
            } else {
                builder = builder.header(*name, *value);
            }
        }
        builder
            .header(header::COOKIE, cookie)
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    fn decided(&self) -> Vec<(String, DecideRequest)> {
        self.decisions.lock().unwrap().clone()
    }
}

async fn body_text(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn error_of(response: Response) -> String {
    let text = body_text(response).await;
    serde_json::from_str::<hitl_wire::extauth::ApiError>(&text)
        .unwrap_or_else(|_| panic!("not an ApiError: {text}"))
        .error
}

#[tokio::test]
async fn first_visit_gets_csrf_cookie_and_strict_headers() {
    let ui = ui(None, Some("bob:pw")).await;
    let response = ui
        .send(Request::get("/signin").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.starts_with("hitl_csrf="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let html = body_text(response).await;
    assert!(html.contains("Sign in"));
}

#[tokio::test]
async fn reading_needs_a_signed_in_reviewer() {
    let ui = ui(None, Some("bob:pw")).await;
    for page in ["/", "/history"] {
        let response = ui.get(page, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(response.headers()[header::LOCATION], "/signin", "{page}");
    }
    let live = ui.get("/live", None).await;
    assert_eq!(live.status(), StatusCode::UNAUTHORIZED);
    assert!(body_text(live).await.contains("sign in first"));
    let session = ui.session("bob", "pw").await;
    let queue = ui.get("/", Some(&session)).await;
    assert_eq!(queue.status(), StatusCode::OK);
    assert!(
        body_text(queue)
            .await
            .contains("Nothing is waiting for you")
    );
    // Behind an auth proxy without a built-in sign-in: 401 saying where sign-in happens.
    let proxied = ui_with_header_only().await;
    let refused = proxied.get("/", None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(body_text(refused).await.contains("x-forwarded-user"));
}

async fn ui_with_header_only() -> Ui {
    ui(Some("x-forwarded-user"), None).await
}

#[tokio::test]
async fn another_host_is_refused_but_health_answers() {
    let ui = ui(None, Some("bob:pw")).await;
    for path in ["/", "/signin", "/assets/app.js"] {
        let response = ui
            .send(
                Request::get(path)
                    .header(header::HOST, "rebound.evil.example:8080")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST, "{path}");
        let text = body_text(response).await;
        assert!(
            text.contains("rebound.evil.example:8080")
                && text.contains(hitl_wire::env::ui::ALLOWED_HOSTS),
            "{text}"
        );
    }
    let mut rebinding = ui.post("/signin", "username=bob&password=pw", &[]);
    rebinding.headers_mut().insert(
        header::HOST,
        header::HeaderValue::from_static("rebound.evil.example:8080"),
    );
    assert_eq!(
        ui.send(rebinding).await.status(),
        StatusCode::MISDIRECTED_REQUEST
    );
    let health = ui
        .send(
            Request::get("/healthz")
                .header(header::HOST, "10.244.0.7:8080")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn repeated_wrong_passwords_are_slowed_down() {
    let ui = ui(None, Some("bob:pw")).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = ui
            .send(ui.post("/signin", "username=bob&password=guess", &[]))
            .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert!(statuses[6..].iter().all(|s| *s == 429), "{statuses:?}");
    // Even the right password waits out the lock-out.
    let right = ui
        .send(ui.post("/signin", "username=bob&password=pw", &[]))
        .await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(right.headers().contains_key(header::RETRY_AFTER));
    assert!(body_text(right).await.contains("Too many failed sign-ins"));
}

#[tokio::test]
async fn a_session_cookie_replayed_after_sign_out_is_refused() {
    let ui = ui(None, Some("bob:pw")).await;
    let session = ui.session("bob", "pw").await;
    assert_eq!(ui.get("/", Some(&session)).await.status(), StatusCode::OK);
    let out = ui
        .send(ui.post("/signout", "", &[("cookie", &session)]))
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let replayed = ui.get("/", Some(&session)).await;
    assert_eq!(
        replayed.status(),
        StatusCode::SEE_OTHER,
        "the old cookie still works"
    );
    // The page says why: the session ended (as after a restart with a new key).
    assert_eq!(replayed.headers()[header::LOCATION], "/signin?ended=1");
    let note = body_text(ui.get("/signin?ended=1", None).await).await;
    assert!(note.contains("Your session has ended"), "{note}");
    assert_eq!(
        ui.get("/", None).await.headers()[header::LOCATION],
        "/signin"
    );
    let decide = ui
        .send(ui.post(
            "/calls/c1/decide",
            "decision=approve",
            &[("cookie", &session)],
        ))
        .await;
    assert_eq!(decide.status(), StatusCode::UNAUTHORIZED);
    assert!(ui.decided().is_empty());
    // Signing in again works.
    let fresh = ui.session("bob", "pw").await;
    assert_eq!(ui.get("/", Some(&fresh)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn decisions_without_csrf_proof_are_refused() {
    let ui = ui(Some("x-forwarded-user"), None).await;
    let who = [("x-forwarded-user", "bob")];

    let mut no_origin = ui.post("/calls/c1/decide", "decision=approve", &who);
    no_origin.headers_mut().remove(header::ORIGIN);
    let response = ui.send(no_origin).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(error_of(response).await.contains("Origin"));

    let mut cross = ui.post("/calls/c1/decide", "decision=approve", &who);
    cross
        .headers_mut()
        .insert(header::ORIGIN, "http://evil.test".parse().unwrap());
    assert_eq!(ui.send(cross).await.status(), StatusCode::FORBIDDEN);

    let mut no_token = ui.post("/calls/c1/decide", "decision=approve", &who);
    no_token.headers_mut().remove(csrf::HEADER);
    let response = ui.send(no_token).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(error_of(response).await.contains("CSRF"));

    let mut forged = ui.post("/calls/c1/decide", "decision=approve", &who);
    forged
        .headers_mut()
        .insert(csrf::HEADER, "00ff".parse().unwrap());
    assert_eq!(ui.send(forged).await.status(), StatusCode::FORBIDDEN);

    assert!(ui.decided().is_empty(), "nothing reached the gate");
}

/// The trusted header names a reviewer only on the auth proxy's connections: a client that
/// reached hitl-ui around the proxy gets nowhere with it.
#[tokio::test]
async fn the_trusted_header_from_around_the_proxy_names_nobody() {
    let ui = ui(Some("x-forwarded-user"), None).await;
    let around = |request: Request<Body>| {
        let mut request = request;
        let peer: hitl_serve::Peer = "10.0.0.5:40000".parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        request
    };
    let who = [("x-forwarded-user", "bob")];
    let response = ui
        .send(around(ui.post(
            "/calls/c1/decide",
            "decision=approve",
            &who,
        )))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let page = Request::get("/")
        .header("x-forwarded-user", "bob")
        .body(Body::empty())
        .unwrap();
    assert_ne!(ui.send(around(page)).await.status(), StatusCode::OK);
    assert!(ui.decided().is_empty(), "nothing reached the gate");
    // From the proxy (loopback), the same header is believed.
    let response = ui
        .send(ui.post("/calls/c1/decide", "decision=approve", &who))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        error_of(response).await
    );
}

#[test]
fn proxy_addresses_are_ips_or_cidrs_and_nothing_else() {
    use crate::security::identity::parse_proxies;
    let nets = parse_proxies(&["10.0.0.0/8".into(), " 192.168.1.7 ".into(), "::1".into()]).unwrap();
    assert_eq!(nets.len(), 3);
    let e = parse_proxies(&["proxy.local".into()]).unwrap_err();
    assert!(
        e.contains(hitl_wire::env::ui::TRUSTED_PROXY_ADDRS) && e.contains("proxy.local"),
        "{e}"
    );
}

#[tokio::test]
async fn no_identity_no_decision() {
    let ui = ui(None, Some("bob:pw")).await;
    let response = ui
        .send(ui.post("/calls/c1/decide", "decision=approve", &[]))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(error_of(response).await.contains("Sign in"));
    // The trusted header is ignored when not configured.
    let forged = ui.post(
        "/calls/c1/decide",
        "decision=approve",
        &[("x-forwarded-user", "bob")],
    );
    assert_eq!(ui.send(forged).await.status(), StatusCode::UNAUTHORIZED);
    assert!(ui.decided().is_empty());
}

#[tokio::test]
async fn requester_cannot_approve_but_may_reject() {
    let ui = ui(Some("x-forwarded-user"), None).await;
    let alice = [("x-forwarded-user", "Alice")];
    let response = ui
        .send(ui.post("/calls/c1/decide", "decision=approve", &alice))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        error_of(response)
            .await
            .contains("another reviewer must approve")
    );
    assert!(ui.decided().is_empty());

    let response = ui
        .send(ui.post(
            "/calls/c1/decide",
            "decision=reject&reason=changed+my+mind",
            &alice,
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(ui.decided().len(), 1);
}

#[tokio::test]
async fn approval_reaches_the_gate_with_reviewer_and_verbatim_reason() {
    let ui = ui(Some("x-forwarded-user"), None).await;
    let reason = "Ok for the 14:00 window — ticket #42 <b>&amp;</b>  ";
    let body = format!(
        "decision=approve&reason={}",
        hitl_wire::extauth::paths::encode_segment(reason)
    );
    let response = ui
        .send(ui.post("/calls/c1/decide", &body, &[("x-forwarded-user", "bob")]))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let record: DecidedCall = serde_json::from_str(&body_text(response).await).unwrap();
    assert_eq!(record.outcome, Outcome::Approved);
    assert_eq!(
        ui.decided(),
        vec![(
            "c1".to_owned(),
            DecideRequest {
                id_token: None,
                approved: true,
                reason: reason.to_owned(),
                reviewer: Some("bob".into()),
            }
        )]
    );
}

#[tokio::test]
async fn unknown_calls_and_bad_forms() {
    let ui = ui(Some("x-forwarded-user"), None).await;
    let bob = [("x-forwarded-user", "bob")];
    let response = ui
        .send(ui.post("/calls/nope/decide", "decision=reject", &bob))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(error_of(response).await.contains("no longer pending"));

    let response = ui
        .send(ui.post("/calls/c1/decide", "decision=maybe", &bob))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let long = format!("decision=reject&reason={}", "x".repeat(2001));
    assert_eq!(
        ui.send(ui.post("/calls/c1/decide", &long, &bob))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert!(ui.decided().is_empty());
}

#[tokio::test]
async fn sign_in_then_decide_then_sign_out() {
    let ui = ui(None, Some("bob:pw")).await;
    let wrong = ui
        .send(ui.post("/signin", "username=bob&password=nope", &[]))
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        body_text(wrong)
            .await
            .contains("Wrong user name or password")
    );

    let mut forged = ui.post("/signin", "username=bob&password=pw", &[]);
    forged.headers_mut().remove(csrf::HEADER);
    assert_eq!(ui.send(forged).await.status(), StatusCode::FORBIDDEN);

    let ok = ui
        .send(ui.post("/signin", "username=bob&password=pw", &[]))
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let set_cookie = ok.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let session = set_cookie.split(';').next().unwrap().to_owned();

    let page = ui
        .send(
            Request::get("/")
                .header(header::COOKIE, format!("hitl_csrf=c; {session}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(body_text(page).await.contains(r#"id="reviewer-name">bob<"#));

    let response = ui
        .send(ui.post(
            "/calls/c1/decide",
            "decision=approve",
            &[("cookie", &session)],
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(ui.decided()[0].1.reviewer.as_deref(), Some("bob"));

    let out = ui
        .send(ui.post("/signout", "", &[("cookie", &session)]))
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[tokio::test]
async fn assets_are_embedded() {
    let ui = ui(None, None).await;
    for (path, kind) in [
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ] {
        let response = ui
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
    let missing = ui
        .send(Request::get("/assets/htmx.js").body(Body::empty()).unwrap())
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let health = ui
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn history_rejects_unknown_outcome_filter_in_page() {
    let ui = ui(None, Some("bob:pw")).await;
    let session = ui.session("bob", "pw").await;
    let response = ui.get("/history?outcome=bogus", Some(&session)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        body_text(response)
            .await
            .contains("unknown outcome `bogus`")
    );
}

// ---- the approval policy on the card (issue #28) -----------------------------------------

/// `run_migration v1` asked for by alice, under a rule wanting two of dba or sre and a reason
/// to reject, with `approved` so far.
fn two_keys(approved: &[&str]) -> hitl_wire::extauth::ParkedCall {
    let mut call = call_from(Some("alice"), &[]);
    call.id = "k2".into();
    call.request = Some(hitl_wire::extauth::RequestView {
        id: "k2".into(),
        state: hitl_wire::extauth::RequestState::Open,
        action_key: "k".into(),
        canonical_args: r#"{"version":"v1"}"#.into(),
        attempts: 1,
        waiting: true,
        open_until: call.received_at,
        rule: Some(hitl_wire::policy::RuleView {
            name: "migration-down-to-v1".into(),
            groups: vec!["dba".into(), "sre".into()],
            approvals: 2,
            reason_to_approve: false,
            reason_to_reject: true,
        }),
        approvals: approved
            .iter()
            .map(|r| hitl_wire::policy::ApprovalView {
                reviewer: (*r).into(),
                at: call.received_at,
                reason: String::new(),
            })
            .collect(),
    });
    call
}

/// hitl-ui before a gate that counts approvals: `POST /decide/k2` answers 202 with the card
/// as it now stands; bob is a static member of `dba`.
async fn ui_with_two_keys() -> (Ui, Arc<Mutex<Vec<DecideRequest>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let gate = {
        let seen = seen.clone();
        Router::new().route(
            paths::DECIDE,
            post(move |Json(req): Json<DecideRequest>| {
                let seen = seen.clone();
                async move {
                    let who = req.reviewer.clone().unwrap_or_default();
                    seen.lock().unwrap().push(req);
                    (StatusCode::ACCEPTED, Json(two_keys(&[&who])))
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, gate).await });
    let ui = ui(Some("x-forwarded-user"), None).await;
    let state = Arc::new(AppState {
        admin: AdminClient::new(&url, None).unwrap(),
        live: ui.state.live.clone(),
        cards: ui.state.cards.clone(),
        identity: IdentitySource::new(
            Some(axum::http::HeaderName::from_static("x-forwarded-user")),
            None,
            ui.state.signer.clone(),
        ),
        signer: ui.state.signer.clone(),
        cookies: ui.state.cookies,
        session_ttl: ui.state.session_ttl,
        separation_of_duties: true,
        allowed_hosts: AllowedHosts::parse(HOST).unwrap(),
        throttle: Throttle::default(),
        oidc: None,
    });
    state.live.set_policy(Some(hitl_wire::policy::PolicyView {
        groups: [("dba".to_owned(), vec!["bob".to_owned()])].into(),
        rules: Vec::new(),
    }));
    state.live.insert(state.cards.make(two_keys(&[])).await);
    let ui = Ui {
        app: router(state.clone()),
        state,
        decisions: ui.decisions,
    };
    (ui, seen)
}

async fn queue_as(ui: &Ui, user: &str) -> String {
    let request = Request::get("/")
        .header("x-forwarded-user", user)
        .header(header::COOKIE, "hitl_csrf=c")
        .body(Body::empty())
        .unwrap();
    body_text(ui.send(request).await).await
}

#[tokio::test]
async fn the_card_shows_its_rule_and_each_reviewer_what_they_may_do() {
    let (ui, _) = ui_with_two_keys().await;
    let bob = queue_as(&ui, "bob").await;
    assert!(bob.contains("migration-down-to-v1"), "{bob}");
    assert!(bob.contains("0 of 2 approvals"), "{bob}");
    assert!(bob.contains("required to reject"), "{bob}");
    assert!(
        !bob.contains("disabled"),
        "bob, a static dba, may decide: {bob}"
    );

    let carol = queue_as(&ui, "carol").await;
    assert!(carol.contains(r#"value="approve" disabled"#), "{carol}");
    assert!(carol.contains("you are in none of them"), "{carol}");
}

#[tokio::test]
async fn an_approval_that_is_one_of_two_is_counted_not_an_error() {
    let (ui, seen) = ui_with_two_keys().await;
    let response = ui
        .send(ui.post(
            "/calls/k2/decide",
            "decision=approve",
            &[("x-forwarded-user", "bob")],
        ))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let text = body_text(response).await;
    assert!(
        text.contains("Approval counted: 1 of 2 approvals (bob, "),
        "{text}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    // The card as the gate now holds it: bob has a key in, and may not turn it twice.
    let bob = queue_as(&ui, "bob").await;
    assert!(bob.contains("1 of 2 approvals (bob, "), "{bob}");
    assert!(bob.contains(r#"value="approve" disabled"#), "{bob}");
    assert!(bob.contains("already approved"), "{bob}");
}

#[tokio::test]
async fn the_policy_refuses_before_the_gate_is_asked() {
    let (ui, seen) = ui_with_two_keys().await;
    let carol = [("x-forwarded-user", "carol")];
    let response = ui
        .send(ui.post("/calls/k2/decide", "decision=approve", &carol))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(error_of(response).await.contains("dba, sre"));
    let bob = [("x-forwarded-user", "bob")];
    let response = ui
        .send(ui.post("/calls/k2/decide", "decision=reject", &bob))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        error_of(response)
            .await
            .contains("requires a reason to reject")
    );
    assert!(seen.lock().unwrap().is_empty(), "the gate was never asked");
}
