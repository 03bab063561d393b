//! The main job: make sure a lab is up, replay every scene on fresh state with a live
//! transcript, write the reports, and take down what it started.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context as _;

use crate::scene::{self, RunOptions, Scene, SuiteReport, reviewer::RestartGate};

mod exposure;
use hitl_lab::{
    agents::AgentKind,
    bins::target_dir,
    gateway::Gateway,
    lab::{LabState, Target},
    local::{self, LocalConfig},
};
use hitl_manifests::ModelChoice;

/// How to run the suite.
#[derive(Clone)]
pub struct Options {
    pub target: Target,
    pub model: ModelChoice,
    /// The agents every scene runs against (`--agent`; both by default).
    pub agents: Vec<AgentKind>,
    /// Leave a lab this run started running.
    pub keep_up: bool,
    /// Where the reports go (`target/conformance`).
    pub out_dir: PathBuf,
    /// The local lab to bring up when none is.
    pub local: LocalConfig,
    /// Where the live transcript and the attack lines go as they happen (xtask prints them).
    pub progress: Progress,
    /// How a kind lab kills and brings back its gate (scene 8; xtask gives hitl-kind's). The
    /// local lab's is [`local_restart_gate`].
    pub kind_restart_gate: Option<RestartGate>,
}

/// How long conformance's own local lab holds a call (`PARK_TIMEOUT_SEC`; the manifests say
/// 600 s): scene 7's reviewer waits for the hold to run out, and scenes 3 and 4, whose
/// reviewer decides as the card appears, have this long to do it.
pub const PARK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The local lab in `dir` kills its gate (`kill -9`) and starts it again on the same store.
pub fn local_restart_gate(dir: PathBuf) -> RestartGate {
    Arc::new(move || {
        let dir = dir.clone();
        Box::pin(async move {
            hitl_lab::local::restart_holding_gate(&dir)
                .await
                .map(|_| ())
        })
    })
}

/// How `lab` restarts its gate: the local lab in `dir` by itself, a kind lab with `kind`.
pub fn restart_gate(
    lab: &LabState,
    dir: &std::path::Path,
    kind: Option<RestartGate>,
) -> Option<RestartGate> {
    match lab.target {
        Target::Local => Some(local_restart_gate(dir.to_path_buf())),
        Target::Kind => kind,
    }
}

/// A sink for live progress lines.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("target", &self.target)
            .field("model", &self.model)
            .field("agents", &self.agents)
            .field("keep_up", &self.keep_up)
            .field("out_dir", &self.out_dir)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Options {
    pub fn new(target: Target, model: ModelChoice, gateway: Gateway) -> anyhow::Result<Self> {
        Ok(Self {
            target,
            model,
            agents: AgentKind::ALL.to_vec(),
            keep_up: false,
            out_dir: target_dir().join("conformance"),
            local: LocalConfig {
                chat_script: Some(scene::parse::chat_script()?),
                park_timeout: Some(PARK_TIMEOUT),
                ..LocalConfig::from_env(model, gateway)?
            },
            progress: Arc::new(|line| tracing::info!("{line}")),
            kind_restart_gate: None,
        })
    }
}

/// Run every scene; the report says what passed. An error means the suite could not run.
pub async fn run(options: &Options) -> anyhow::Result<SuiteReport> {
    let scenes = scene::load_dir(&scene::parse::default_dir())?;
    let dir = &options.local.dir;
    let (lab, started) = match (options.target, LabState::load(dir)?) {
        (Target::Local, Some(state)) if state.target == Target::Local => {
            if state.model != options.model {
                anyhow::bail!(
                    "the local lab is up with --model {}; take it down (`cargo xtask down`) or \
                     run with --model {}",
                    state.model,
                    state.model
                );
            }
            let running = state.gateway.unwrap_or(Gateway::Envoy);
            if running != options.local.gateway {
                anyhow::bail!(
                    "the local lab is up with --gateway {running}; take it down (`cargo xtask \
                     down`) or run with --gateway {running}",
                );
            }
            if state.topology() != options.local.topology {
                anyhow::bail!(
                    "the local lab is up with its gate on {}; take it down (`cargo xtask down`) \
                     or run with the same --store and --replicas",
                    state.topology().describe()
                );
            }
            // Reuse it if it is healthy (with the hold it has: scene 7 then waits that long);
            // `up` mends it if not.
            let reuse = LocalConfig {
                park_timeout: None,
                ..options.local.clone()
            };
            let state = local::up(&reuse).await?;
            (state, false)
        }
        (Target::Local, None) => (local::up(&options.local).await?, true),
        (Target::Kind, Some(state)) if state.target == Target::Kind => (state, false),
        (want, Some(state)) => anyhow::bail!(
            "a {} lab is up, but --target {} was asked for; `cargo xtask down` first",
            state.target.as_str(),
            want.as_str()
        ),
        (Target::Kind, None) => anyhow::bail!(
            "no kind lab is up: bring it up with `cargo xtask up --model {}` first",
            options.model.as_str()
        ),
    };
    let attacks = crate::attacks::load_dir(&crate::attacks::catalogue::default_dir())?;
    let mut result = replay(
        &lab,
        &scenes.iter().collect::<Vec<_>>(),
        options.model,
        &options.agents,
        &options.progress,
        restart_gate(&lab, dir, options.kind_restart_gate.clone()),
    )
    .await;
    if let Ok(report) = &mut result {
        match replay_attacks(&lab, &options.local, &attacks, &*options.progress).await {
            Ok(rows) => report.attacks = rows,
            Err(e) => result = Err(e),
        }
    }
    if started && !options.keep_up {
        local::down(dir, true)?;
    }
    let report = result?;
    let written = report.write(&options.out_dir)?;
    for path in written {
        eprintln!("report: {}", path.display());
    }
    Ok(report)
}

