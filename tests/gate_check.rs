//! `gate-check` against real gates through real gateways: hitl-extauth passes every check
//! (the ones it cannot be asked about say n/a), and a deliberately fail-open gate — the
//! negative control — fails exactly the checks that catch its shortcuts.
//!
//! Needs the built binaries, Envoy and agentgateway as `tests/extauth_gate.rs` does.

use std::{collections::BTreeSet, time::Duration};

use hitl_lab_tests::{extauth::ExtAuth, fail_open_gate::FailOpenGate, through_both_gateways};
use hitl_scenes::{attacks, gate_check, scene::SuiteReport};
use hitl_wire::{
    approval::Signer,
    extauth::{HistoryQuery, Outcome},
};

fn catalogue() -> Vec<attacks::Attack> {
    attacks::load_dir(&attacks::catalogue::default_dir()).expect("the catalogue parses")
}

fn failed(report: &SuiteReport) -> BTreeSet<String> {
    report
        .attacks
        .iter()
        .filter(|a| !a.passed)
        .map(|a| a.id.clone())
        .collect()
}

through_both_gateways! {
async fn hitl_extauth_passes_every_check(gateway) {
    let dir = hitl_lab_tests::scratch_dir(&format!("gate_check_hitl_extauth-{gateway}"));
    let signer = Signer::generate()?;
    let keys = signer.write_key_files(&dir.join("public"))?;
    let park = Duration::from_secs(8);
    // The lab's approval policy, so the two-key attacks apply (a migration down to v1).
    let policy = dir.join("approval-policy.toml");
    let lab = hitl_manifests::LabManifests::load()?;
    std::fs::write(&policy, lab.approval_policy().expect("the lab's policy"))?;
    let extauth = ExtAuth::start_keyed(&dir, &signer, |mut o| {
        o.approval_policy = Some(policy.clone());
        o.park_timeout(park)
    })
    .await?;
    let mut options = gate_check::Options::new(extauth.options.grpc_endpoint(), gateway);
    options.admin = Some(extauth.options.admin_url());
    options.admin_token = extauth.options.admin_token.clone();
    options.approval_key = Some(keys.verifying);
    options.requester_key = Some(extauth.requester_dir().join(hitl_lab::requester::KEY_FILE));
    options.park_timeout = Some(park);
    options.park_window = Duration::from_secs(2);
    options.dir = dir.join("gate-check");
    let report = gate_check::run(&options, &catalogue(), &|line| eprintln!("{line}")).await?;
    eprintln!("{}", report.summary());
    assert_eq!(failed(&report), BTreeSet::new(), "{}", report.summary());
    // Everything applies to hitl-extauth except what only the reviewer UI enforces, and the
    // Check port's mTLS, which this gate (plaintext, as gate-check dials it) does not have.
    let not_applicable: Vec<_> = report
        .attacks
        .iter()
        .filter(|a| a.checks.is_empty())
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(
        not_applicable,
        ["self-approval", "mtls-check-without-client-certificate"],
        "{}",
        report.summary()
    );
    Ok(())
}
}

through_both_gateways! {
/// A gate that has been running a while (the local lab keeps its audit across `up`s) has more
/// denials on record than one page of `/history`, and a catalogue run right after another
/// finds its repeats coalesced: every denial must still be found on the record, twice.
async fn the_catalogue_passes_twice_back_to_back_on_a_long_history(gateway) {
    let dir = hitl_lab_tests::scratch_dir(&format!("gate_check_twice-{gateway}"));
    let signer = Signer::generate()?;
    let keys = signer.write_key_files(&dir.join("public"))?;
    let park = Duration::from_secs(8);
    let mut extauth = ExtAuth::start_keyed(&dir, &signer, |o| o.park_timeout(park)).await?;
    // 600 distinct denials; the gate writes at most 120 new rows a minute per process, and
    // queues denials without waiting for their commit, so each round is let settle first.
    for round in 0..5 {
        for i in 0..120 {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"history/{round}"}}"#);
            extauth.check(&body, "mallory").await?.await??;
        }
        extauth.history(&HistoryQuery::latest(1)).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        extauth.crash_and_restart().await?;
    }
    let one_page = HistoryQuery {
        limit: Some(500),
        ..HistoryQuery::outcome(Outcome::Denied)
    };
    assert!(
        extauth.history(&one_page).await?.next_before.is_some(),
        "the gate's record holds more denials than one page of /history"
    );
    for run in ["first", "second"] {
        let mut options = gate_check::Options::new(extauth.options.grpc_endpoint(), gateway);
        options.admin = Some(extauth.options.admin_url());
        options.admin_token = extauth.options.admin_token.clone();
        options.approval_key = Some(keys.verifying.clone());
        options.requester_key = Some(extauth.requester_dir().join(hitl_lab::requester::KEY_FILE));
        options.park_timeout = Some(park);
        options.park_window = Duration::from_secs(2);
        options.dir = dir.join(format!("gate-check-{run}"));
        let report = gate_check::run(&options, &catalogue(), &|line| eprintln!("{line}")).await?;
        assert_eq!(failed(&report), BTreeSet::new(), "{run} run: {}", report.summary());
    }
    Ok(())
}
}

through_both_gateways! {
/// The fail-open gate holds only an obvious `tools/call` and passes everything else. Against
/// it the lifecycle passes (it does park, approve, reject with the reason, expire), and so do
/// the attacks that the gateway or the backend stop by themselves (path tricks, and frames
/// the backend's parser refuses); the ones that need a gate
/// that reads bodies strictly, proves lengths and verifies the requester fail.
async fn a_fail_open_gate_fails_exactly_the_checks_it_should(gateway) {
    let dir = hitl_lab_tests::scratch_dir(&format!("gate_check_fail_open-{gateway}"));
    let gate = FailOpenGate::start(&dir, Duration::from_secs(6)).await?;
    let mut options = gate_check::Options::new(gate.endpoint.clone(), gateway);
    options.decide_cmd = Some(gate.decide_cmd());
    options.park_timeout = Some(gate.park_timeout);
    options.park_window = Duration::from_secs(2);
    options.dir = dir.join("gate-check");
    let report = gate_check::run(&options, &catalogue(), &|line| eprintln!("{line}")).await?;
    eprintln!("{}", report.summary());
    let expected: BTreeSet<String> = [
        // It reads the last of duplicate keys, as the backend does: parked, not refused.
        "body-duplicate-method",
        "body-duplicate-tool-name",
        // It never asks whether it saw the whole body, or the body the backend will see.
        // (Padding *before* the call passes this gate too, but mock-db-mcp's own body limit
        // answers 413; a batch, a BOM, trailing data and `Tools/Call` likewise pass the gate
        // and are refused by the backend's strict parser: the catalogue cannot tell who
        // refused a frame that never became a tool call, so those rows pass.)
        "body-padded-past-limit",
        "body-chunked",
        "body-gzip",
        "body-text-plain",
        // A notification cannot carry a result, so a reviewer's approval could never be
        // answered: a strict gate refuses it.
        "body-notification",
        // It never asks who is calling, nor verifies the token it is handed.
        "identity-forged-header",
        "requester-stated-to-the-check-port",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(
        // agentgateway does not check `nbf`: only a gate that verifies the token does.
        (gateway == hitl_lab::gateway::Gateway::Agentgateway)
            .then(|| "requester-token-not-yet-valid".to_owned()),
    )
    .collect();
    assert_eq!(failed(&report), expected, "{}", report.summary());
    Ok(())
}
}
