//! What the project ships beyond the lab, checked without GitHub: the workflows and the
//! gate-check Action parse and say what they promise (every image built for amd64 and arm64
//! with an SBOM and provenance, tagged as the chart and the Action name them; the Action run
//! against our gate and against the fail-open gate, which must fail; tests and `cargo deny`
//! on every push), and the gate-check image pins the lab's agentgateway.

use hitl_manifests::{checkout::workspace_root, images};
use yaml_serde::Value;

fn yaml(path: &str) -> Value {
    let path = workspace_root().join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn steps(workflow: &Value, job: &str) -> Vec<Value> {
    workflow["jobs"][job]["steps"]
        .as_sequence()
        .unwrap_or_else(|| panic!("job {job} has no steps"))
        .clone()
}

fn step_using<'a>(steps: &'a [Value], action: &str) -> &'a Value {
    steps
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action)))
        .unwrap_or_else(|| panic!("no step uses {action}"))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

#[test]
fn on_a_tag_every_image_is_built_for_both_architectures_with_sbom_and_provenance() {
    let workflow = yaml(".github/workflows/images.yml");
    let tags = workflow["on"]["push"]["tags"][0]
        .as_str()
        .unwrap_or_default();
    assert!(tags.starts_with('v'), "runs on version tags, not {tags:?}");
    let matrix = workflow["jobs"]["image"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .expect("a matrix of images");
    let names: Vec<&str> = matrix.iter().map(|m| text(&m["name"])).collect();
    for image in [
        "hitl-extauth",
        "hitl-ui",
        "mock-db-mcp",
        "scripted-model",
        "gate-check",
    ] {
        assert!(names.contains(&image), "images.yml does not build {image}");
    }
    let steps = steps(&workflow, "image");
    let build = &step_using(&steps, "docker/build-push-action")["with"];
    assert_eq!(text(&build["platforms"]), "linux/amd64,linux/arm64");
    assert_eq!(build["sbom"], Value::Bool(true));
    assert_eq!(text(&build["provenance"]), "mode=max");
    assert_eq!(build["push"], Value::Bool(true));
    let meta = text(&step_using(&steps, "docker/metadata-action")["with"]["tags"]);
    assert!(
        meta.contains("pattern={{version}}"),
        "the chart's appVersion tag (1.2.3)"
    );
    assert!(meta.contains("pattern=v{{major}}"), "the Action's @v1 tag");
    // The chart and the kind lab pull what this pushes: one prefix, this version's tag.
    let values = yaml("charts/hitl-gate/values.yaml");
    assert_eq!(text(&values["image"]["prefix"]), images::PUBLISHED_PREFIX);
    let chart = yaml("charts/hitl-gate/Chart.yaml");
    assert_eq!(text(&chart["appVersion"]), images::VERSION);
    for service in images::PUBLISHED {
        assert!(
            names.contains(&service),
            "images.yml does not push {service}"
        );
    }
}

#[test]
fn the_gate_check_image_pins_the_labs_agentgateway_and_toolchain() {
    let dockerfile = std::fs::read_to_string(workspace_root().join("Dockerfile")).unwrap();
    let pinned = format!(
        "ARG AGENTGATEWAY_VERSION={}",
        hitl_lab::versions::AGENTGATEWAY
    );
    assert!(
        dockerfile.contains(&pinned),
        "the Dockerfile must say {pinned}"
    );
    assert!(
        dockerfile.contains("AS gate-check\n"),
        "no gate-check target"
    );
    let ci = yaml(".github/workflows/ci.yml");
    let container = text(&ci["jobs"]["test"]["container"]);
    let rust = container
        .trim_start_matches("rust:")
        .trim_end_matches("-bookworm");
    assert!(
        dockerfile.contains(&format!("FROM rust:{rust}-slim-bookworm")),
        "ci.yml tests with rust {rust}; the images must build with the same"
    );
}

#[test]
fn the_action_takes_a_gate_and_a_way_to_decide_and_reports_junit_and_json() {
    let action = yaml("gate-check/action.yml");
    let inputs = &action["inputs"];
    assert_eq!(inputs["ext-authz"]["required"], Value::Bool(true));
    for input in [
        "admin",
        "admin-token",
        "decide-cmd",
        "gateway",
        "report-dir",
    ] {
        assert!(
            inputs[input].is_mapping(),
            "the Action has no input {input}"
        );
    }
    assert_eq!(text(&action["runs"]["using"]), "composite");
    for output in ["junit", "json"] {
        assert!(action["outputs"][output].is_mapping(), "no output {output}");
    }
    let run = text(&action["runs"]["steps"][1]["run"]);
    assert!(
        run.contains("exit \"$status\""),
        "a failed check fails the step"
    );
    assert!(
        !run.contains("--admin-token"),
        "the token never goes on a command line"
    );
}

#[test]
fn the_action_runs_against_our_gate_and_the_fail_open_gate_which_must_fail() {
    let workflow = yaml(".github/workflows/gate-check.yml");
    let gates = &workflow["jobs"]["gate-check"]["strategy"]["matrix"]["gate"];
    assert_eq!(
        gates
            .as_sequence()
            .unwrap()
            .iter()
            .map(text)
            .collect::<Vec<_>>(),
        ["hitl-extauth", "fail-open"]
    );
    let steps = steps(&workflow, "gate-check");
    let check = step_using(&steps, "./gate-check");
    assert_eq!(
        text(&check["continue-on-error"]),
        "${{ matrix.gate == 'fail-open' }}"
    );
    let id = text(&check["id"]);
    let must_fail = steps
        .iter()
        .find(|s| text(&s["if"]) == "matrix.gate == 'fail-open'")
        .expect("a step that checks the fail-open gate failed");
    assert!(text(&must_fail["run"]).contains(&format!("steps.{id}.outcome }}}}\" = failure")));
}

#[test]
fn every_push_runs_the_tests_and_cargo_deny() {
    let ci = yaml(".github/workflows/ci.yml");
    assert!(
        ci["on"]["push"].is_null() || ci["on"]["push"].is_mapping(),
        "on every push"
    );
    let test: Vec<String> = steps(&ci, "test")
        .iter()
        .map(|s| text(&s["run"]).to_owned())
        .collect();
    for command in [
        "cargo fmt --all --check",
        "cargo clippy",
        "cargo xtask test",
    ] {
        assert!(
            test.iter().any(|r| r.contains(command)),
            "ci.yml does not run {command}"
        );
    }
    let deny = steps(&ci, "deny");
    assert_eq!(
        text(&step_using(&deny, "EmbarkStudios/cargo-deny-action")["with"]["command"]),
        "check"
    );
    let dependabot = yaml(".github/dependabot.yml");
    let ecosystems: Vec<&str> = dependabot["updates"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|u| text(&u["package-ecosystem"]))
        .collect();
    assert_eq!(ecosystems, ["cargo", "github-actions", "npm", "pip"]);
}
