//! The workshop, replayed as a presenter runs it from `docs/workshop.md`: the real local lab,
//! two real Chromium windows side by side — the chat user's page (lab-chat, signed in as
//! alice) and the platform reviewer's queue (hitl-ui, signed in as reviewer) — and the
//! scripted model answering the workshop's prompts. The whole runbook runs once per agent,
//! picked on the chat page as the presenter does, on one lab. Every step leaves a screenshot
//! under `target/workshop-screenshots/<agent>/`, and every call's line must say what happened
//! to the call (ran, rejected by the chat user, denied at the gateway, waiting for a platform
//! reviewer). Nothing here waits for a time: every step waits for what the presenter would see.

use std::path::PathBuf;

use anyhow::Context as _;
use fantoccini::Locator;
use hitl_lab::{agents::AgentKind, clients::Db};
use hitl_lab_tests::{
    lab::Lab,
    ui::{Browser, Driver, PATIENCE},
    wait::eventually,
};
use hitl_wire::extauth::client::AdminClient;

fn screenshot_dir() -> PathBuf {
    hitl_lab::bins::target_dir().join("workshop-screenshots")
}

/// Both windows, each saved as `<agent>/<step>-chat.png` / `<agent>/<step>-queue.png`.
struct Room {
    chat: Browser,
    queue: Browser,
    chat_url: String,
    /// The agent picked on the chat page (its name there), and the screenshots' folder.
    agent: String,
}

impl Room {
    async fn snap(&self, step: &str) -> anyhow::Result<()> {
        let dir = screenshot_dir().join(&self.agent);
        std::fs::create_dir_all(&dir)?;
        for (window, browser) in [("chat", &self.chat), ("queue", &self.queue)] {
            let png = browser.client.screenshot().await?;
            std::fs::write(dir.join(format!("{step}-{window}.png")), png)?;
        }
        Ok(())
    }

