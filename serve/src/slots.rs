//! The connection cap: one slot per connection served. At the cap the accept loop waits for a
//! slot, so further clients wait in the listen backlog instead of taking the process's last
//! file descriptors; the first wait of each such episode is logged.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Held by a connection while it is served; dropping it frees the slot.
pub type Slot = OwnedSemaphorePermit;

#[derive(Debug)]
pub struct Slots {
    free: Arc<Semaphore>,
    cap: usize,
    /// The cap was reached and not yet left: the warning has been given.
    saturated: bool,
}

impl Slots {
    pub fn new(cap: usize) -> Self {
        Self {
            free: Arc::new(Semaphore::new(cap)),
            cap,
            saturated: false,
        }
    }

    /// A slot for the next connection, waiting while every slot is taken.
    pub async fn next(&mut self) -> Slot {
        if self.free.available_permits() == 0 && !std::mem::replace(&mut self.saturated, true) {
            tracing::warn!(
                max_connections = self.cap,
                "connection cap reached; new connections wait until one closes"
            );
        }
        let slot = Arc::clone(&self.free)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        if self.free.available_permits() > 0 {
            self.saturated = false;
        }
        slot
    }
}
