//! hitl-ui in a real browser against the real hitl-extauth: a reviewer session from empty
//! queue to history, and every way a decision must be refused.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use fantoccini::Locator;
use hitl_lab_tests::{
    ui::{Browser, Driver, Stack},
    wait::eventually,
};
use hitl_wire::extauth::DenyBody;

const OK: i32 = 0;
const PERMISSION_DENIED: i32 = 7;

async fn open_signed_in(driver: &Driver, stack: &Stack, user: &str) -> anyhow::Result<Browser> {
    let browser = driver.open().await?;
    browser
        .sign_in(&stack.ui_url, user, &format!("{user}-pw"))
        .await?;
    browser.client.goto(&stack.ui_url).await?;
    Ok(browser)
}

/// Listen on hitl-ui's own `/live` stream (as the page does) and note when the first `event`
/// arrives. Resolves to that instant; for the informational latency figure only.
async fn first_push(
    ui_url: &str,
    session: &str,
    event: &'static str,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<Instant>>> {
    use futures::StreamExt as _;
    let response = reqwest::Client::new()
        .get(format!("{ui_url}/live"))
        .header("cookie", format!("hitl_session={session}"))
        .send()
        .await?
        .error_for_status()?;
    Ok(tokio::spawn(async move {
        let needle = format!("event: {event}\n");
        let mut seen = String::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk?));
            if seen.contains(&needle) {
                return Ok(Instant::now());
            }
        }
        anyhow::bail!("/live ended before a `{event}` event")
    }))
}

/// The page is no wider than the window, and `card`'s `approve` control and Reject button
/// are inside it once the card is scrolled to the top.
async fn assert_in_view(
    browser: &Browser,
    card: &fantoccini::elements::Element,
    approve: &str,
) -> anyhow::Result<()> {
    let card_arg = vec![serde_json::to_value(card)?];
    browser
        .client
        .execute(
            "arguments[0].scrollIntoView({block: 'start'});",
            card_arg.clone(),
        )
        .await?;
    let script = format!(
        "const card = arguments[0];
         const approve = card.querySelector('{approve}').getBoundingClientRect();
         const reject = card.querySelector('button[value=reject]').getBoundingClientRect();
         return {{
           pageWidth: document.documentElement.scrollWidth,
           windowWidth: window.innerWidth,
           windowHeight: window.innerHeight,
           approve: [approve.left, approve.top, approve.right, approve.bottom],
           reject: [reject.left, reject.top, reject.right, reject.bottom],
         }};"
    );
    let layout = browser.client.execute(&script, card_arg).await?;
    let width = layout["windowWidth"].as_f64().unwrap_or_default();
    let height = layout["windowHeight"].as_f64().unwrap_or_default();
    anyhow::ensure!(
        layout["pageWidth"].as_f64().unwrap_or(f64::MAX) <= width,
        "page wider than the window: {layout}"
    );
    for button in ["approve", "reject"] {
        let rect: Vec<f64> = serde_json::from_value(layout[button].clone())?;
        anyhow::ensure!(
            rect[0] >= 0.0 && rect[2] <= width && rect[1] >= 0.0 && rect[3] <= height,
            "{button} out of view: {layout}"
        );
    }
    Ok(())
}

