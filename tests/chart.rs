//! The Helm chart `charts/hitl-gate`, as a platform team installs it: `helm lint --strict`
//! clean, every rendered document one the API server accepts (the same CRD and core-type
//! checks as the lab's manifests), Secrets generated once and never in git, the gate locked
//! down by default, and — one source — the chart rendered with the kind lab's values is what
//! `manifests/services/` applies for hitl-extauth and hitl-ui. Rendered by Helm's own library
//! (helm-python-sdk), not a re-implementation.

use std::path::PathBuf;

use hitl_lab_tests::{
    chart::{Rendered, kind_lab_values, render},
    manifests::{Catalog, crds_dir},
    scratch_dir,
};
use hitl_manifests::{Doc, LabManifests, ModelChoice, StoreChoice, images};
use hitl_wire::env::extauth as extauth_env;
use serde_json::{Value, json};

fn rendered(test: &str, files: &[PathBuf], values: Value) -> Rendered {
    render(&scratch_dir(test), files, &values).unwrap_or_else(|e| panic!("{e:#}"))
}

fn defaults(test: &str) -> Rendered {
    rendered(test, &[], Value::Null)
}

/// The value sets a platform team is expected to use, each with a name for failures.
fn value_sets() -> Vec<(&'static str, Vec<PathBuf>, Value)> {
    vec![
        ("defaults", vec![], Value::Null),
        ("kind lab", vec![kind_lab_values()], Value::Null),
        ("sqlite", vec![], json!({"store": {"type": "sqlite"}})),
        (
            "gateway policy, no mTLS, no NetworkPolicy",
            vec![],
            json!({"gateway": {"enabled": true}, "extauth": {"grpcTls": {"enabled": false}},
                   "networkPolicy": {"enabled": false}}),
        ),
        (
            "an identity provider whose sub is opaque",
            vec![],
            json!({"extauth": {"requester": {"nameClaim": "preferred_username"}}}),
        ),
        (
            "managed PostgreSQL with its CA",
            vec![],
            json!({"store": {"postgres": {"url": "postgres://gate@db.example.com:5432/hitl",
                                          "caSecret": "db-ca"}}}),
        ),
    ]
}

fn env<'a>(deployment: &'a Doc, name: &str) -> Option<&'a Value> {
    deployment.value["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)
}

// ---- what Helm and the API server say ------------------------------------------------------

#[test]
fn the_chart_is_lint_strict_clean_and_renders_what_the_api_server_accepts() {
    let catalog = Catalog::load(&crds_dir()).unwrap_or_else(|e| panic!("{e:#}"));
    for (name, files, values) in value_sets() {
        let chart = rendered("chart-valid", &files, values);
        let failures = chart.lint_failures();
        assert!(
            failures.is_empty(),
            "helm lint --strict ({name}):\n{failures:#?}"
        );
        assert!(!chart.docs.is_empty(), "{name}: nothing rendered");
        for doc in &chart.docs {
            let problems = catalog.check(doc);
            assert!(
                problems.is_empty(),
                "{name}: {} would be refused:\n{problems:#?}",
                doc.resource()
            );
            let known = hitl_lab_tests::manifests::check_core(doc).is_some()
                || catalog
                    .kinds()
                    .any(|(g, v, k)| g == doc.group() && v == doc.version() && *k == doc.kind);
            assert!(
                known,
                "{name}: {} has no schema to check against",
                doc.resource()
            );
        }
    }
}

#[test]
fn the_values_schema_refuses_a_misspelt_key_and_an_unknown_store() {
    let scratch = scratch_dir("chart-schema");
    for (values, named) in [
        (
            json!({"extauth": {"parkTimeoutSecs": 600}}),
            "parkTimeoutSecs",
        ),
        (json!({"store": {"type": "etcd"}}), "type"),
        (
            json!({"store": {"postgres": {"url": "postgres://hitl:hunter2@db/hitl"}}}),
            "url",
        ),
    ] {
        let err = render(&scratch, &[], &values).expect_err("the schema must refuse it");
        assert!(
            format!("{err:#}").contains(named),
            "the refusal of {values} should name `{named}`: {err:#}"
        );
    }
}

// ---- one source: the kind lab applies what the chart renders -------------------------------

