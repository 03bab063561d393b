//! A whole local lab for a test: every process real, on free loopback ports, in the test's
//! own scratch directory (never the user's `target/lab`), taken down when dropped.

use std::time::Duration;

use hitl_lab::{
    agents::AgentKind,
    gateway::Gateway,
    lab::LabState,
    local::{self, LocalConfig, Ports},
    proc,
};
use hitl_manifests::ModelChoice;
use hitl_scenes::scene;

/// A running local lab with the scripted model and both agents.
pub struct Lab {
    pub state: LabState,
    pub config: LocalConfig,
}

impl Lab {
    /// Bring a lab up for `test` behind Envoy (its directory is `target/test-scratch/<test>`).
    pub async fn up(test: &str) -> Self {
        Self::up_with(test, Gateway::Envoy).await
    }

    /// Bring a lab up for `test` behind `gateway`.
    pub async fn up_with(test: &str, gateway: Gateway) -> Self {
        // Long enough for a reviewer in a browser; short enough that a lost decision fails fast.
        Self::up_holding(test, gateway, Duration::from_secs(120)).await
    }

    /// Bring a lab up for the scenes behind `gateway`, holding calls as conformance's own lab
    /// does: scene 7 waits for the hold to run out; scenes 3 and 4 are decided as the card
    /// appears.
    pub async fn up_for_scenes(test: &str, gateway: Gateway) -> Self {
        Self::up_holding(test, gateway, hitl_scenes::conformance::PARK_TIMEOUT).await
    }

    async fn up_holding(test: &str, gateway: Gateway, park_timeout: Duration) -> Self {
        let config = LocalConfig {
            dir: crate::scratch_dir(test).join("lab"),
            ports: Ports::free().expect("free ports"),
            model: ModelChoice::Scripted,
            gateway,
            agents: AgentKind::ALL.to_vec(),
            topology: Default::default(),
            park_timeout: Some(park_timeout),
            reviewer_credentials: local::DEFAULT_REVIEWER_CREDENTIALS.to_owned(),
            chat_credentials: local::DEFAULT_CHAT_CREDENTIALS.to_owned(),
            chat_script: Some(scene::parse::chat_script().expect("scenarios/chat parses")),
            progress: true,
        };
        let state = match local::up(&config).await {
            Ok(state) => state,
            Err(e) => panic!("the local lab did not come up: {e:#}"),
        };
        Self { state, config }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if matches!(LabState::load(&self.config.dir), Ok(Some(_))) {
            if let Err(e) = local::down(&self.config.dir, false) {
                eprintln!("taking the test lab down: {e:#}");
            }
            return;
        }
        // The state file is gone (a test wiped the lab's directory): `down` would find
        // nothing to stop, so stop what `up` said it started.
        eprintln!(
            "the test lab's state is gone from {}; stopping its processes from memory",
            self.config.dir.display()
        );
        for process in self.state.processes.iter().rev() {
            let _ = proc::stop_pid(process.pid, &process.argv, Duration::from_secs(5));
        }
    }
}