/// The lab's gate as an attack target: its gateway, mock-db-mcp, hitl-extauth's admin API
/// and Check port, the reviewer UI signed in with the lab's first reviewer account.
pub async fn lab_target(
    lab: &LabState,
    local: &LocalConfig,
) -> anyhow::Result<crate::attacks::Target> {
    use crate::attacks::{Decider, Target};
    let issuer = lab.requester_issuer()?.ok_or_else(|| {
        anyhow::anyhow!("the lab has no requester key: its gateway trusts another issuer")
    })?;
    let ui = match reviewer_account(lab, local)? {
        Some((user, password)) => Some((
            hitl_lab::clients::ReviewerUi::sign_in(&lab.urls.reviewer_ui, &user, &password).await?,
            user,
        )),
        None => None,
    };
    Ok(Target {
        gateway: endpoint_of(&lab.urls.gateway)?,
        backend: endpoint_of(&lab.urls.mock_db)?,
        db: lab.db(),
        issuer,
        requester: "alice".into(),
        admin: Some(lab.gate_admin()?),
        admin_url: Some(lab.urls.extauth_admin.clone()),
        decider: Decider::Admin(lab.gate_admin()?),
        ui,
        ext_authz: (lab.target == hitl_lab::lab::Target::Local)
            .then(|| hitl_lab::envoy::Endpoint::loopback(local.ports.extauth_grpc)),
        // The local lab's gateway certificate, if its gate demands one (written at `up`).
        ext_authz_tls: {
            let files = hitl_lab::gate_tls::GateTlsFiles::in_dir(&local.dir.join("credentials"));
            (lab.target == hitl_lab::lab::Target::Local && files.client_key.is_file())
                .then(|| (&files).into())
        },
        backend_verifies: true,
        ours: true,
        park_window: std::time::Duration::from_secs(3),
    })
}

/// The reviewer the attacks sign in to hitl-ui as (`user`, `password`): the one the lab state
/// records (kind: read from the cluster's Secret by `up`, its password random); for a local
/// lab from before that was recorded, the first of `local`'s accounts.
pub fn reviewer_account(
    lab: &LabState,
    local: &LocalConfig,
) -> anyhow::Result<Option<(String, String)>> {
    let login = match (&lab.reviewer_login, lab.target) {
        (Some(login), _) => login.as_str(),
        (None, hitl_lab::lab::Target::Local) => {
            local.reviewer_credentials.split(',').next().unwrap_or("")
        }
        (None, hitl_lab::lab::Target::Kind) => anyhow::bail!(
            "the kind lab's state records no reviewer sign-in (its hitl-ui password is random): \
             run `cargo xtask up` again to record it"
        ),
    };
    Ok(login
        .split_once(':')
        .map(|(user, password)| (user.to_owned(), password.to_owned())))
}

/// `http://host:port[/…]` → host and port.
pub fn endpoint_of(url: &str) -> anyhow::Result<hitl_lab::envoy::Endpoint> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("not an http:// URL: {url}"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("no port in {url}"))?;
    Ok(hitl_lab::envoy::Endpoint::new(host, port.parse()?))
}