    /// Pick `agent` in the chat page's agent menu, as the presenter does: the page opens the
    /// chat with it (no other button), and says whom the user is chatting with.
    async fn pick_agent(&mut self, agent: &str) -> anyhow::Result<()> {
        self.chat.client.goto(&self.chat_url).await?;
        let menu = self
            .chat
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css("select#agent"))
            .await
            .context("the agent menu (two agents run)")?;
        if menu.prop("value").await?.as_deref() != Some(agent) {
            let old_log = self.chat.client.find(Locator::Css("#log")).await?;
            menu.select_by_value(agent).await?;
            gone(&old_log).await?;
        }
        self.live_page(agent).await?;
        let head = self.chat.client.find(Locator::Css(".chat-head")).await?;
        let head = head.text().await?;
        assert!(head.contains("You are chatting with"), "{head}");
        self.agent = agent.to_owned();
        Ok(())
    }

    /// Start a new conversation: "New chat" reloads the page with an empty log.
    async fn new_chat(&self) -> anyhow::Result<()> {
        let old_log = self.chat.client.find(Locator::Css("#log")).await?;
        self.chat
            .client
            .find(Locator::Css("#new-chat"))
            .await?
            .click()
            .await?;
        gone(&old_log).await?;
        let log = self.live_page(&self.agent).await?;
        anyhow::ensure!(
            log.text().await?.trim().is_empty(),
            "a new chat starts empty"
        );
        Ok(())
    }

    /// Wait until the chat page for `agent` is loaded and follows its conversation (its
    /// script runs and its event stream is open), and return its log.
    async fn live_page(&self, agent: &str) -> anyhow::Result<fantoccini::elements::Element> {
        let selector = format!("body.live[data-agent=\"{agent}\"] #log");
        eventually(&format!("the chat page for {agent}, live"), || async {
            Ok(self
                .chat
                .client
                .find_all(Locator::Css(&selector))
                .await?
                .into_iter()
                .next())
        })
        .await
    }

    /// Type `text` in the chat box and press Enter, as the presenter does.
    async fn say(&self, text: &str) -> anyhow::Result<()> {
        let prompt = self.chat.client.find(Locator::Css("#prompt")).await?;
        prompt.send_keys(&format!("{text}\u{E007}")).await?;
        eventually(&format!("`{text}` in the chat"), || async {
            let mine = self.chat.client.find_all(Locator::Css(".msg.user")).await?;
            for m in mine {
                if m.text().await? == text {
                    return Ok(Some(()));
                }
            }
            Ok(None)
        })
        .await
    }

    /// Wait until the agent has said something containing `needle`, and is done working.
    async fn agent_says(&self, needle: &str) -> anyhow::Result<String> {
        eventually(&format!("the agent to say {needle:?}"), || async {
            if self.busy().await? {
                return Ok(None);
            }
            for m in self
                .chat
                .client
                .find_all(Locator::Css(".msg.agent"))
                .await?
            {
                let text = m.text().await?;
                if text.contains(needle) {
                    return Ok(Some(text));
                }
            }
            Ok(None)
        })
        .await
    }

    async fn busy(&self) -> anyhow::Result<bool> {
        let body = self.chat.client.find(Locator::Css("body")).await?;
        Ok(body
            .attr("class")
            .await?
            .unwrap_or_default()
            .contains("busy"))
    }

    /// The open approval card in the chat (tier 1): its tool and arguments as shown.
    async fn approval_card(&self) -> anyhow::Result<(String, String)> {
        let card = self
            .chat
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(".card.approval:not(.decided)"))
            .await
            .context("an approval card in the chat")?;
        let tool = card.find(Locator::Css(".tool-name")).await?.text().await?;
        let args = card.find(Locator::Css("pre.args")).await?.text().await?;
        Ok((tool, args))
    }

    async fn decide_in_chat(&self, approve: bool, reason: &str) -> anyhow::Result<()> {
        let card = self
            .chat
            .client
            .find(Locator::Css(".card.approval:not(.decided)"))
            .await?;
        if approve {
            card.find(Locator::Css("button.approve"))
                .await?
                .click()
                .await?;
        } else {
            card.find(Locator::Css("input.reason"))
                .await?
                .send_keys(reason)
                .await?;
            card.find(Locator::Css("button.reject"))
                .await?
                .click()
                .await?;
        }
        eventually("the agent to take the decision", || async {
            let taken = self
                .chat
                .client
                .find_all(Locator::Css(".msg.taken"))
                .await?;
            Ok((!taken.is_empty()).then_some(()))
        })
        .await
    }

    /// The chat shows the tool call as waiting for a platform reviewer (the gate told the chat
    /// page it parked this user's call).
    async fn chat_waits_on(&self, tool: &str) -> anyhow::Result<String> {
        eventually(
            &format!("{tool} shown as waiting for a reviewer"),
            || async {
                for line in self
                    .chat
                    .client
                    .find_all(Locator::Css(".tool.parked"))
                    .await?
                {
                    let text = line.text().await?;
                    if text.contains(tool) {
                        return Ok(Some(text));
                    }
                }
                Ok(None)
            },
        )
        .await
    }

    /// The line of the call to `tool` once it says what happened to the call.
    async fn call_line(&self, tool: &str) -> anyhow::Result<String> {
        eventually(&format!("{tool}'s line to say what happened"), || async {
            for line in self.chat.client.find_all(Locator::Css(".tool")).await? {
                let text = line.text().await?;
                let ended = !line.find_all(Locator::Css(".outcome")).await?.is_empty();
                if ended && text.contains(tool) {
                    return Ok(Some(text));
                }
            }
            Ok(None)
        })
        .await
    }
}

/// A call's line that says it ran (and never that a call that did not run ran).
fn ran(line: &str, summary: &str) {
    assert!(line.contains(&format!("✓ ran: {summary}")), "{line}");
    assert!(!line.contains("not run"), "{line}");
}

/// A call's line that says the call did not run, and why.
fn not_run(line: &str, why: &str) {
    assert!(line.contains(&format!("✗ not run: {why}")), "{line}");
    assert!(!line.contains("✓") && !line.contains("done"), "{line}");
}

/// Wait until the page that held `element` is gone (a stale element answers an error).
async fn gone(element: &fantoccini::elements::Element) -> anyhow::Result<()> {
    eventually("the page to reload", || async {
        Ok(element.text().await.is_err().then_some(()))
    })
    .await
}

async fn sign_in_chat(browser: &Browser, base: &str) -> anyhow::Result<()> {
    browser.client.goto(&format!("{base}/signin")).await?;
    browser
        .client
        .find(Locator::Css("#username"))
        .await?
        .send_keys("alice")
        .await?;
    browser
        .client
        .find(Locator::Css("#password"))
        .await?
        .send_keys("alice")
        .await?;
    browser
        .client
        .find(Locator::Css("form.signin-form button[type=submit]"))
        .await?
        .click()
        .await?;
    let name = browser
        .client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#user-name"))
        .await
        .context("alice did not end up signed in to the chat")?;
    anyhow::ensure!(name.text().await? == "alice");
    Ok(())
}

