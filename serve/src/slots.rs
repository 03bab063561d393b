//! The connection cap: one slot per connection served. At the cap the accept loop waits for a
//! slot, so further clients wait in the listen backlog instead of taking the process's last
//! file descriptors. Reaching the cap is logged at most once a minute, with how often it was
//! reached since.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Held by a connection while it is served; dropping it frees the slot.
pub type Slot = OwnedSemaphorePermit;

/// How often reaching the cap is logged, at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Slots {
    free: Arc<Semaphore>,
    cap: usize,
    /// When reaching the cap was last logged.
    warned: Option<Instant>,
    /// Times the cap was reached since then.
    unsaid: u64,
}

impl Slots {
    pub fn new(cap: usize) -> Self {
        Self {
            free: Arc::new(Semaphore::new(cap)),
            cap,
            warned: None,
            unsaid: 0,
        }
    }

    /// A slot for the next connection, waiting while every slot is taken.
    pub async fn next(&mut self) -> Slot {
        if self.free.available_permits() == 0 {
            self.unsaid += 1;
            if self.warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                tracing::warn!(
                    max_connections = self.cap,
                    times = self.unsaid,
                    "connection cap reached; new connections wait until one closes"
                );
                self.warned = Some(Instant::now());
                self.unsaid = 0;
            }
        }
        Arc::clone(&self.free)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}