/// Text of the element matching `css` inside the page.
async fn text_of(browser: &Browser, css: &str) -> anyhow::Result<String> {
    Ok(browser.client.find(Locator::Css(css)).await?.text().await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reviewer_approves_and_rejects_in_the_browser() -> anyhow::Result<()> {
    let stack = Stack::start("reviewer_ui-session").await?;
    let driver = Driver::start(&stack.log_dir).await?;
    // bob reviews; alice (who asks for the calls) has the queue open in another window.
    let bob = open_signed_in(&driver, &stack, "bob").await?;
    let alice = open_signed_in(&driver, &stack, "alice").await?;

    // Empty state: says what shows up here and how to make something show up.
    let empty = text_of(&bob, "#empty").await?;
    assert!(empty.contains("Nothing is waiting"), "{empty}");
    assert!(empty.contains("Apply migration v3"), "{empty}");
    eventually("the live stream to connect", || async {
        let state = bob
            .client
            .find(Locator::Css("#live-status"))
            .await?
            .attr("data-state")
            .await?;
        Ok((state.as_deref() == Some("live")).then_some(()))
    })
    .await?;
    bob.screenshot("queue-empty").await?;

    // A call parks: the card is pushed to the open page and says what will change.
    let pushes = first_push(&stack.ui_url, &bob.cookie("hitl_session").await?, "card").await?;
    let parked_at = Instant::now();
    let approve_check = stack.park_migration("alice", "v3").await?;
    let first = stack.wait_pending(1).await?.remove(0);
    let pushed = pushes.await??;
    let card = bob.card(&first).await?;
    eprintln!(
        "informational: `card` pushed on /live {} ms after the Check was sent; on bob's page \
         (WebDriver polling) after {} ms",
        (pushed - parked_at).as_millis(),
        parked_at.elapsed().as_millis()
    );
    let card_text = card.text().await?;
    assert!(card_text.contains("Schema v2 → v3"), "{card_text}");
    for expected in [
        "run_migration",
        "alice",
        "dba-assistant",
        "POST /privileged/mcp",
        "sha256:",
    ] {
        assert!(
            card_text.contains(expected),
            "card lacks {expected:?}:\n{card_text}"
        );
    }
    assert!(card_text.contains("expires in"), "{card_text}");
    // Arguments pretty-printed; the raw request behind a disclosure.
    let args = text_of(&bob, &format!("[data-call-id=\"{first}\"] .args pre")).await?;
    assert!(args.contains("\"version\": \"v3\""), "{args}");
    // Let the arrival highlight fade before the picture (cosmetic only).
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    bob.screenshot("queue-one-card").await?;
    card.find(Locator::Css("details.raw summary"))
        .await?
        .click()
        .await?;
    let raw = card.find(Locator::Css("details.raw")).await?.text().await?;
    assert!(raw.contains(r#""method":"tools/call""#), "{raw}");
    bob.screenshot_of(&card, "card-run-migration").await?;
    alice.card(&first).await?;

    // alice asked for it, so she may not approve it: the page says so before she tries
    // (the gate's policy rule is on the card; hitl-ui's route and the gate refuse it too).
    let refusal = alice.why_not_approve(&first).await?.unwrap_or_default();
    assert!(refusal.contains("you asked for this call"), "{refusal}");
    let alices_card = alice.card(&first).await?;
    alice
        .screenshot_of(&alices_card, "card-refused-self-approval")
        .await?;
    assert_eq!(
        stack.pending_ids().await?,
        vec![first.clone()],
        "still parked"
    );

    // bob approves: the call is released, and alice's window drops the card too.
    bob.decide(&first, true, "Approved for the 14:00 window")
        .await?;
    bob.card_gone(&first).await?;
    alice.card_gone(&first).await?;
    let released = approve_check.await??;
    assert_eq!(
        released.status.as_ref().map(|s| s.code),
        Some(OK),
        "{released:?}"
    );

    // A second call; bob rejects it with a reason, which reaches the caller word for word.
    let reject_check = stack.park_migration("alice", "v3").await?;
    let second = stack.wait_pending(1).await?.remove(0);
    let reason = "Not during business hours — use the 22:00 window <b>& \"ticket #42\"</b>";
    bob.decide(&second, false, reason).await?;
    bob.card_gone(&second).await?;
    alice.card_gone(&second).await?;
    let denied = reject_check.await??;
    assert_eq!(
        denied.status.as_ref().map(|s| s.code),
        Some(PERMISSION_DENIED)
    );
    let Some(HttpResponse::DeniedResponse(denied)) = denied.http_response else {
        anyhow::bail!("a rejection carries a denied HTTP response: {denied:?}");
    };
    let body: DenyBody = serde_json::from_str(&denied.body).context("deny body")?;
    assert_eq!(body.reason, reason);
    assert_eq!(body.id.as_deref(), Some(second.as_str()));

    // History lists both: who, what, why, outcome; and filters by outcome.
    bob.client
        .goto(&format!("{}/history", stack.ui_url))
        .await?;
    let approved_row = text_of(&bob, &format!("tr[data-call-id=\"{first}\"]")).await?;
    assert!(approved_row.contains("approved"), "{approved_row}");
    assert!(approved_row.contains("bob"), "{approved_row}");
    assert!(
        approved_row.contains("Approved for the 14:00 window"),
        "{approved_row}"
    );
    let rejected_row = text_of(&bob, &format!("tr[data-call-id=\"{second}\"]")).await?;
    assert!(rejected_row.contains("rejected"), "{rejected_row}");
    assert!(rejected_row.contains(reason), "{rejected_row}");
    // The request's hash: its first digits shown, all of it on hover.
    let hash = bob
        .client
        .find(Locator::Css(&format!(
            "tr[data-call-id=\"{first}\"] code.hash"
        )))
        .await?;
    let full = hash.attr("title").await?.unwrap_or_default();
    let shown = hash.text().await?;
    let digits = shown.trim_end_matches('…');
    assert!(
        digits.len() == 12 && full.starts_with(&format!("sha256:{digits}")),
        "{shown} / {full}"
    );
    bob.screenshot("history").await?;

    bob.client
        .find(Locator::Css("select[name=outcome]"))
        .await?
        .select_by_value("rejected")
        .await?;
    bob.client
        .find(Locator::Css("form.filters button[type=submit]"))
        .await?
        .click()
        .await?;
    eventually("the filtered history", || async {
        let rows = bob
            .client
            .find_all(Locator::Css("table.history tbody tr"))
            .await?;
        let mut outcomes = Vec::new();
        for row in rows {
            outcomes.push(row.attr("data-outcome").await?.unwrap_or_default());
        }
        Ok((outcomes == ["rejected"]).then_some(()))
    })
    .await?;

    bob.close().await?;
    alice.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_without_identity_or_csrf_token_are_refused() -> anyhow::Result<()> {
    let stack = Stack::start("reviewer_ui-refusals").await?;
    let driver = Driver::start(&stack.log_dir).await?;
    let check = stack.park_migration("alice", "v3").await?;
    let id = stack.wait_pending(1).await?.remove(0);

    // Not signed in: the queue is not shown at all; the page sends you to sign in, and the
    // live stream and history answer nobody.
    let anonymous = driver.open().await?;
    anonymous.client.goto(&stack.ui_url).await?;
    anonymous
        .client
        .wait()
        .at_most(hitl_lab_tests::ui::PATIENCE)
        .for_element(Locator::Css("form.signin-form"))
        .await?;
    assert!(
        anonymous
            .client
            .current_url()
            .await?
            .path()
            .ends_with("/signin")
    );
    assert!(
        anonymous
            .client
            .find_all(Locator::Css("article.card"))
            .await?
            .is_empty()
    );
    anonymous.screenshot("signin-required").await?;
    anonymous
        .client
        .goto(&format!("{}/history", stack.ui_url))
        .await?;
    assert!(
        anonymous
            .client
            .current_url()
            .await?
            .path()
            .ends_with("/signin")
    );
    let live = reqwest::get(format!("{}/live", stack.ui_url)).await?;
    assert_eq!(live.status(), reqwest::StatusCode::UNAUTHORIZED);
    let decide = reqwest::Client::new()
        .post(format!("{}/calls/{id}/decide", stack.ui_url))
        .header("origin", &stack.ui_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("decision=approve")
        .send()
        .await?;
    // Refused (no CSRF proof, no reviewer), and still parked.
    assert!(decide.status().is_client_error(), "{}", decide.status());
    assert_eq!(stack.pending_ids().await?, vec![id.clone()]);

    // Signed in, but a request that did not come from our page (no CSRF token) is refused,
    // even with the reviewer's session cookie and a matching Origin.
    let bob = open_signed_in(&driver, &stack, "bob").await?;
    bob.card(&id).await?;
    let session = bob.cookie("hitl_session").await?;
    let csrf_cookie = bob.cookie("hitl_csrf").await?;
    let http = reqwest::Client::new();
    let forged = http
        .post(format!("{}/calls/{id}/decide", stack.ui_url))
        .header("origin", &stack.ui_url)
        .header(
            "cookie",
            format!("hitl_session={session}; hitl_csrf={csrf_cookie}"),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("decision=approve&reason=forged")
        .send()
        .await?;
    assert_eq!(forged.status(), reqwest::StatusCode::FORBIDDEN);
    let error: hitl_wire::extauth::ApiError = forged.json().await?;
    assert!(error.error.contains("CSRF"), "{}", error.error);
    // From another site: refused on the Origin alone.
    let cross_site = http
        .post(format!("{}/calls/{id}/decide", stack.ui_url))
        .header("origin", "http://evil.example")
        .header("cookie", format!("hitl_session={session}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("decision=approve")
        .send()
        .await?;
    assert_eq!(cross_site.status(), reqwest::StatusCode::FORBIDDEN);
    assert_eq!(stack.pending_ids().await?, vec![id.clone()], "still parked");

    // The real page, same reviewer, works: the refusals above were about proof, not bob.
    bob.decide(&id, false, "cleaning up").await?;
    bob.card_gone(&id).await?;
    let answer = check.await??;
    assert_eq!(answer.status.map(|s| s.code), Some(PERMISSION_DENIED));

    anonymous.close().await?;
    bob.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_queue_follows_the_gate_across_a_restart() -> anyhow::Result<()> {
    let mut stack = Stack::start("reviewer_ui-restart").await?;
    let driver = Driver::start(&stack.log_dir).await?;
    let bob = open_signed_in(&driver, &stack, "bob").await?;
    let _held = stack.park_migration("alice", "v3").await?;
    let lost = stack.wait_pending(1).await?.remove(0);
    bob.card(&lost).await?;

    // The gate crashes and comes back; the call it was holding is closed as lost, but its
    // approval request survives (issue #26): the gate lists it with nobody waiting, and once
    // hitl-ui has reconnected the card is still on the page — no reload.
    stack.extauth.crash_and_restart().await?;
    let listed = stack.extauth.pending().await?;
    let request = listed[0].request.as_ref().expect("an approval request");
    assert_eq!(
        (listed[0].id.as_str(), request.waiting),
        (lost.as_str(), false)
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while text_of(&bob, "#live-status").await? != "live" {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "hitl-ui never came back live"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bob.card(&lost).await?;

    // Still following: the next park shows up live.
    let _next_check = stack.park_migration("alice", "v4").await?;
    let next = stack
        .wait_pending(2)
        .await?
        .into_iter()
        .find(|c| *c != lost)
        .expect("the new card");
    let text = bob.card(&next).await?.text().await?;
    assert!(text.contains("Schema v2 → v4"), "{text}");
    let status = text_of(&bob, "#live-status").await?;
    assert_eq!(status, "live");

    bob.close().await?;
    Ok(())
}

/// The whole path a workshop shows: the agent's MCP client calls `run_migration` through the
/// real Envoy, the gate parks it, a reviewer approves in the browser, the migration runs;
/// the same call again reads "v3 → v3" and a rejection's reason comes back through Envoy.
#[tokio::test(flavor = "multi_thread")]
async fn an_agents_migration_through_envoy_runs_once_approved_in_the_browser() -> anyhow::Result<()>
{
    use hitl_lab_tests::{
        gate::{Gate, tools_call},
        mock_db::call,
        ui::start_ui,
    };
    use hitl_wire::mockdb::{paths, tools};

    let gate = Gate::start_default("reviewer_ui", hitl_lab::gateway::Gateway::Envoy).await?;
    let (ui_url, _ui) = start_ui(&gate.log_dir, &gate.extauth, &gate.db).await?;
    let driver = Driver::start(&gate.log_dir).await?;
    let bob = driver.open().await?;
    bob.sign_in(&ui_url, "bob", "bob-pw").await?;
    bob.client.goto(&ui_url).await?;

    // The agent (as alice) asks for the migration; the gateway holds it.
    let agent = gate.mcp(paths::PRIVILEGED_MCP).await?;
    let migration = tokio::spawn(async move {
        call(
            &agent,
            tools::RUN_MIGRATION,
            serde_json::json!({"version": "v3"}),
        )
        .await
    });
    let id = gate.extauth.wait_pending(1).await?.remove(0).id;
    let text = bob.card(&id).await?.text().await?;
    assert!(text.contains("Schema v2 → v3"), "{text}");
    assert_eq!(
        gate.db.state().await?.schema_version,
        "v2",
        "nothing ran yet"
    );

    bob.decide(&id, true, "go ahead").await?;
    bob.card_gone(&id).await?;
    let result = migration.await?.context("the approved call")?;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(gate.db.state().await?.schema_version, "v3");

    // Again: the card now reads the live version; bob rejects, and the agent's HTTP client
    // gets the gateway's 403 with his reason verbatim.
    let again = gate.spawn_post(
        paths::PRIVILEGED_MCP,
        tools_call(
            9,
            tools::RUN_MIGRATION,
            serde_json::json!({"version": "v3"}),
        ),
    );
    let id = gate.extauth.wait_pending(1).await?.remove(0).id;
    let text = bob.card(&id).await?.text().await?;
    assert!(text.contains("Schema v3 → v3"), "{text}");
    assert!(text.contains("already at v3"), "{text}");
    let reason = "Already applied — nothing to do";
    bob.decide(&id, false, reason).await?;
    let reply = again.await??;
    assert_eq!(reply.status, 403, "{reply:?}");
    let body: DenyBody = serde_json::from_str(&reply.body)?;
    assert_eq!(body.reason, reason);

    bob.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebinding_page_wrong_passwords_and_a_replayed_cookie_get_nowhere() -> anyhow::Result<()>
{
    let stack = Stack::start("reviewer_ui-hardening").await?;
    let driver = Driver::start(&stack.log_dir).await?;
    let port = stack
        .ui_url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();

    // DNS rebinding: a name the attacker controls now resolves to the UI's address. The
    // browser sends that name as Host, and the UI refuses it before any sign-in.
    let rebound = driver
        .open_with(&["--host-resolver-rules=MAP rebound.test 127.0.0.1"])
        .await?;
    rebound
        .client
        .goto(&format!("http://rebound.test:{port}/signin"))
        .await?;
    let body = text_of(&rebound, "body").await?;
    assert!(
        body.contains("does not answer to the host `rebound.test:"),
        "{body}"
    );
    assert!(body.contains(hitl_wire::env::ui::ALLOWED_HOSTS), "{body}");
    rebound.screenshot("host-refused").await?;
    rebound.close().await?;

    // Guessing passwords: after a few wrong ones the form says to wait, even for the right one.
    // Each wrong guess past the free ones doubles the wait, so guess until the wait is long
    // enough that the right password, tried next, still falls inside it however slow this
    // machine is (no timing assumption about how fast a browser submits a form).
    let guesser = driver.open().await?;
    let ui_url = stack.ui_url.as_str();
    let attempt = |password: &'static str| {
        let guesser = &guesser;
        async move {
            guesser.client.goto(&format!("{ui_url}/signin")).await?;
            guesser
                .client
                .find(Locator::Css("#username"))
                .await?
                .send_keys("bob")
                .await?;
            guesser
                .client
                .find(Locator::Css("#password"))
                .await?
                .send_keys(password)
                .await?;
            guesser
                .client
                .find(Locator::Css("form.signin-form button[type=submit]"))
                .await?
                .click()
                .await?;
            // A fresh form has no banner: wait for the answer's.
            eventually("the sign-in answer", || async {
                let banners = guesser
                    .client
                    .find_all(Locator::Css(".banner.warn"))
                    .await?;
                match banners.into_iter().next() {
                    Some(banner) => {
                        let text = banner.text().await?;
                        Ok((!text.is_empty()).then_some(text))
                    }
                    None => Ok(None),
                }
            })
            .await
        }
    };
    let wait_of = |banner: &str| -> u64 {
        banner
            .split("Try again in")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|secs| secs.parse().ok())
            .unwrap_or(0)
    };
    // A guess refused during a lock-out is not counted (or anyone could keep a user locked
    // out for ever), so each short lock is waited out before the next guess counts:
    // 5 free, then 1 + 2 + 4 + 8 s of waiting until the lock-out reaches 16 s.
    let mut guesses = 0;
    loop {
        let banner = attempt("guess").await?;
        guesses += 1;
        let wait = wait_of(&banner);
        if wait >= 15 {
            break;
        }
        anyhow::ensure!(
            guesses < 25,
            "no long lock-out after {guesses} wrong guesses: {banner}"
        );
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    let last = attempt("bob-pw").await?;
    assert!(last.contains("Too many failed sign-ins"), "{last}");
    assert!(last.contains("Try again in"), "{last}");
    guesser.screenshot("signin-throttled").await?;
    guesser.close().await?;

    // Sign-out ends the session on the server: the old cookie, replayed, opens nothing.
    let alice = open_signed_in(&driver, &stack, "alice").await?;
    let session = alice.cookie("hitl_session").await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let with_cookie = |path: &str| {
        http.get(format!("{}{path}", stack.ui_url))
            .header("cookie", format!("hitl_session={session}"))
            .send()
    };
    assert_eq!(with_cookie("/").await?.status(), reqwest::StatusCode::OK);
    alice.sign_out().await?;
    alice
        .client
        .wait()
        .at_most(hitl_lab_tests::ui::PATIENCE)
        .for_element(Locator::Css("form.signin-form"))
        .await?;
    let replayed = with_cookie("/").await?;
    assert_eq!(replayed.status(), reqwest::StatusCode::SEE_OTHER);
    // To the sign-in, which says the session ended.
    assert_eq!(replayed.headers()["location"], "/signin?ended=1");
    assert_eq!(
        with_cookie("/live").await?.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );
    alice.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn long_and_invisible_characters_are_shown_safely() -> anyhow::Result<()> {
    let stack = Stack::start("reviewer_ui-hostile-values").await?;
    let driver = Driver::start(&stack.log_dir).await?;
    let bob = open_signed_in(&driver, &stack, "bob").await?;

    // One 60 000-character argument. The queue lists it as a preview (the gate's listings
    // carry only a large body's first bytes): the card says so, Reject is there and Approve
    // becomes "Review to approve", all in view on a page no wider than the window.
    let long_version = format!("v{}", "9".repeat(60_000));
    let long = stack.park_migration("alice", &long_version).await?;
    let long_id = stack.wait_pending(1).await?.remove(0);
    let card = bob.card(&long_id).await?;
    let text = card.text().await?;
    assert!(text.contains("This call is large"), "{text}");
    assert!(
        text.chars().count() < 10_000,
        "the queue carried the whole call"
    );
    assert_in_view(&bob, &card, ".btn-approve").await?;
    bob.screenshot("card-large-preview").await?;

    // Its own page has it whole: the value clamped with "Show all", the buttons in view.
    card.find(Locator::Css("a.whole-call"))
        .await?
        .click()
        .await?;
    let card = bob.card(&long_id).await?;
    assert_in_view(&bob, &card, "button[value=approve]").await?;
    let headline = card.find(Locator::Css("h2.change")).await?.text().await?;
    assert!(headline.chars().count() < 100, "{headline}");
    bob.screenshot("card-long-value").await?;
    let show_all = card.find(Locator::Css("[data-show-all]")).await?;
    assert!(show_all.text().await?.contains("Show all"));
    show_all.click().await?;
    assert!(show_all.text().await?.contains("Show less"));
    bob.decide(&long_id, false, "too long to read").await?;
    let said = eventually("the decision's message", || async {
        let text = card
            .find(Locator::Css(".form-message"))
            .await?
            .text()
            .await?;
        Ok(text.contains("rejected").then_some(text))
    })
    .await?;
    assert!(said.contains("Back to the queue"), "{said}");
    let answer = long.await??;
    assert_eq!(answer.status.map(|s| s.code), Some(PERMISSION_DENIED));
    bob.client.goto(&stack.ui_url).await?;
    bob.card_gone(&long_id).await?;

    // A bidi override makes `\u{202e}4v` read "v4": the card spells it out and warns.
    let _bidi = stack.park_migration("alice", "\u{202e}4v").await?;
    let bidi_id = stack.wait_pending(1).await?.remove(0);
    let card = bob.card(&bidi_id).await?;
    let text = card.text().await?;
    assert!(text.contains("⟨U+202E⟩4v"), "{text}");
    assert!(
        !text.contains('\u{202e}'),
        "the raw override reached the page"
    );
    let warning = card
        .find(Locator::Css(".hidden-chars"))
        .await?
        .text()
        .await?;
    assert!(
        warning.contains("invisible, direction-changing"),
        "{warning}"
    );
    bob.screenshot_of(&card, "card-bidi-warning").await?;
    bob.decide(&bidi_id, false, "hidden characters").await?;
    bob.card_gone(&bidi_id).await?;
    bob.close().await?;
    Ok(())
}

/// A reviewer from the identity provider (the lab's real OpenID Provider): signs in through
/// its form, decides under the name the ID token gives, is sent to sign in again once the
/// token expires (the decision refused meanwhile), and signs out; then someone else signs in
/// at the same browser.
#[tokio::test]
async fn a_reviewer_from_the_identity_provider_decides_until_the_token_expires()
-> anyhow::Result<()> {
    const TTL: Duration = Duration::from_secs(4);
    let stack = Stack::start_with_provider("reviewer_ui-oidc", TTL.as_secs()).await?;
    let driver = Driver::start(&stack.log_dir).await?;
    let sam = driver.open().await?;
    let check = stack.park_migration("alice", "v3").await?;
    let first = stack.wait_pending(1).await?.remove(0);

    sam.sign_in_oidc(&stack.ui_url, "sre-sam", "sre-sam")
        .await?;
    // The provider issued the ID token before the sign-in ended: it expires by TTL from now.
    // (Timed from before the sign-in, a slow one left the token valid after the wait below.)
    let signed_in_at = Instant::now();
    sam.decide(&first, true, "the SRE on call says yes").await?;
    sam.card_gone(&first).await?;
    let released = check.await??;
    assert_eq!(released.status.as_ref().map(|s| s.code), Some(OK));
    let history = stack.extauth.wait_history(1).await?;
    assert_eq!(history.items[0].reviewer.as_deref(), Some("sre-sam"));

    // The ID token expires: the next call cannot be decided, the page says to sign in again.
    let _pending = stack.park_migration("alice", "v2").await?;
    let second = stack.wait_pending(1).await?.remove(0);
    sam.card(&second).await?;
    tokio::time::sleep(TTL.saturating_sub(signed_in_at.elapsed()) + Duration::from_secs(1)).await;
    // (The first decision's toast may still cover the buttons.)
    sam.client
        .execute(
            "document.querySelectorAll('.toast').forEach(t => t.remove());",
            vec![],
        )
        .await?;
    sam.decide(&second, true, "").await?;
    let refused = sam.form_error(&second).await?;
    assert!(refused.contains("has expired"), "{refused}");
    sam.client.goto(&stack.ui_url).await?;
    let page = text_of(&sam, "main").await?;
    assert!(page.contains("has expired"), "{page}");
    sam.screenshot("oidc-expired").await?;

    // Signing in again (the provider remembers the browser), then out.
    sam.sign_in_oidc(&stack.ui_url, "sre-sam", "sre-sam")
        .await?;
    sam.sign_out().await?;
    sam.client
        .wait()
        .at_most(hitl_lab_tests::ui::PATIENCE)
        .for_element(Locator::Css("#signin-oidc"))
        .await?;
    sam.client.goto(&stack.ui_url).await?;
    let url = sam.client.current_url().await?;
    assert!(url.path().ends_with("/signin"), "signed out: {url}");
    // Signed out, the seat is free: the provider asks for a password, not its session.
    sam.sign_in_oidc(&stack.ui_url, "dba-ann", "dba-ann")
        .await?;
    sam.close().await?;
    Ok(())
}
