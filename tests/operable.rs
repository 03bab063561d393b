//! The services as an operator runs them: every one answers `/livez` and `/readyz` (and
//! `/healthz` as before); hitl-extauth answers the standard gRPC health service on its Check
//! port, plaintext and over mTLS, SERVING exactly while its store commits; `LOG_FORMAT=json`
//! writes one JSON object per line, `text` writes no colour codes into a file, anything else
//! refuses to start; and `decisions_total` counts each decision once and no denial.
//!
//! Needs the built binaries (`cargo build --workspace --bins`) and, for the store outage,
//! PostgreSQL (Debian's `postgresql`, as `gate_on_postgres` does).

use std::time::Duration;

use hitl_lab::{
    components::{chat, mock_db, scripted_model, ui},
    envoy::GateClientTls,
    gate_tls::GateTls,
    net,
    postgres::Server,
    proc,
};
use hitl_lab_tests::{
    extauth::{ExtAuth, PATIENCE},
    gate::{USER, migrate},
    scratch_dir,
};
use hitl_scenes::attacks::check::{connect, post};
use hitl_wire::{
    env::shared::{LOG_FORMAT, LOG_FORMAT_JSON, LOG_FORMAT_TEXT},
    health,
    mockdb::paths,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// `GET url`: status and body.
async fn get(url: &str) -> anyhow::Result<(u16, String)> {
    let reply = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()?
        .get(url)
        .send()
        .await?;
    Ok((reply.status().as_u16(), reply.text().await?))
}

/// Run `service` once with `args` and the environment `env` added, to its exit (within
/// [`PATIENCE`]): its output.
async fn run_once(
    service: &str,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> anyhow::Result<std::process::Output> {
    let mut command = tokio::process::Command::new(hitl_lab::bins::path(service)?);
    command
        .args(args)
        .envs(env.iter().copied())
        .kill_on_drop(true);
    Ok(tokio::time::timeout(PATIENCE, command.output()).await??)
}

/// A service at `url(path)` answers `/livez` "live" and `/readyz` "ready".
async fn live_and_ready(url: impl Fn(&str) -> String) -> anyhow::Result<()> {
    assert_eq!(get(&url(health::LIVEZ)).await?, (200, "live\n".into()));
    assert_eq!(get(&url(health::READYZ)).await?, (200, "ready\n".into()));
    Ok(())
}

/// `grpc.health.v1.Health/Check` for `service` on the gate's Check port (mTLS with `tls`).
async fn grpc_health(
    gate: &ExtAuth,
    tls: Option<&GateClientTls>,
    service: &str,
) -> anyhow::Result<ServingStatus> {
    let channel = connect(&gate.options.grpc_endpoint(), tls).await?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?
        .into_inner();
    Ok(ServingStatus::try_from(answer.status)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_answers_its_probes_and_grpc_health_in_plaintext_and_over_mtls()
-> anyhow::Result<()> {
    let dir = scratch_dir("operable_gate_probes");
    let plain = ExtAuth::start(&dir.join("plain"), |o| o).await?;
    live_and_ready(|path| plain.url(path)).await?;
    let (status, text) = get(&plain.url(health::HEALTHZ)).await?;
    assert_eq!((status, text.lines().next()), (200, Some("ok")));
    for service in ["", "envoy.service.auth.v3.Authorization"] {
        assert_eq!(
            grpc_health(&plain, None, service).await?,
            ServingStatus::Serving,
            "{service:?}"
        );
    }
    let unknown = grpc_health(&plain, None, "no.such.Service").await;
    let code = unknown.unwrap_err().downcast::<tonic::Status>()?.code();
    assert_eq!(code, tonic::Code::NotFound);

    let files = GateTls::issue("operable CA")?.write(&dir.join("tls"))?;
    let mtls = ExtAuth::start(&dir.join("mtls"), |o| o.grpc_tls(files.clone())).await?;
    let own = GateClientTls::from(&files);
    assert_eq!(
        grpc_health(&mtls, Some(&own), "").await?,
        ServingStatus::Serving
    );
    assert!(
        grpc_health(&mtls, None, "").await.is_err(),
        "plaintext health on the mTLS port was answered"
    );
    Ok(())
}

/// With its PostgreSQL gone the gate is alive but not ready: `/livez` 200, `/readyz` 503 with
/// the reason on one line, gRPC health NOT_SERVING; back when the server is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_store_the_gate_is_live_but_not_ready_nor_serving() -> anyhow::Result<()> {
    let dir = scratch_dir("operable_store_down");
    let mut server = Server::start(&dir.join("cluster"))?;
    let password_file = dir.join("store-password");
    server.password_file(&password_file)?;
    let url = server.url("postgres");
    let gate = ExtAuth::start(&dir.join("gate"), |o| {
        o.postgres(url.clone(), password_file.clone())
    })
    .await?;
    assert_eq!(grpc_health(&gate, None, "").await?, ServingStatus::Serving);

    server.kill();
    assert_eq!(get(&gate.url(health::LIVEZ)).await?.0, 200);
    let (status, why) = get(&gate.url(health::READYZ)).await?;
    assert_eq!(status, 503, "{why}");
    assert!(
        why.starts_with("not ready: ") && why.lines().count() == 1,
        "{why:?}"
    );
    assert_eq!(
        grpc_health(&gate, None, "").await?,
        ServingStatus::NotServing
    );

    server.restart()?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while grpc_health(&gate, None, "").await? != ServingStatus::Serving {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            gate.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(get(&gate.url(health::READYZ)).await?.0, 200);
    Ok(())
}

/// An approval and a rejection are one decision each; the rejected call sent again (answered
/// at once with the same rejection) and a call denied without review are none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_count_each_decision_once_and_no_denial() -> anyhow::Result<()> {
    let gate = ExtAuth::start(&scratch_dir("operable_decisions"), |o| o).await?;
    let decisions =
        |outcome: &str| format!(r#"hitl_extauth_decisions_total{{outcome="{outcome}"}}"#);

    let approved = gate.check(&migrate(1, "v3"), USER).await?;
    let card = gate.wait_pending(1).await?.remove(0);
    gate.decide(&card.id, true, "fine", "bob").await?;
    tokio::time::timeout(PATIENCE, approved).await???;
    assert_eq!(gate.metric(&decisions("approved")).await?, 1.0);

    let rejected = gate.check(&migrate(2, "v9"), USER).await?;
    let card = gate.wait_pending(1).await?.remove(0);
    gate.decide(&card.id, false, "not v9", "bob").await?;
    tokio::time::timeout(PATIENCE, rejected).await???;
    let again = gate.check(&migrate(3, "v9"), USER).await?;
    tokio::time::timeout(PATIENCE, again).await???;
    assert_eq!(gate.metric(&decisions("rejected")).await?, 1.0);

    let denied = gate
        .check_raw(post(paths::PRIVILEGED_MCP, "{not json", &[]))
        .await?;
    tokio::time::timeout(PATIENCE, denied).await???;
    assert!(
        gate.metric(r#"hitl_extauth_checks_total{verdict="deny"}"#)
            .await?
            >= 2.0
    );
    let text = gate.metrics().await?;
    assert!(!text.contains(r#"outcome="denied""#), "{text}");
    assert_eq!(gate.metric(&decisions("approved")).await?, 1.0);
    assert_eq!(gate.metric(&decisions("rejected")).await?, 1.0);
    assert!(text.contains("hitl_extauth_build_info{version="), "{text}");
    assert_eq!(gate.metric("hitl_extauth_parked").await?, 0.0, "{text}");
    assert!(
        gate.metric("hitl_extauth_check_duration_seconds_count")
            .await?
            >= 4.0
    );
    Ok(())
}

/// hitl-ui is ready while its gate's admin API answers, and says so when it does not; it
/// logs JSON when asked to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reviewer_page_is_ready_while_its_gate_answers() -> anyhow::Result<()> {
    let dir = scratch_dir("operable_ui_ready");
    let mut gate = ExtAuth::start(&dir.join("gate"), |o| o).await?;
    let mut options = ui::Options::new(net::free_port()?, gate.options.admin_url())
        .reviewer_credentials(hitl_lab_tests::ui::CREDENTIALS);
    options.extauth_admin_token = gate.options.admin_token.clone();
    let spec = ui::spec(&options, &dir)?.env(LOG_FORMAT, LOG_FORMAT_JSON);
    let mut page = proc::Running::start(spec).await?;
    let url = |path: &str| format!("{}{path}", options.base_url());
    live_and_ready(url).await?;

    gate.kill().await?;
    assert_eq!(get(&url(health::LIVEZ)).await?.0, 200);
    let (status, why) = get(&url(health::READYZ)).await?;
    assert_eq!(status, 503, "{why}");
    assert!(why.starts_with("not ready: the gate's admin API"), "{why}");
    assert_eq!(get(&url(health::HEALTHZ)).await?, (200, "ok".into()));
    page.terminate(Duration::from_secs(5)).await?;
    every_line_is_a_json_object(&std::fs::read_to_string(dir.join("hitl-ui.log"))?)
}

fn every_line_is_a_json_object(log: &str) -> anyhow::Result<()> {
    assert!(log.lines().count() >= 1, "{log}");
    for line in log.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{e}: not one JSON object: {line}"))?;
        assert!(value.is_object() && value["level"].is_string(), "{line}");
    }
    Ok(())
}

/// The lab-only services answer the same probes (nothing they need can go away after start,
/// so they are ready once they serve), and log JSON when asked to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_and_the_scripted_model_answer_the_same_probes() -> anyhow::Result<()> {
    let dir = scratch_dir("operable_lab_services");
    let model_port = net::free_port()?;
    let model = scripted_model::spec(model_port, &dir)?.env(LOG_FORMAT, LOG_FORMAT_JSON);
    let chat_options = chat::Options::new(net::free_port()?, "alice:alice-pw")
        .agent("dba-assistant", "http://127.0.0.1:9/");
    let chat = chat::spec(&chat_options, &dir)?.env(LOG_FORMAT, LOG_FORMAT_JSON);
    let bases = [
        format!("http://127.0.0.1:{model_port}"),
        chat_options.base_url(),
    ];
    let mut running = vec![
        proc::Running::start(model).await?,
        proc::Running::start(chat).await?,
    ];
    for base in &bases {
        live_and_ready(|path| format!("{base}{path}")).await?;
        assert_eq!(
            get(&format!("{base}{}", health::HEALTHZ)).await?,
            (200, "ok".into())
        );
    }
    for process in &mut running {
        process.terminate(Duration::from_secs(5)).await?;
    }
    for log in [scripted_model::NAME, chat::NAME] {
        every_line_is_a_json_object(&std::fs::read_to_string(dir.join(format!("{log}.log")))?)?;
    }
    Ok(())
}

/// mock-db-mcp on a free port with `LOG_FORMAT=format`, asked its probes; its log file.
async fn mock_db_logging(test: &str, format: &str) -> anyhow::Result<String> {
    let dir = scratch_dir(test);
    let mut options = mock_db::Options::new(net::free_port()?);
    options.insecure_no_approval_key = true;
    let spec = mock_db::spec(&options, &dir)?.env(LOG_FORMAT, format);
    let mut running = proc::Running::start(spec).await?;
    live_and_ready(|path| options.url(path)).await?;
    assert_eq!(get(&options.url(paths::STATE)).await?.0, 200);
    running.terminate(Duration::from_secs(5)).await?;
    Ok(std::fs::read_to_string(dir.join("mock-db-mcp.log"))?)
}

#[tokio::test]
async fn log_format_json_writes_one_json_object_per_line() -> anyhow::Result<()> {
    let log = mock_db_logging("operable_log_json", LOG_FORMAT_JSON).await?;
    assert!(log.lines().count() >= 2, "{log}");
    every_line_is_a_json_object(&log)
}

#[tokio::test]
async fn log_format_text_writes_no_colour_codes_into_a_file() -> anyhow::Result<()> {
    let log = mock_db_logging("operable_log_text", LOG_FORMAT_TEXT).await?;
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains("\x1b["), "ANSI escapes in {log:?}");
    Ok(())
}

#[tokio::test]
async fn an_unknown_log_format_refuses_to_start_naming_the_allowed_ones() -> anyhow::Result<()> {
    for service in [
        "hitl-extauth",
        "hitl-ui",
        "mock-db-mcp",
        "lab-chat",
        "scripted-model",
    ] {
        let out = run_once(service, &[], &[(LOG_FORMAT, "yaml".as_ref())]).await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{service} started: {stderr}");
        assert!(
            stderr.contains(LOG_FORMAT)
                && stderr.contains(LOG_FORMAT_TEXT)
                && stderr.contains(LOG_FORMAT_JSON),
            "{service}: {stderr}"
        );
    }
    Ok(())
}

/// Every secret may come from a file (`NAME_FILE`, as a mounted Secret): the gates these tests
/// start read their admin token from `ADMIN_TOKEN_FILE` (`hitl_lab::components::extauth`).
/// Both a value and its file set is a mistake each service refuses, naming the two.
#[tokio::test]
async fn a_secret_set_twice_value_and_file_refuses_to_start_naming_both() -> anyhow::Result<()> {
    use hitl_wire::env::{chat, extauth, mockdb, ui};
    let dir = scratch_dir("operable_secret_files");
    let file = dir.join("secret");
    std::fs::write(&file, "s3cret\n")?;
    for (service, name, file_name) in [
        (
            "hitl-extauth",
            extauth::ADMIN_TOKEN,
            extauth::ADMIN_TOKEN_FILE,
        ),
        ("hitl-extauth", extauth::STORE_URL, extauth::STORE_URL_FILE),
        (
            "hitl-extauth",
            extauth::NOTIFY_SLACK_URLS,
            extauth::NOTIFY_SLACK_URLS_FILE,
        ),
        (
            "hitl-ui",
            ui::EXTAUTH_ADMIN_TOKEN,
            ui::EXTAUTH_ADMIN_TOKEN_FILE,
        ),
        ("hitl-ui", ui::SESSION_SECRET, ui::SESSION_SECRET_FILE),
        ("mock-db-mcp", mockdb::RESET_TOKEN, mockdb::RESET_TOKEN_FILE),
        (
            "lab-chat",
            chat::CHAT_CREDENTIALS,
            chat::CHAT_CREDENTIALS_FILE,
        ),
    ] {
        let env = [
            (name, "s3cret".as_ref()),
            (file_name, file.as_os_str()),
            (chat::AGENTS, "a=http://127.0.0.1:9/".as_ref()),
        ];
        let out = run_once(service, &[], &env).await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{service} started: {stderr}");
        assert!(
            stderr.contains(&format!("{name} and {file_name} are both set")),
            "{service}: {stderr}"
        );
    }
    Ok(())
}

/// One duration grammar (`hitl_wire::duration`, humantime's `90s`, `5m`, `12h`): a value in
/// another refuses to start, naming the variable and the grammar (a bare number is seconds,
/// as every duration setting took before: `PARK_TIMEOUT_SEC=600`, the seed's, still works).
#[tokio::test]
async fn a_duration_outside_the_one_grammar_refuses_to_start_naming_it() -> anyhow::Result<()> {
    use hitl_wire::env::{extauth, http, mockdb, ui};
    for (service, name, value) in [
        ("hitl-extauth", extauth::APPROVAL_TTL, "a day"),
        ("hitl-extauth", extauth::PARK_TIMEOUT_SEC, "ten minutes"),
        ("hitl-ui", ui::SESSION_TTL, "soon"),
        ("mock-db-mcp", http::IDLE_TIMEOUT, "60 parsecs"),
        ("mock-db-mcp", mockdb::QUERY_TIME_BUDGET, "0s"),
    ] {
        let out = run_once(service, &[], &[(name, value.as_ref())]).await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{service} started: {stderr}");
        assert!(
            stderr.contains(&format!("{name}={value:?}")) && stderr.contains("humantime"),
            "{service}: {stderr}"
        );
    }
    Ok(())
}

/// A key generated where only the gate reads it (the chart's Secret) still gives the MCP server
/// its public half: `--print-verifying-key` prints exactly what the key files' verifying half
/// holds, and serves nothing; without a key it says which setting is missing.
#[tokio::test]
async fn the_gate_prints_the_public_half_of_its_approval_key() -> anyhow::Result<()> {
    use hitl_wire::{approval::Signer, env::extauth};
    let dir = scratch_dir("operable_verifying_key");
    let keys = Signer::generate()?.write_key_files(&dir)?;
    const PRINT: &[&str] = &["--print-verifying-key"];
    let key = [(extauth::APPROVAL_SIGNING_KEY_FILE, keys.signing.as_os_str())];
    let out = run_once("hitl-extauth", PRINT, &key).await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout)?.trim(),
        std::fs::read_to_string(&keys.verifying)?.trim()
    );
    let out = run_once("hitl-extauth", PRINT, &[]).await?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(extauth::APPROVAL_SIGNING_KEY_FILE),
        "{stderr}"
    );
    Ok(())
}
