//! The live feed behind `GET /events`: every park and every end, serialised once and fanned
//! out to however many subscribers there are (none costs nothing).

use std::sync::Arc;

use hitl_wire::extauth::Event;
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it is cut off.
const BACKLOG: usize = 256;

/// One event, ready for the wire: SSE `event:` name and `data:` JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub name: &'static str,
    pub data: String,
}

impl Frame {
    pub fn new(event: &Event) -> Self {
        Self {
            name: event.name(),
            // Serialising our own wire types can't fail (string keys, finite numbers).
            data: serde_json::to_string(event).unwrap_or_default(),
        }
    }
}

/// Publisher side of the feed.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Arc<Frame>>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
        }
    }

    /// Publish the event `make` builds; it is only built if someone is listening.
    pub fn publish(&self, make: impl FnOnce() -> Event) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(Frame::new(&make())));
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Frame>> {
        self.tx.subscribe()
    }
}
