//! The detached processes this process started, kept so that one which dies before it is
//! ready can say how it ended (its exit code, or the signal that killed it) instead of only
//! "exited". Nothing is reaped while it runs: a pid stays ours (a zombie) until it is asked.

use std::{
    collections::HashMap,
    process::Child,
    sync::{LazyLock, Mutex},
};

static STARTED: LazyLock<Mutex<HashMap<u32, Child>>> = LazyLock::new(Default::default);

/// Keep `child`, started detached.
pub(super) fn keep(child: Child) {
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    started.insert(child.id(), child);
}

/// How process `pid` (started here, detached) ended: `None` while it runs or if it was not
/// started by this process.
pub fn how_it_ended(pid: u32) -> Option<String> {
    use std::os::unix::process::ExitStatusExt as _;
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    let status = started.get_mut(&pid)?.try_wait().ok()??;
    started.remove(&pid);
    Some(match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    })
}