/// The migration the chat user asked for, once the gate holds it: its id, after checking that
/// the gate names the signed-in chat user as the verified requester.
async fn parked_migration(gate: &AdminClient) -> anyhow::Result<String> {
    let call = eventually("the migration parked", || async {
        Ok(gate.pending().await?.pending.into_iter().next())
    })
    .await?;
    assert_eq!(call.tool_name, "run_migration");
    assert_eq!(
        call.requester.as_deref(),
        Some("alice"),
        "the gate's verified requester is the signed-in chat user"
    );
    Ok(call.id)
}

/// The runbook's scenes, in its order, on the agent picked in `room`.
async fn run_scenes(room: &Room, db: &Db, gate: &AdminClient) -> anyhow::Result<()> {
    // Scene 1, read: nobody is asked.
    db.reset().await?;
    room.new_chat().await?;
    room.snap("01-two-tabs").await?;
    room.say("What's in the orders table?").await?;
    let said = room
        .agent_says("Here is the result: 3 rows (schema v2).")
        .await?;
    assert!(said.contains("acme") && said.contains("initech"), "{said}");
    assert!(
        !said.contains('{'),
        "rows read as a table, not JSON: {said}"
    );
    let table = room
        .chat
        .client
        .find(Locator::Css(".msg.agent table.rows"))
        .await?;
    assert_eq!(table.find_all(Locator::Css("tbody tr")).await?.len(), 3);
    ran(
        &room.call_line("cluster_db_query").await?,
        "3 rows (schema v2).",
    );
    assert!(gate.pending().await?.pending.is_empty(), "no gate fired");
    room.snap("10-read").await?;

    // Scene 2, tier-1 approve: the chat user is asked, in the chat.
    db.reset().await?;
    room.new_chat().await?;
    room.say("Truncate the orders table.").await?;
    let (tool, args) = room.approval_card().await?;
    assert_eq!(tool, "truncate_table");
    assert!(args.contains("\"orders\""), "{args}");
    assert_eq!(
        db.state().await?.row_counts["orders"],
        3,
        "nothing runs yet"
    );
    room.snap("20-tier1-card").await?;
    room.decide_in_chat(true, "").await?;
    room.agent_says("Here is the result: Emptied the orders table: 3 row(s) deleted.")
        .await?;
    ran(
        &room.call_line("truncate_table").await?,
        "Emptied the orders table: 3 row(s) deleted.",
    );
    assert_eq!(db.state().await?.row_counts["orders"], 0);
    room.snap("21-tier1-approved").await?;

    // Scene 3, tier-2 approve: the chat sees its call wait for a reviewer; the reviewer decides.
    db.reset().await?;
    room.new_chat().await?;
    room.say("Apply migration v3.").await?;
    let waiting = room.chat_waits_on("run_migration").await?;
    assert!(
        waiting.contains("waiting for a platform reviewer…"),
        "{waiting}"
    );
    let id = parked_migration(gate).await?;
    let card = room.queue.card(&id).await?;
    let card_text = card.text().await?;
    assert!(
        card_text.contains("alice"),
        "the reviewer sees who asked: {card_text}"
    );
    room.snap("30-tier2-waiting").await?;
    room.queue.decide(&id, true, "").await?;
    room.queue.card_gone(&id).await?;
    room.agent_says("Here is the result: Migrated the schema from v2 to v3.")
        .await?;
    ran(
        &room.call_line("run_migration").await?,
        "Migrated the schema from v2 to v3.",
    );
    assert_eq!(db.state().await?.schema_version, "v3");
    room.snap("31-tier2-approved").await?;

    // Scene 4, tier-2 reject: the reviewer's reason reaches the chat.
    db.reset().await?;
    room.new_chat().await?;
    room.say("Apply migration v3.").await?;
    room.chat_waits_on("run_migration").await?;
    let id = parked_migration(gate).await?;
    room.queue.card(&id).await?;
    room.snap("40-tier2-waiting").await?;
    let reason = "Not during business hours";
    room.queue.decide(&id, false, reason).await?;
    room.queue.card_gone(&id).await?;
    room.agent_says(reason).await?;
    let line = room.call_line("run_migration").await?;
    not_run(&line, "denied at the gateway: ");
    assert!(line.contains(reason), "{line}");
    assert_eq!(db.state().await?.schema_version, "v2");
    room.snap("41-tier2-rejected").await?;

    // Scene 5, tier-1 reject with a reason the model sees.
    db.reset().await?;
    room.new_chat().await?;
    room.say("Truncate the orders table.").await?;
    room.approval_card().await?;
    let reason = "We need these orders for the audit";
    room.decide_in_chat(false, reason).await?;
    let said = room.agent_says("Understood: I did not run it.").await?;
    assert!(said.contains(reason), "{said}");
    not_run(
        &room.call_line("truncate_table").await?,
        &format!("rejected by you: {reason}"),
    );
    assert_eq!(db.state().await?.row_counts["orders"], 3);
    room.snap("50-tier1-rejected").await?;

    // Scene 6, ask_user: the agent asks which table, then asks for approval.
    db.reset().await?;
    room.new_chat().await?;
    room.say("Truncate a table.").await?;
    let question = room
        .chat
        .client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(".card.question:not(.decided)"))
        .await?;
    let text = question.text().await?;
    assert!(text.contains("Which table should I truncate?"), "{text}");
    room.snap("60-question").await?;
    question
        .find(Locator::XPath(
            ".//button[contains(@class,'choice') and .='orders']",
        ))
        .await?
        .click()
        .await?;
    question
        .find(Locator::Css("button.send-answer"))
        .await?
        .click()
        .await?;
    let (tool, args) = room.approval_card().await?;
    assert_eq!(tool, "truncate_table");
    assert!(args.contains("\"orders\""), "{args}");
    room.snap("61-question-then-approval").await?;
    room.decide_in_chat(true, "").await?;
    room.agent_says("Done: Emptied the orders table: 3 row(s) deleted.")
        .await?;
    ran(
        &room.call_line("truncate_table").await?,
        "Emptied the orders table: 3 row(s) deleted.",
    );
    assert_eq!(db.state().await?.row_counts["orders"], 0);
    room.snap("62-ask-user-done").await?;
    Ok(())
}

