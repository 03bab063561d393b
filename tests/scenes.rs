//! Every scene in `scenarios/`, replayed against a fresh local lab (the real gateway —
//! agentgateway and Envoy, one run each —, our services, the scripted model) on both agents:
//! kagent's declarative one (real kagent-adk) and the BYO LangGraph one (real
//! kagent-langgraph). Each scene must pass on each, with the same tier, decision and execution
//! for every call, and each normalised transcript is a snapshot, the same for both gateways: a
//! change in who asked, which gate fired, who decided or what ran shows up here.

use hitl_lab::{agents::AgentKind, components::agentgateway, gateway::Gateway};
use hitl_lab_tests::lab::Lab;
use hitl_manifests::ModelChoice;
use hitl_scenes::{
    conformance,
    scene::{self, report::normalised_transcript},
};

#[tokio::test(flavor = "multi_thread")]
async fn every_scene_passes_through_agentgateway() {
    if agentgateway::binary_for_test("scenes::every_scene_passes_through_agentgateway").is_none() {
        return;
    }
    every_scene_passes_with_the_expected_transcript(Gateway::Agentgateway).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_scene_passes_through_envoy() {
    every_scene_passes_with_the_expected_transcript(Gateway::Envoy).await;
}

async fn every_scene_passes_with_the_expected_transcript(gateway: Gateway) {
    let lab = Lab::up_for_scenes(&format!("scenes-{gateway}"), gateway).await;
    let scenes = scene::load_dir(&scene::parse::default_dir()).expect("scenes");
    let all: Vec<_> = scenes.iter().collect();
    let progress: conformance::Progress = std::sync::Arc::new(|line| println!("{line}"));
    let report = conformance::replay(
        &lab.state,
        &all,
        ModelChoice::Scripted,
        &AgentKind::ALL,
        &progress,
        conformance::restart_gate(&lab.state, &lab.config.dir, None),
    )
    .await
    .expect("the scenes ran");
    for scene in &report.scenes {
        let name = match scene.agent {
            AgentKind::Declarative => format!("scene_{:02}", scene.id),
            agent => format!("scene_{:02}_{agent}", scene.id),
        };
        insta::assert_snapshot!(name, normalised_transcript(scene));
    }
    assert_eq!(report.gateway, gateway.as_str());
    let failures: Vec<String> = report
        .scenes
        .iter()
        .filter(|s| !s.passed)
        .flat_map(|s| {
            s.failures()
                .map(move |c| format!("scene {} on the {} agent: {}", s.id, s.agent, c.what))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for declarative in report
        .scenes
        .iter()
        .filter(|s| s.agent == AgentKind::Declarative)
    {
        let langgraph = report
            .scenes
            .iter()
            .find(|s| s.agent == AgentKind::Langgraph && s.id == declarative.id)
            .expect("every scene ran on both");
        assert_eq!(
            declarative.calls, langgraph.calls,
            "scene {}: the agents' calls differ (tier, decision or execution)",
            declarative.id
        );
    }
}