/// Replay the attack catalogue against the lab's gate, one `progress` line per attack.
pub async fn replay_attacks(
    lab: &LabState,
    local: &LocalConfig,
    attacks: &[crate::attacks::Attack],
    progress: &dyn Fn(&str),
) -> anyhow::Result<Vec<crate::attacks::AttackReport>> {
    let target = lab_target(lab, local).await?;
    // The scenes leave the database where the last one put it (scene 9: v1, under the
    // two-key rule); the attacks start from the seed data, as each scene does.
    target
        .db
        .reset()
        .await
        .context("restoring mock-db-mcp's seed data before the attack catalogue")?;
    progress(&format!(
        "\n━━ attack catalogue: {} attacks through the lab's gateway ━━",
        attacks.len()
    ));
    let mut rows = crate::attacks::run_all(&target, attacks, progress).await;
    if lab.target == Target::Local {
        for row in [
            exposure::listeners_on_loopback(lab).await,
            exposure::secrets_owner_only(lab).await,
        ] {
            progress(&row.live_line("", 41));
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Replay `scenes` against `lab`, each transcript line to `progress` as it happens.
pub async fn replay(
    lab: &LabState,
    scenes: &[&Scene],
    model: ModelChoice,
    agents: &[AgentKind],
    progress: &Progress,
    restart_gate: Option<RestartGate>,
) -> anyhow::Result<SuiteReport> {
    for agent in agents {
        lab.agent_url(*agent)?;
    }
    let mut reports = Vec::new();
    for agent in agents {
        let options = RunOptions {
            agent: *agent,
            model,
            live: Some({
                let progress = progress.clone();
                Arc::new(move |line| progress(&line.to_string()))
            }),
            restart_gate: restart_gate.clone(),
            ..RunOptions::default()
        };
        for scene in scenes {
            progress(&format!(
                "\n━━ scene {} on the {agent} agent: {} ━━",
                scene.id, scene.name
            ));
            progress(&format!("   {}", scene.summary));
            let report = scene::run(lab, scene, &options).await;
            progress(&format!(
                "━━ scene {} on the {agent} agent {} ({} checks, {:.1} s)",
                scene.id,
                if report.passed { "passed" } else { "FAILED" },
                report.checks.len(),
                report.duration_ms as f64 / 1000.0
            ));
            reports.push(report);
        }
    }
    Ok(SuiteReport {
        attacks: Vec::new(),
        target: lab.target.as_str().to_owned(),
        model: lab.model.as_str().to_owned(),
        gateway: lab
            .gateway
            .map_or_else(|| "envoy".to_owned(), |g| g.to_string()),
        gate: (lab.target == Target::Local).then(|| lab.topology().describe()),
        scenes: reports,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use hitl_lab::local::Ports;

    use super::*;

    fn state(target: Target, reviewer_login: Option<&str>) -> LabState {
        LabState {
            target,
            model: ModelChoice::Scripted,
            gateway: Some(Gateway::Agentgateway),
            urls: local::urls(&Ports::from_env().expect("ports"), ModelChoice::Scripted),
            processes: Vec::new(),
            log_dir: PathBuf::from("logs"),
            admin_token: Some("token".into()),
            reset_token: None,
            reviewer_login: reviewer_login.map(str::to_owned),
            requester_key: None,
            agents: AgentKind::ALL.to_vec(),
            park_timeout_sec: None,
            store: None,
        }
    }

    fn local_config() -> LocalConfig {
        LocalConfig {
            reviewer_credentials: "reviewer:reviewer".into(),
            ..LocalConfig::from_env(ModelChoice::Scripted, Gateway::Envoy).expect("defaults")
        }
    }

    #[test]
    fn on_kind_the_attacks_sign_in_with_the_clusters_reviewer_not_the_local_default() {
        let lab = state(Target::Kind, Some("reviewer:Zq8-random"));
        assert_eq!(
            reviewer_account(&lab, &local_config()).unwrap(),
            Some(("reviewer".into(), "Zq8-random".into()))
        );
        let unrecorded = state(Target::Kind, None);
        let error = reviewer_account(&unrecorded, &local_config()).unwrap_err();
        assert!(error.to_string().contains("cargo xtask up"), "{error}");
    }

    #[test]
    fn on_the_local_lab_the_recorded_reviewer_comes_first_then_the_configured_one() {
        let lab = state(Target::Local, Some("carol:pw"));
        assert_eq!(
            reviewer_account(&lab, &local_config()).unwrap(),
            Some(("carol".into(), "pw".into()))
        );
        let older = state(Target::Local, None);
        assert_eq!(
            reviewer_account(&older, &local_config()).unwrap(),
            Some(("reviewer".into(), "reviewer".into()))
        );
    }
}