/// What may differ between the chart and the lab's file: Helm's labels (and the lab's store
/// label, which `up` reads to pick a mode), annotations (the chart keeps its PVC on
/// uninstall), the order of named list items (env, mounts, volumes: nothing refers to an
/// earlier one), and comments in the approval policy.
fn comparable(doc: &Doc) -> Value {
    let mut value = doc.value.clone();
    strip_labels(&mut value);
    for pointer in ["/metadata", "/spec/template/metadata"] {
        if let Some(metadata) = value.pointer_mut(pointer).and_then(Value::as_object_mut) {
            metadata.remove("annotations");
        }
    }
    if let Some(policy) = value.pointer_mut("/data/policy.toml") {
        let text: Vec<&str> = policy
            .as_str()
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        *policy = json!(text.join("\n"));
    }
    sort_named(&mut value);
    value
}

fn strip_labels(value: &mut Value) {
    for pointer in ["/metadata/labels", "/spec/template/metadata/labels"] {
        if let Some(labels) = value.pointer_mut(pointer).and_then(Value::as_object_mut) {
            labels.retain(|k, _| {
                !k.starts_with("helm.sh/")
                    && k != hitl_manifests::store::STORE_LABEL
                    && !matches!(
                        k.as_str(),
                        "app.kubernetes.io/instance"
                            | "app.kubernetes.io/managed-by"
                            | "app.kubernetes.io/version"
                    )
            });
        }
    }
}

fn sort_named(value: &mut Value) {
    match value {
        Value::Array(items) => {
            items.iter_mut().for_each(sort_named);
            if items.iter().all(|i| i["name"].is_string()) {
                items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            }
        }
        Value::Object(map) => map.values_mut().for_each(sort_named),
        _ => {}
    }
}

/// The lab's documents for hitl-extauth and hitl-ui with `store`, as `up` applies them by
/// default: with this version's published images, the ones the chart defaults to.
fn lab_services(store: StoreChoice) -> Vec<Doc> {
    let lab = LabManifests::load().unwrap_or_else(|e| panic!("{e}"));
    lab.docs_for_store(ModelChoice::Scripted, store)
        .iter()
        .filter(|d| {
            let file = d.location.file.to_string_lossy().replace('\\', "/");
            file.ends_with("services/hitl-extauth.yaml") || file.ends_with("services/hitl-ui.yaml")
        })
        .map(|d| images::Images::default().rewrite(d))
        .collect()
}

#[test]
fn the_kind_lab_applies_what_the_chart_renders_with_the_lab_values() {
    for store in StoreChoice::ALL {
        let chart = rendered(
            "chart-one-source",
            &[kind_lab_values()],
            json!({"store": {"type": store.as_str()}}),
        );
        let lab = lab_services(store);
        let names = |docs: &[Doc]| {
            let mut v: Vec<String> = docs.iter().map(Doc::resource).collect();
            v.sort();
            v
        };
        assert_eq!(
            names(&chart.docs),
            names(&lab),
            "--store {store}: the chart and manifests/services/ define different objects"
        );
        for doc in &lab {
            let ours = chart.doc(&doc.kind, &doc.name).expect("listed above");
            assert_eq!(
                comparable(ours),
                comparable(doc),
                "--store {store}: the chart's {} differs from manifests/services/ (left: chart)",
                doc.resource()
            );
        }
    }
}

// ---- a platform team's install ---------------------------------------------------------------

