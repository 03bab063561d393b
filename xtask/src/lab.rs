//! `up --local`, `down`, `status`, `logs`: the lab's lifecycle, by what the state file says.

use std::{io::Write as _, time::Duration};

use hitl_lab::{
    lab::{self, LabState, Target},
    local::{self, LocalConfig},
};
use xshell::{Shell, cmd};

use crate::flags::{LogsArgs, UpArgs};

/// Build our binaries (the lab runs what is built now, not a stale copy).
pub fn build_binaries() -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(hitl_lab::bins::workspace_root());
    eprintln!("==> building the lab's binaries");
    cmd!(sh, "cargo build --quiet --workspace --bins --exclude xtask").run()?;
    Ok(())
}

pub async fn up_local(args: &UpArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.build && args.image_prefix.is_none(),
        "--build and --image-prefix are the kind lab's: the local lab always runs this \
         checkout's binaries"
    );
    let mut config = LocalConfig::from_env(
        args.model.into(),
        crate::flags::gateway_or_default(args.gateway),
    )?;
    config.agents = hitl_lab::agents::AgentSelection::from(args.agent).agents();
    config.chat_script = Some(hitl_scenes::scene::parse::chat_script()?);
    config.park_timeout = args.park_timeout.map(Duration::from_secs);
    config.topology = crate::flags::topology(args.store, args.replicas)?;
    if args.dry_run {
        println!("cargo xtask up --local would:");
        println!("  1. build the workspace's binaries (cargo build --workspace --bins)");
        println!(
            "  2. make the Python venv {} from python/requirements.lock (first run only)",
            hitl_lab::pyenv::venv_dir().display()
        );
        println!(
            "  3. generate the {} and kagent configs from manifests/",
            config.gateway
        );
        println!(
            "  4. start, on 127.0.0.1 (the gate's store: {}):",
            config.topology.describe()
        );
        for (name, var, port) in config.ports.named() {
            if name == "postgres" && config.topology.store == hitl_lab::local::StoreChoice::Sqlite {
                continue;
            }
            println!("       {name:<14} :{port:<6} ({var})");
        }
        for (name, port) in config.ports.replica_ports(config.topology.replicas) {
            println!("       {name:<14} :{port:<6}");
        }
        println!("  5. wait for every health check and print the URLs");
        return Ok(());
    }
    hitl_lab::prereqs::ensure(hitl_lab::prereqs::for_local_lab(config.topology.store))?;
    build_binaries()?;
    let state = local::up(&config).await?;
    println!(
        "{}",
        local::describe(
            &state,
            Some(&config.reviewer_credentials),
            Some(&config.chat_credentials)
        )
    );
    println!(
        "two roles, two tabs: the chat user opens the chat page, the platform reviewer the \
         reviewer UI (runbook: docs/workshop.md)"
    );
    println!("next: `cargo xtask chat`, `cargo xtask scene all`, `cargo xtask down`");
    Ok(())
}

pub fn down() -> anyhow::Result<Option<Target>> {
    let dir = lab::default_dir();
    match LabState::load(&dir)? {
        Some(state) if state.target == Target::Kind => Ok(Some(Target::Kind)),
        _ => {
            local::down(&dir, true)?;
            Ok(Some(Target::Local))
        }
    }
}

pub async fn status() -> anyhow::Result<Option<Target>> {
    let dir = lab::default_dir();
    match LabState::load(&dir)? {
        None => {
            println!("no lab is up (start one with `cargo xtask up --local`)");
            Ok(None)
        }
        Some(state) if state.target == Target::Kind => Ok(Some(Target::Kind)),
        Some(state) => {
            println!("local lab, model {}", state.model);
            print!("{}", local::status(&state).await);
            Ok(Some(Target::Local))
        }
    }
}

pub fn logs(args: &LogsArgs) -> anyhow::Result<()> {
    let state = LabState::require(&lab::default_dir())?;
    let Some(name) = &args.component else {
        println!("logs in {}:", state.log_dir.display());
        for p in &state.processes {
            println!("  {:<16} {}", p.name, p.log.display());
        }
        return Ok(());
    };
    let process = state
        .processes
        .iter()
        .find(|p| p.name == *name)
        .ok_or_else(|| {
            let names: Vec<&str> = state.processes.iter().map(|p| p.name.as_str()).collect();
            anyhow::anyhow!("no component `{name}`; the lab's are {}", names.join(", "))
        })?;
    let mut printed = 0usize;
    loop {
        let text = std::fs::read(&process.log).unwrap_or_default();
        if text.len() > printed {
            std::io::stdout().write_all(&text[printed..])?;
            printed = text.len();
        }
        if !args.follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
