//! The local lab end to end, as the chat user sees it: on both agents (kagent's declarative
//! engine with `requireApproval`, the BYO LangGraph agent with `interrupt()` through
//! kagent-langgraph) the agent pauses `truncate_table` for approval (tier 1), the decision is taken, and the database shows it;
//! and the chat user's token travels through kagent to the gateway, which proves to the
//! tier-2 gate who asked (and refuses a chat that carries no token). And the lab keeps to
//! its owner: it listens on loopback only, and its secrets and audit are owner-only.

use hitl_lab::{
    agents::AgentKind,
    components::{agentgateway, scripted_model::Control},
    gateway::Gateway,
    sockets,
};
use hitl_lab_tests::{lab::Lab, through_both_gateways};
use hitl_scenes::{
    a2a::{
        Chat, Client,
        hitl::{Decision, Pause},
    },
    conformance::endpoint_of,
    scene::run::chat_client,
};
use hitl_wire::{
    extauth::HistoryQuery,
    headers,
    model::{Response, Script, ToolCall, Turn, When},
};
use serde_json::json;

/// The model calls `run_migration(v3)`, then repeats whatever the tool said.
fn migrate_script() -> Script {
    let turn = |response: Response| Turn {
        respond: vec![response],
    };
    Script {
        name: "local-lab requester test".into(),
        turns: vec![
            turn(Response {
                when: None,
                call: Some(ToolCall {
                    tool: "run_migration".into(),
                    args: json!({"version": "v3"}),
                }),
                say: None,
            }),
            turn(Response {
                when: None,
                call: None,
                say: Some("The tool said: {{last_tool_result}}".into()),
            }),
        ],
    }
}

/// The model calls `truncate_table(orders)`, then repeats whatever the tool said.
fn truncate_orders_script() -> Script {
    let turn = |response: Response| Turn {
        respond: vec![response],
    };
    Script {
        name: "local-lab test".into(),
        turns: vec![
            turn(Response {
                when: None,
                call: Some(ToolCall {
                    tool: "truncate_table".into(),
                    args: json!({"table": "orders"}),
                }),
                say: None,
            }),
            turn(Response {
                when: Some(When::ToolResultContains(String::new())),
                call: None,
                say: Some("The tool said: {{last_tool_result}}".into()),
            }),
        ],
    }
}

