//! `cargo xtask chat`'s view of the gate: while the chat runs, each call the gate parks for
//! the chat user (its verified requester) is announced once as "waiting for a platform
//! reviewer…", read from the gate's own list of pending calls.

use std::{collections::HashSet, time::Duration};

use hitl_lab::lab::LabState;

/// How often the gate's pending list is read.
const EVERY: Duration = Duration::from_millis(500);

/// Stops the watch when dropped.
pub struct Watch(Option<tokio::task::JoinHandle<()>>);

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Announce `user`'s calls parked from now on; nothing when the gate cannot be asked.
pub fn announce(state: &LabState, user: &str) -> Watch {
    let Ok(gate) = state.gate_admin() else {
        return Watch(None);
    };
    let user = user.to_owned();
    let review = state.urls.reviewer_ui.clone();
    Watch(Some(tokio::spawn(async move {
        let mut seen: Option<HashSet<String>> = None;
        loop {
            if let Ok(list) = gate.pending().await {
                let first = seen.is_none();
                let seen = seen.get_or_insert_with(HashSet::new);
                for call in list.pending {
                    let theirs = call.requester.as_deref() == Some(user.as_str());
                    if seen.insert(call.id.clone()) && theirs && !first {
                        println!(
                            "   … {} waiting for a platform reviewer… (they decide at {review})",
                            call.tool_name
                        );
                    }
                }
            }
            tokio::time::sleep(EVERY).await;
        }
    })))
}
