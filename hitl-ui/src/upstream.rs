//! Following the gate: subscribe to hitl-extauth's `/events`, load `/pending` once the stream
//! is open (so nothing parks unseen in between), then apply each event to the live queue.
//! When the stream drops, reconnect with capped exponential backoff.

use std::{sync::Arc, time::Duration};

use futures::StreamExt as _;
use hitl_wire::{
    extauth::{Event, ParkedCall, client::AdminClient},
    mockdb::tools,
};
use time::OffsetDateTime;

use crate::{
    live::{Card, Live},
    render::card,
    schema::{SchemaProbe, SchemaVersion},
};

/// Renders a card from a parked call (the schema version is read here, live).
#[derive(Debug, Clone)]
pub struct CardMaker {
    pub schema: Arc<SchemaProbe>,
}

impl CardMaker {
    pub async fn make(&self, call: ParkedCall) -> Card {
        let schema = self.version_for(std::slice::from_ref(&call)).await;
        Self::with_version(call, &schema)
    }

    pub async fn make_all(&self, calls: Vec<ParkedCall>) -> Vec<Card> {
        let schema = self.version_for(&calls).await;
        calls
            .into_iter()
            .map(|call| Self::with_version(call, &schema))
            .collect()
    }

    /// Only migrations need the database's version; don't ask for anything else.
    async fn version_for(&self, calls: &[ParkedCall]) -> SchemaVersion {
        if calls.iter().any(|c| c.tool_name == tools::RUN_MIGRATION) {
            self.schema.current().await
        } else {
            SchemaVersion::NotConfigured
        }
    }

    fn with_version(call: ParkedCall, schema: &SchemaVersion) -> Card {
        let html = card::card(&call, schema, OffsetDateTime::now_utc()).into_string();
        Card { call, html }
    }
}

/// Capped exponential backoff: 100 ms, 200 ms, … 5 s.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Self { next: Self::FIRST }
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    fn step(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        now
    }
}

/// Follow the gate forever.
pub async fn follow(admin: AdminClient, live: Arc<Live>, cards: CardMaker) {
    let mut backoff = Backoff::new();
    loop {
        match session(&admin, &live, &cards, &mut backoff).await {
            Ok(()) => tracing::warn!("hitl-extauth closed the event stream; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "lost hitl-extauth"),
        }
        live.set_connected(false);
        tokio::time::sleep(backoff.step()).await;
    }
}

/// One connection: open `/events`, sync from `/pending`, apply events until the stream ends.
async fn session(
    admin: &AdminClient,
    live: &Live,
    cards: &CardMaker,
    backoff: &mut Backoff,
) -> Result<(), hitl_wire::extauth::client::AdminError> {
    let events = admin.events().await?;
    let pending = admin.pending().await?;
    live.replace_all(cards.make_all(pending.pending).await);
    tracing::info!(
        pending = live.len(),
        url = admin.base_url(),
        "following hitl-extauth"
    );
    backoff.reset();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event? {
            Event::Parked { call } => {
                tracing::info!(id = %call.id, tool = %call.tool_name, "parked");
                live.insert(cards.make(call).await);
            }
            Event::Decided { record } | Event::Expired { record } | Event::Abandoned { record } => {
                tracing::info!(id = %record.call.id, outcome = record.outcome.as_str(), "ended");
                live.remove(&record);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::new();
        let steps: Vec<_> = (0..8).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.step(), Duration::from_millis(100));
    }
}