async fn ask_to_truncate(
    lab: &Lab,
    agent: AgentKind,
) -> (Chat, hitl_scenes::a2a::hitl::ApprovalRequest) {
    let model = Control::new(lab.state.urls.scripted_model.as_deref().expect("scripted"));
    model.load(&truncate_orders_script()).await.expect("script");
    let client = chat_client(&lab.state, agent, "alice").expect("the lab's requester key");
    let mut chat = Chat::new(client);
    let outcome = chat
        .say("Truncate the orders table", |_| {})
        .await
        .expect("the agent answers");
    let Some(Pause::Approval(mut requests)) = outcome.pause else {
        panic!("{agent}: expected a tier-1 approval request, got {outcome:#?}");
    };
    let request = requests.remove(0);
    assert_eq!(request.tool, "truncate_table");
    assert_eq!(request.args, json!({"table": "orders"}));
    (chat, request)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chat_user_gates_truncate_table_and_their_decision_is_what_happens() {
    let lab = Lab::up("local_lab").await;
    for agent in AgentKind::ALL {
        the_chat_user_decides_on(&lab, agent).await;
    }
}

async fn the_chat_user_decides_on(lab: &Lab, agent: AgentKind) {
    let db = lab.state.db();

    // Approve: the table is emptied.
    db.reset().await.expect("reset");
    let (mut chat, request) = ask_to_truncate(lab, agent).await;
    assert_eq!(
        db.state().await.unwrap().row_counts["orders"],
        3,
        "nothing runs while the agent waits for the chat user"
    );
    chat.decide(&request, &Decision::Approve, |_| {})
        .await
        .expect("the approval is taken");
    let state = db.state().await.unwrap();
    assert_eq!(state.row_counts["orders"], 0);
    let entry = state.audit.last().expect("an audit entry");
    assert_eq!(entry.tool, "truncate_table");
    assert_eq!(
        entry.caller.get(headers::USER_ID).map(String::as_str),
        Some("alice")
    );

    // Reject with a reason: nothing runs, and the reason reaches the model verbatim.
    db.reset().await.expect("reset");
    let reason = "Keep them: finance reconciles on Friday.";
    let (mut chat, request) = ask_to_truncate(lab, agent).await;
    let outcome = chat
        .decide(
            &request,
            &Decision::Reject {
                reason: reason.into(),
            },
            |_| {},
        )
        .await
        .expect("the rejection is taken");
    assert!(
        outcome.text.contains(reason),
        "the agent's reply: {}",
        outcome.text
    );
    assert_eq!(db.state().await.unwrap().row_counts["orders"], 3);
    let model = Control::new(lab.state.urls.scripted_model.as_deref().unwrap());
    let seen = serde_json::to_string(&model.requests().await.unwrap()).unwrap();
    assert!(
        seen.contains(&format!("Tool call was rejected by user. Reason: {reason}")),
        "the model was never told the reason: {seen}"
    );
}

/// kagent-adk 0.10.4 forwards the A2A request's `Authorization` to the privileged MCP server
/// (`allowedHeaders`), Envoy verifies it, and the gate parks the call with the verified
/// requester. Without a token, the gate denies the call with a reason the agent reads, and
/// nothing parks or runs.
#[tokio::test(flavor = "multi_thread")]
async fn the_chat_users_token_reaches_the_gate_through_kagent() {
    let lab = Lab::up("local_lab_requester").await;
    let db = lab.state.db();
    let gate = lab.state.gate_admin().expect("an admin client");
    let model = Control::new(lab.state.urls.scripted_model.as_deref().expect("scripted"));
    db.reset().await.expect("reset");

    // With alice's token: parked, as alice, verified.
    model.load(&migrate_script()).await.expect("script");
    let client =
        chat_client(&lab.state, AgentKind::Declarative, "alice").expect("the lab's requester key");
    let said = tokio::spawn(async move {
        let mut chat = Chat::new(client);
        chat.say("Apply migration v3.", |_| {}).await
    });
    let parked = loop {
        let pending = gate.pending().await.expect("pending").pending;
        if let Some(call) = pending.into_iter().next() {
            break call;
        }
        assert!(
            !said.is_finished(),
            "the turn ended without a park: {:?}",
            said.await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(parked.tool_name, "run_migration");
    assert_eq!(
        parked.requester.as_deref(),
        Some("alice"),
        "verified by the gateway"
    );
    let decided = gate
        .decide(
            &parked.id,
            &hitl_wire::extauth::DecideRequest {
                id_token: None,
                approved: false,
                reason: "not now".into(),
                reviewer: Some("platform-reviewer".into()),
            },
        )
        .await
        .expect("decide");
    assert_eq!(decided.call.requester.as_deref(), Some("alice"));
    said.await.expect("joined").expect("the agent answers");

    // No token, only a claimed x-user-id: denied with the reason, never parked.
    model.load(&migrate_script()).await.expect("script");
    let unproven = Client::new(&lab.state.urls.agent).with_header(headers::USER_ID, "alice");
    let outcome = Chat::new(unproven)
        .say("Apply migration v3.", |_| {})
        .await
        .expect("the agent answers");
    assert!(
        outcome.text.contains("no verified requester"),
        "the agent's reply: {}",
        outcome.text
    );
    assert!(gate.pending().await.expect("pending").pending.is_empty());
    // On the record: the proven call, parked and rejected; the unproven one, denied unparked.
    let history = gate
        .history(&HistoryQuery::latest(10))
        .await
        .expect("history");
    let outcomes: Vec<_> = history.items.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            hitl_wire::extauth::Outcome::Denied,
            hitl_wire::extauth::Outcome::Rejected
        ],
        "newest first: {:#?}",
        history.items
    );
    assert!(
        history.items[0].reason.contains("no verified requester"),
        "{:#?}",
        history.items[0]
    );
    let state = db.state().await.unwrap();
    assert_eq!(state.schema_version, "v2", "nothing ran");
    the_labs_inbox_took_the_gates_signed_notifications(&lab).await;
}

/// The lab's webhook receiver (the chat page's `/notify`) took the gate's signed notifications
/// of the request opened and rejected above, and refuses one signed with another key.
async fn the_labs_inbox_took_the_gates_signed_notifications(lab: &Lab) {
    let gate = lab.state.gate_admin().expect("an admin client");
    let mut sent = 0.0;
    for _ in 0..100 {
        let metrics = gate.metrics().await.expect("metrics");
        sent = metrics
            .lines()
            .find(|l| l.starts_with("hitl_extauth_notifications_total{result=\"sent\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        if sent >= 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        sent >= 2.0,
        "opened and decided reached the lab's receiver ({sent} sent)"
    );
    let chat = lab.state.urls.chat.as_deref().expect("the chat page");
    let body = br#"{"kind":"opened"}"#;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let forged = hitl_wire::notify::sign(b"not the lab's notification key", now, body);
    let status = reqwest::Client::new()
        .post(format!("{}/notify", chat.trim_end_matches('/')))
        .header(hitl_wire::notify::SIGNATURE_HEADER, forged)
        .header(hitl_wire::notify::TIMESTAMP_HEADER, now.to_string())
        .body(body.to_vec())
        .send()
        .await
        .expect("the receiver answers")
        .status();
    assert_eq!(
        status,
        reqwest::StatusCode::UNAUTHORIZED,
        "a forged notification is refused"
    );
}

through_both_gateways! {
/// Nothing the local lab starts is reachable from the network: every listening socket of
/// every process it started (and their children) is on loopback. agentgateway v1.4.1 can only
/// bind the wildcard address; its one such socket is the gateway's port, and its config then
/// admits loopback peers only (`hitl_lab::agentgateway::loopback_only`).
async fn every_listener_of_the_local_lab_is_on_loopback(gateway) {
    let lab = Lab::up_with(&format!("local_lab_sockets-{gateway}"), gateway).await;
    let processes: Vec<(String, u32)> = lab
        .state
        .processes
        .iter()
        .map(|p| (p.name.clone(), p.pid))
        .collect();
    let listeners = sockets::listening(&processes)?;
    for (name, _) in &processes {
        assert!(
            listeners.iter().any(|l| &l.name == name),
            "{name} listens nowhere? {listeners:#?}"
        );
    }
    assert_eq!(sockets::exposed(&lab.state)?, [], "all: {listeners:#?}");
    if gateway == Gateway::Agentgateway {
        let port = endpoint_of(&lab.state.urls.gateway)?.port;
        assert!(
            listeners.iter().any(|l| l.name == agentgateway::NAME
                && l.addr.port() == port
                && l.addr.ip().is_unspecified()),
            "agentgateway bound an address after all? then drop the guard: {listeners:#?}"
        );
    }
    Ok(())
}
}

/// What the lab keeps on disk is its owner's alone: the state file (it holds the admin
/// token), the credentials, the requester's signing key, the gate's audit trail and its
/// journal, the logs; and no directory of the lab can be entered by anyone else.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_labs_secrets_and_audit_are_owner_only_after_up() {
    let lab = Lab::up("local_lab_modes").await;
    let dir = lab
        .state
        .log_dir
        .parent()
        .expect("logs live in the lab's directory");
    let mode = |p: &std::path::Path| {
        hitl_lab::on_disk::mode(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    // The one list conformance's `lab-secrets-owner-only` row checks too; it must hold these.
    let secrets = hitl_lab::on_disk::secret_files(dir, &hitl_lab::on_disk::logs(&lab.state));
    for must in [
        hitl_lab::lab::state_path(dir),
        dir.join(hitl_lab::requester::KEY_FILE),
        dir.join("credentials/approval-signing.key"),
        dir.join("hitl-extauth.db"),
        dir.join("hitl-extauth.db-wal"),
        dir.join("hitl-extauth.db-shm"),
    ] {
        assert!(
            secrets.contains(&must),
            "{} is not among {secrets:?}",
            must.display()
        );
    }
    assert!(lab.state.processes.iter().all(|p| secrets.contains(&p.log)));
    for path in &secrets {
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
        for entry in std::fs::read_dir(&d).expect("readable").flatten() {
            if entry.file_type().expect("a type").is_dir() {
                dirs.push(entry.path());
            }
        }
    }
}

/// `up` on a lab with one dead component starts that one again, alone, with its recorded spec:
/// the others keep running (same pids), and a gate killed with `kill -9` comes back on the same
/// audit store (the same file), answering its admin API with the lab's token.
#[tokio::test(flavor = "multi_thread")]
async fn up_starts_a_dead_gate_again_alone_on_the_same_store() {
    let lab = Lab::up("local_lab_mend").await;
    let dir = lab.config.dir.clone();
    let store = dir.join("hitl-extauth.db");
    let inode =
        |p: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let before_store = inode(&store);
    let gate = lab
        .state
        .processes
        .iter()
        .find(|p| p.name == hitl_lab::components::extauth::NAME)
        .expect("the lab runs the gate");
    hitl_lab::proc::kill_pid(gate.pid, &gate.argv).expect("kill -9 the gate");

    let mended = hitl_lab::local::up(&lab.config)
        .await
        .expect("up mends the lab");
    for (was, now) in lab.state.processes.iter().zip(&mended.processes) {
        assert_eq!(was.name, now.name);
        if was.name == hitl_lab::components::extauth::NAME {
            assert_ne!(was.pid, now.pid, "the gate was started again");
            assert!(hitl_lab::proc::live_cmdline(now.pid).is_some());
        } else {
            assert_eq!(was.pid, now.pid, "{} kept running", was.name);
        }
    }
    assert_eq!(inode(&store), before_store, "the same audit store");
    let pending = mended.gate_admin().unwrap().pending().await;
    assert!(pending.is_ok(), "the gate answers: {pending:?}");
    assert_eq!(
        hitl_lab::lab::LabState::load(&dir)
            .unwrap()
            .unwrap()
            .processes,
        mended.processes,
        "the lab state records the new pid"
    );
}

/// `up` with two gate replicas (`--replicas 2`): the lab runs its own PostgreSQL before the
/// gates, records it with them, both replicas answer on their own ports behind one gateway
/// whose Checks go to either, `up` again keeps it all (same pids), and `down` stops exactly
/// what `up` started: every recorded process gone, the store's port free again.
#[tokio::test(flavor = "multi_thread")]
async fn two_gate_replicas_run_on_the_labs_own_postgres_and_down_stops_exactly_them() {
    use hitl_lab::local::{self, StoreChoice};
    let lab = Lab::up_replicas("local_lab_replicas", Gateway::Envoy, 2).await;
    let topology = lab.state.topology();
    assert_eq!(
        (topology.store, topology.replicas),
        (StoreChoice::Postgres, 2)
    );
    let names: Vec<&str> = lab
        .state
        .processes
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names[0],
        local::store::POSTGRES,
        "the store first: {names:?}"
    );
    assert!(names.contains(&"hitl-extauth") && names.contains(&"hitl-extauth-2"));
    let postgres = lab
        .state
        .store
        .as_ref()
        .and_then(|s| s.postgres.clone())
        .expect("recorded");
    assert_eq!(postgres.port, lab.config.ports.postgres);

    // Both replicas answer, each on its own admin port, with the lab's token.
    for k in 1..=2 {
        let (_, http) = lab.config.ports.extauth_replica(k);
        let admin = hitl_wire::extauth::client::AdminClient::new(
            &format!("http://127.0.0.1:{http}"),
            lab.state.admin_token.clone(),
        )
        .unwrap();
        assert!(admin.pending().await.is_ok(), "replica {k} answers");
    }
    // The gateway's Checks go to either replica.
    let envoy = std::fs::read_to_string(
        lab.state
            .log_dir
            .join(format!("envoy-{}.yaml", lab.config.ports.gateway)),
    )
    .unwrap_or_default();
    for k in 1..=2 {
        let (grpc, _) = lab.config.ports.extauth_replica(k);
        assert!(
            envoy.contains(&format!("port_value: {grpc}")),
            "replica {k}'s Check port {grpc} is in the gateway's cluster"
        );
    }

    let again = local::up(&lab.config).await.expect("up again");
    assert_eq!(
        again.processes, lab.state.processes,
        "up again keeps every process"
    );

    local::down(&lab.config.dir, false).expect("down");
    for p in &lab.state.processes {
        assert!(
            hitl_lab::proc::live_cmdline(p.pid).is_none(),
            "{} (pid {}) is stopped",
            p.name,
            p.pid
        );
    }
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", postgres.port)).is_ok(),
        "the store's port is free again"
    );
}

/// How many calls each gate replica of `lab` holds now, by its own `hitl_extauth_parked`.
async fn held_per_replica(lab: &Lab) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for k in 1..=lab.config.topology.replicas {
        let (_, http) = lab.config.ports.extauth_replica(k);
        let admin = hitl_wire::extauth::client::AdminClient::new(
            &format!("http://127.0.0.1:{http}"),
            lab.state.admin_token.clone(),
        )
        .unwrap();
        let text = admin.metrics().await.expect("metrics");
        let held = text
            .lines()
            .find_map(|l| l.strip_prefix("hitl_extauth_parked "))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .unwrap_or_default() as u64;
        let name = if k == 1 {
            "hitl-extauth".to_owned()
        } else {
            format!("hitl-extauth-{k}")
        };
        out.push((name, held));
    }
    out
}

/// Scene 8 on replicas: four calls parked through the gateway are spread over the replicas;
/// the lab's gate restart kills the replica that holds one (not blindly replica 1, whose
/// calls may all be elsewhere), it comes back holding none, and every card is still there.
#[tokio::test(flavor = "multi_thread")]
async fn with_replicas_the_gate_restart_hits_a_replica_that_holds_a_call() {
    use hitl_scenes::attacks::calls::{parked_id, spawn_migration};
    let lab = Lab::up_replicas("local_lab_replica_restart", Gateway::Envoy, 2).await;
    let target = hitl_scenes::conformance::lab_target(&lab.state, &lab.config)
        .await
        .expect("the lab as a target");
    let mut calls = Vec::new();
    for version in ["v3", "v4", "v5", "v6"] {
        let patience = std::time::Duration::from_secs(60);
        calls.push(spawn_migration(&target, "alice", version, patience).expect("sent"));
    }
    for (tag, _) in &calls {
        parked_id(&target, *tag).await.expect("parked");
    }
    let held = held_per_replica(&lab).await;
    assert_eq!(held.iter().map(|(_, n)| n).sum::<u64>(), 4, "{held:?}");

    let restarted = hitl_lab::local::restart_holding_gate(&lab.config.dir)
        .await
        .expect("restarted");
    assert!(
        held.iter().any(|(name, n)| *name == restarted && *n > 0),
        "{restarted} held a call: {held:?}"
    );
    let after = held_per_replica(&lab).await;
    assert!(
        after.iter().any(|(name, n)| *name == restarted && *n == 0),
        "{after:?}"
    );
    let pending = lab.state.gate_admin().unwrap().pending().await.unwrap();
    assert_eq!(pending.pending.len(), 4, "every card outlives the restart");
    for (_, call) in calls {
        call.abort();
    }
}