#[test]
fn a_default_install_generates_each_secret_once_and_keeps_it() {
    let first = defaults("chart-secrets-1");
    let second = defaults("chart-secrets-2");
    for (name, key) in [
        ("hitl-extauth-admin", "token"),
        ("hitl-approval-key", "signing-key"),
        ("hitl-ui-session", "secret"),
        ("hitl-ui-reviewers", "credentials"),
    ] {
        let secret = first
            .doc("Secret", name)
            .unwrap_or_else(|| panic!("no Secret {name}"));
        assert_eq!(
            secret.value["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "{name} must outlive an uninstall"
        );
        let value = secret.value["data"][key].as_str().unwrap_or_default();
        assert!(!value.is_empty(), "{name} has no {key}");
        let again = &second.doc("Secret", name).expect("rendered twice").value["data"][key];
        assert_ne!(
            again, value,
            "{name} must be random, not a constant in the chart"
        );
    }
    // The signing key is one the gate reads: 32 bytes of hex.
    let data = &first.doc("Secret", "hitl-approval-key").unwrap().value["data"]["signing-key"];
    let hex = decode_b64(data.as_str().unwrap());
    hitl_wire::approval::Signer::from_hex(&hex).expect("a key the gate accepts");
    let credentials = decode_b64(
        first.doc("Secret", "hitl-ui-reviewers").unwrap().value["data"]["credentials"]
            .as_str()
            .unwrap(),
    );
    assert!(credentials.starts_with("reviewer:") && credentials.len() > "reviewer:".len() + 24);
    assert!(
        first.notes.contains("hitl-ui-reviewers"),
        "NOTES say where the password is"
    );
}

fn decode_b64(text: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

#[test]
fn secrets_made_elsewhere_are_referenced_not_rendered() {
    let chart = rendered("chart-existing", &[kind_lab_values()], Value::Null);
    assert!(
        chart.docs.iter().all(|d| d.kind != "Secret"),
        "with create: false the chart renders no Secret"
    );
    let gate = chart.doc("Deployment", "hitl-extauth").unwrap();
    assert_eq!(
        env(gate, extauth_env::ADMIN_TOKEN).unwrap()["valueFrom"]["secretKeyRef"]["name"],
        "hitl-extauth-admin"
    );
}

#[test]
fn the_gate_is_locked_down_and_probed_by_default() {
    let chart = defaults("chart-defaults");
    let policy = chart
        .doc("NetworkPolicy", "hitl-extauth-ingress")
        .expect("a NetworkPolicy by default");
    assert_eq!(
        policy.value["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "hitl-extauth"
    );
    for name in ["hitl-extauth", "hitl-ui"] {
        let container = &chart.doc("Deployment", name).unwrap().value["spec"]["template"]["spec"]["containers"]
            [0];
        assert_eq!(
            container["readinessProbe"]["httpGet"]["path"], "/readyz",
            "{name}"
        );
        assert_eq!(
            container["livenessProbe"]["httpGet"]["path"], "/livez",
            "{name}"
        );
        assert_eq!(
            container["securityContext"]["readOnlyRootFilesystem"], true,
            "{name}"
        );
        // One rule for the chart and the kind lab: the images as images.yml pushes them.
        let published = images::published(images::PUBLISHED_PREFIX, name);
        assert_eq!(
            container["image"], published,
            "{name} defaults to the published image of this version, as the kind lab does"
        );
    }
    let gate = chart.doc("Deployment", "hitl-extauth").unwrap();
    assert_eq!(gate.value["spec"]["replicas"], 2);
    assert!(
        env(gate, extauth_env::STORE_URL).is_some(),
        "PostgreSQL by default"
    );
    assert!(chart.doc("PodDisruptionBudget", "hitl-extauth").is_some());
}

/// A shared gateway runs in a namespace of its own: the Check port admits its pods there
/// (one peer: those pods *in* that namespace), and only there.
#[test]
fn a_gateway_in_another_namespace_reaches_the_check_port_and_nobody_else_does() {
    let chart = rendered(
        "chart-gateway-namespace",
        &[],
        json!({"networkPolicy": {"gatewayNamespaceLabels":
            {"kubernetes.io/metadata.name": "agentgateway-system"}}}),
    );
    let policy = chart.doc("NetworkPolicy", "hitl-extauth-ingress").unwrap();
    let check = policy.value["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["ports"][0]["port"] == "grpc")
        .expect("a rule for the Check port");
    let peers = check["from"].as_array().unwrap();
    assert_eq!(peers.len(), 1, "one peer, both selectors in it: {peers:?}");
    assert_eq!(
        peers[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "agentgateway-system"
    );
    assert_eq!(
        peers[0]["podSelector"]["matchLabels"]["gateway.networking.k8s.io/gateway-name"],
        "hitl-gateway"
    );
    let same_namespace = defaults("chart-gateway-same-namespace");
    let policy = same_namespace
        .doc("NetworkPolicy", "hitl-extauth-ingress")
        .unwrap();
    assert!(
        policy.value["spec"]["ingress"][0]["from"][0]
            .get("namespaceSelector")
            .is_none(),
        "by default the release's own namespace"
    );
}

#[test]
fn on_sqlite_one_replica_keeps_its_file_on_a_claim() {
    let chart = rendered(
        "chart-sqlite",
        &[],
        json!({"store": {"type": "sqlite"}, "extauth": {"replicas": 3}}),
    );
    let gate = chart.doc("Deployment", "hitl-extauth").unwrap();
    assert_eq!(
        gate.value["spec"]["replicas"], 1,
        "one writer, whatever replicas says"
    );
    assert_eq!(gate.value["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        env(gate, extauth_env::AUDIT_DB).unwrap()["value"],
        hitl_manifests::store::SQLITE_PATH
    );
    assert!(env(gate, extauth_env::STORE_URL).is_none());
    assert!(
        chart
            .doc("PersistentVolumeClaim", hitl_manifests::store::SQLITE_CLAIM)
            .is_some()
    );
    assert!(chart.doc("PodDisruptionBudget", "hitl-extauth").is_none());
}

#[test]
fn the_optional_route_policy_fails_closed_and_outlasts_a_park() {
    let chart = rendered("chart-gateway", &[], json!({"gateway": {"enabled": true}}));
    let policy = chart
        .doc("AgentgatewayPolicy", "hitl-gate")
        .expect("the gate policy");
    let ext_auth = &policy.value["spec"]["traffic"]["extAuth"];
    assert_eq!(ext_auth["failureMode"], "FailClosed");
    assert!(
        ext_auth["forwardBody"]["maxSize"].is_string(),
        "the gate sees the body"
    );
    assert!(ext_auth.get("cache").is_none(), "no decision is cached");
    assert_eq!(
        policy.value["spec"]["traffic"]["timeouts"]["request"], "11m",
        "600 s park + 1 min"
    );
    assert_eq!(
        policy.value["spec"]["targetRefs"][0]["name"],
        "privileged-mcp"
    );
    assert!(chart.doc("HTTPRoute", "privileged-mcp").is_some());
    let defaults = defaults("chart-no-gateway");
    assert!(
        defaults
            .docs
            .iter()
            .all(|d| d.kind != "AgentgatewayPolicy" && d.kind != "HTTPRoute")
    );
}

#[test]
fn the_optional_route_and_policies_are_the_labs_own() {
    let chart = rendered(
        "chart-gateway-one-source",
        &[kind_lab_values()],
        json!({"gateway": {"enabled": true}}),
    );
    let lab = LabManifests::load().unwrap_or_else(|e| panic!("{e}"));
    let optional: Vec<&Doc> = chart
        .docs
        .iter()
        .filter(|d| d.kind == "AgentgatewayPolicy" || d.kind == "HTTPRoute")
        .collect();
    assert_eq!(optional.len(), 4, "the route and three policies");
    for ours in optional {
        let theirs = lab
            .docs
            .iter()
            .find(|d| d.kind == ours.kind && d.name == ours.name)
            .unwrap_or_else(|| panic!("the lab has no {}", ours.resource()));
        assert_eq!(
            comparable(ours),
            comparable(theirs),
            "the chart's {} differs from manifests/gateway/ (left: chart)",
            ours.resource()
        );
    }
}

/// Where the provider's `sub` is an opaque id, requesters are named by the claim reviewers
/// are (separation of duties compares the two); by default the gate's own default (`sub`).
#[test]
fn the_requester_may_be_named_by_the_reviewers_claim() {
    let claim = extauth_env::REQUESTER_NAME_CLAIM;
    let chart = defaults("chart-requester-claim-default");
    assert_eq!(
        env(chart.doc("Deployment", "hitl-extauth").unwrap(), claim),
        None
    );
    let chart = rendered(
        "chart-requester-claim",
        &[],
        json!({"extauth": {"requester": {"nameClaim": "preferred_username"}}}),
    );
    let set = env(chart.doc("Deployment", "hitl-extauth").unwrap(), claim);
    assert_eq!(set.map(|v| &v["value"]), Some(&json!("preferred_username")));
}
