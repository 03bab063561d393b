//! `down` for the local lab: stop exactly the processes it recorded (by pid and argv), in
//! reverse order, and forget it.

use std::{path::Path, time::Duration};

use crate::{
    lab::{LabState, Target},
    proc,
};

/// Stop every process the local lab in `dir` started (by pid, only if it still runs the
/// argv we recorded), and forget the lab. Nothing recorded: nothing to do.
pub fn down(dir: &Path, progress: bool) -> anyhow::Result<()> {
    let Some(state) = LabState::load(dir)? else {
        if progress {
            eprintln!("==> no local lab is up");
        }
        return Ok(());
    };
    anyhow::ensure!(
        state.target == Target::Local,
        "the lab in {} is a kind lab",
        dir.display()
    );
    let mut errors = Vec::new();
    for process in state.processes.iter().rev() {
        match proc::stop_pid(process.pid, &process.argv, Duration::from_secs(5)) {
            Ok(proc::Stopped::Stopped) if progress => {
                eprintln!("  stopped {} (pid {})", process.name, process.pid)
            }
            Ok(_) => {}
            Err(e) => errors.push(format!("{}: {e:#}", process.name)),
        }
    }
    LabState::remove(dir)?;
    if progress {
        eprintln!("==> the local lab is down");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("some processes did not stop:\n{}", errors.join("\n"))
    }
}