/// The page refuses what the reviewer's page refuses: a visitor who is not signed in, a
/// request naming a host that is not on its allow-list, a state change without a session.
async fn the_chat_page_is_guarded(chat_url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = http.get(format!("{chat_url}/")).send().await?;
    assert_eq!(page.status(), 303, "a visitor is sent to the sign-in");
    assert_eq!(page.headers()["location"], "/signin");
    let events = http.get(format!("{chat_url}/events")).send().await?;
    assert_eq!(events.status(), 401);
    let say = http
        .post(format!("{chat_url}/say"))
        .json(&serde_json::json!({ "text": "Apply migration v3." }))
        .send()
        .await?;
    assert_eq!(say.status(), 401, "not signed in, no message");
    assert_eq!(say.text().await?, "Sign in first.");
    // Signed in, a state change still needs this browser's CSRF token.
    let form = http.get(format!("{chat_url}/signin")).send().await?;
    let csrf_cookie = cookie_pair(&form, "lab_chat_csrf")?;
    let page = form.text().await?;
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("the sign-in form carries its CSRF token")?;
    let signed_in = http
        .post(format!("{chat_url}/signin"))
        .header("cookie", &csrf_cookie)
        .header("origin", chat_url)
        .header("content-type", "application/x-www-form-urlencoded")
        // (The token is hex: nothing to escape.)
        .body(format!("username=alice&password=alice&csrf={token}"))
        .send()
        .await?;
    assert_eq!(signed_in.status(), 303, "alice signs in");
    let session = cookie_pair(&signed_in, "lab_chat_session")?;
    let forged = http
        .post(format!("{chat_url}/say"))
        .header("cookie", format!("{csrf_cookie}; {session}"))
        .header("origin", chat_url)
        .json(&serde_json::json!({ "text": "Apply migration v3." }))
        .send()
        .await?;
    assert_eq!(forged.status(), 403, "signed in, but no CSRF token");
    let rebound = http
        .get(format!("{chat_url}/signin"))
        .header("host", "evil.example")
        .send()
        .await?;
    assert_eq!(rebound.status(), 421, "DNS rebinding refused");
    let health = http
        .get(format!("{chat_url}/healthz"))
        .header("host", "10.0.0.7")
        .send()
        .await?;
    assert_eq!(health.status(), 200, "probes may name any host");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_workshop_runs_in_two_browser_windows_on_both_agents() -> anyhow::Result<()> {
    let lab = Lab::up("workshop").await;
    let urls = &lab.state.urls;
    let chat_url = urls.chat.clone().context("the local lab has a chat page")?;
    the_chat_page_is_guarded(&chat_url).await?;
    let db = lab.state.db();
    let gate = lab.state.gate_admin()?;
    // Its own directory: scratch_dir wipes what it names, and the lab's state (which `down`
    // reads to stop the lab's processes) is under `workshop/`.
    let driver = Driver::start(&hitl_lab_tests::scratch_dir("workshop-browser")).await?;
    let mut room = Room {
        chat: driver.open().await?,
        queue: driver.open().await?,
        chat_url: chat_url.clone(),
        agent: AgentKind::Declarative.resource_name().to_owned(),
    };
    let _ = std::fs::remove_dir_all(screenshot_dir());

    // Set-up: two tabs, two roles.
    room.chat.client.goto(&chat_url).await?;
    room.snap("00-sign-in").await?;
    sign_in_chat(&room.chat, &chat_url).await?;
    room.queue
        .sign_in_oidc(&urls.reviewer_ui, "reviewer", "reviewer")
        .await?;

    for agent in AgentKind::ALL {
        room.pick_agent(agent.resource_name()).await?;
        run_scenes(&room, &db, &gate)
            .await
            .with_context(|| format!("the workshop on the {agent} agent"))?;
    }
    both_tabs_follow_a_lab_restart(&mut room, &lab).await?;

    room.chat.close().await?;
    room.queue.close().await?;
    Ok(())
}

/// `down` and `up` under both open tabs, as a presenter does between audiences: each page
/// notices within seconds that its session ended and leads to the sign-in saying so (not
/// "reconnecting…" for ever, not a CSRF error, not the old reviewer's name over an empty
/// queue); signed in again, both show the new run as it is — an empty history, and the
/// migration the chat asks for on the reviewer's queue.
async fn both_tabs_follow_a_lab_restart(room: &mut Room, lab: &Lab) -> anyhow::Result<()> {
    room.chat.client.goto(&room.chat_url).await?;
    room.queue.client.goto(&lab.state.urls.reviewer_ui).await?;
    room.queue
        .client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#live-status[data-state=live]"))
        .await
        .context("the reviewer's queue is live before the restart")?;
    let gate_log = |dir: &std::path::Path| {
        std::fs::read_to_string(dir.join("logs").join("hitl-extauth.log")).unwrap_or_default()
    };
    let first_run = gate_log(&lab.config.dir);
    hitl_lab::local::down(&lab.config.dir, false)?;
    let state = hitl_lab::local::up(&lab.config).await?;
    // A fresh log per component; the first run's kept under runs/.
    let first_line = first_run.lines().next().context("the gate logged")?;
    assert!(
        !gate_log(&lab.config.dir).contains(first_line),
        "a fresh gate log"
    );
    let runs = hitl_lab::local::runs::dir(&lab.config.dir);
    let kept = std::fs::read_dir(&runs)?
        .flatten()
        .any(|run| gate_log(&run.path()).starts_with(&first_run));
    assert!(kept, "the first run's log is kept under {}", runs.display());

    for (tab, browser) in [("chat", &room.chat), ("reviewer", &room.queue)] {
        let page = eventually(&format!("the {tab} tab to lead to the sign-in"), || async {
            let url = browser.client.current_url().await?;
            if !url.path().ends_with("/signin") {
                return Ok(None);
            }
            let text = browser
                .client
                .find(Locator::Css("main"))
                .await?
                .text()
                .await?;
            Ok(Some(text))
        })
        .await?;
        assert!(page.contains("session has ended"), "{tab}: {page}");
    }
    room.agent = "after-restart".into();
    room.snap("90-session-ended").await?;

    sign_in_chat(&room.chat, &room.chat_url).await?;
    room.queue
        .sign_in_oidc(&state.urls.reviewer_ui, "reviewer", "reviewer")
        .await?;
    let gate = state.gate_admin()?;
    let history = gate.history(&Default::default()).await?;
    assert!(history.items.is_empty(), "a new run: {history:?}");
    room.say("Apply migration v3.").await?;
    let id = parked_migration(&gate).await?;
    room.queue.card(&id).await?;
    room.snap("91-signed-in-again").await?;
    room.queue.decide(&id, false, "not during the demo").await?;
    room.queue.card_gone(&id).await?;
    Ok(())
}

/// `name=value` of the cookie `name` that `response` sets.
fn cookie_pair(response: &reqwest::Response, name: &str) -> anyhow::Result<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
        .with_context(|| format!("the response sets {name}"))
}
