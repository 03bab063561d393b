//! Following the gate: subscribe to hitl-extauth's `/events`, load `/pending` once the stream
//! is open (so nothing parks unseen in between), then apply each event to the live queue, in
//! order. Events already waiting are taken together and share one read of the schema version
//! (taken after they arrived), so a flood of parks costs one read per batch, not per park, and
//! the queue keeps up with the gate. When the stream drops, reconnect with capped exponential
//! backoff.

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
        let schema = self.version_for([&call]).await;
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
    async fn version_for<'a>(
        &self,
        calls: impl IntoIterator<Item = &'a ParkedCall>,
    ) -> SchemaVersion {
        if calls
            .into_iter()
            .any(|c| c.tool_name == tools::RUN_MIGRATION)
        {
            self.schema.current().await
        } else {
            SchemaVersion::NotConfigured
        }
    }

    fn with_version(call: ParkedCall, schema: &SchemaVersion) -> Card {
        let html = card::shared(&call, schema, OffsetDateTime::now_utc()).into_string();
        Card { call, html }
    }
}

/// Most events taken together (one schema read each batch).
const MAX_BATCH: usize = 256;

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
    read_policy(admin, live).await;
    let mut listed = sync(admin, live, cards).await?;
    tracing::info!(
        pending = live.len(),
        more = live.more(),
        url = admin.base_url(),
        "following hitl-extauth"
    );
    backoff.reset();
    let events = events.ready_chunks(MAX_BATCH);
    futures::pin_mut!(events);
    let mut relist = tokio::time::interval_at(tokio::time::Instant::now() + RELIST, RELIST);
    relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let batch = tokio::select! {
            batch = events.next() => match batch {
                Some(batch) => batch,
                None => break,
            },
            _ = relist.tick(), if live.more() => {
                listed = sync(admin, live, cards).await?;
                continue;
            }
        };
        // The events before a broken one still count.
        let mut broken = None;
        let batch: Vec<Event> = batch
            .into_iter()
            .map_while(|event| event.map_err(|e| broken = Some(e)).ok())
            .collect();
        let schema = cards
            .version_for(batch.iter().filter_map(|event| match event {
                Event::Parked { call } => Some(call),
                _ => None,
            }))
            .await;
        for event in batch {
            apply(live, event, &schema);
        }
        if let Some(e) = broken {
            return Err(e);
        }
        // The gate listed only its oldest calls (and newer parks are not shown meanwhile):
        // once reviewers have taken half of them off the queue, list again so the ones
        // behind them show up.
        if live.more() && live.len() <= listed / 2 {
            listed = sync(admin, live, cards).await?;
        }
    }
    Ok(())
}

/// Replace the queue with the gate's listing (`/pending`): how many calls it listed.
async fn sync(
    admin: &AdminClient,
    live: &Live,
    cards: &CardMaker,
) -> Result<usize, hitl_wire::extauth::client::AdminError> {
    let pending = admin.pending().await?;
    let listed = pending.pending.len();
    live.replace_all(cards.make_all(pending.pending).await, pending.more);
    Ok(listed)
}

/// The gate's approval policy, for static reviewers' groups: read at each (re)connection. A
/// gate that serves none (404: before policies, or none configured) leaves them unknown.
async fn read_policy(admin: &AdminClient, live: &Live) {
    match admin.policy().await {
        Ok(policy) => live.set_policy(Some(policy)),
        Err(hitl_wire::extauth::client::AdminError::NotFound(_)) => live.set_policy(None),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the gate's approval policy");
            live.set_policy(None);
        }
    }
}

/// How often a queue longer than its listing is listed again even if nothing was decided
/// (calls behind the listed ones may have become the oldest: others expired or were withdrawn).
const RELIST: Duration = Duration::from_secs(30);

/// One event on the live queue; `schema` was read after it arrived.
fn apply(live: &Live, event: Event, schema: &SchemaVersion) {
    match event {
        Event::Parked { call } if live.more() && !live.contains(&call.id) => {
            // Behind the oldest calls the gate listed: shown when a listing reaches it.
            tracing::debug!(id = %call.id, "parked behind the listed calls");
        }
        Event::Parked { call } => {
            tracing::info!(id = %call.id, tool = %call.tool_name, "parked");
            live.insert(CardMaker::with_version(call, schema));
        }
        Event::Decided { record } | Event::Expired { record } | Event::Abandoned { record } => {
            tracing::info!(id = %record.call.id, outcome = record.outcome.as_str(), "ended");
            live.remove(&record);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::{Json, Router, routing::get};
    use hitl_wire::{
        extauth::{DecidedCall, PendingList, paths},
        mockdb::{self, AuditPart, State, StateQuery},
    };

    use super::*;

    /// Serve `app` on a free loopback port; its base URL.
    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn a_burst_of_parks_is_shown_whole_at_the_cost_of_one_schema_read_per_batch() {
        const BURST: usize = 200;
        // The gate: nothing pending, then BURST migrations parked at once, then the end.
        let stream: String = (0..BURST)
            .map(|i| {
                let mut call = crate::test_support::call_from(Some("alice"), &[]);
                call.id = format!("c{i}");
                let event = Event::Parked { call };
                format!(
                    "event: parked\ndata: {}\n\n",
                    serde_json::to_string(&event).unwrap()
                )
            })
            .collect();
        let gate = serve(
            Router::new()
                .route(
                    paths::PENDING,
                    get(|| async {
                        Json(PendingList {
                            pending: vec![],
                            more: false,
                        })
                    }),
                )
                .route(
                    paths::EVENTS,
                    get(move || async move {
                        ([("content-type", hitl_wire::sse::CONTENT_TYPE)], stream)
                    }),
                ),
        )
        .await;
        // The database, counting how often its state is read.
        let reads = Arc::new(AtomicUsize::new(0));
        let db = serve(Router::new().route(
            mockdb::paths::STATE,
            get({
                let reads = Arc::clone(&reads);
                move |axum::extract::Query(query): axum::extract::Query<StateQuery>| async move {
                    assert_eq!(
                        query.audit,
                        AuditPart::None,
                        "only the version is asked for"
                    );
                    reads.fetch_add(1, Ordering::SeqCst);
                    Json(State {
                        schema_version: "v2".into(),
                        row_counts: Default::default(),
                        audit: vec![],
                    })
                }
            }),
        ))
        .await;
        let admin = AdminClient::new(&gate, None).unwrap();
        let cards = CardMaker {
            schema: Arc::new(
                SchemaProbe::new(Some(format!("{db}{}", mockdb::paths::STATE))).unwrap(),
            ),
        };
        let live = Live::new();
        session(&admin, &live, &cards, &mut Backoff::new())
            .await
            .unwrap();

        assert_eq!(live.len(), BURST, "every parked call is on the queue");
        let (shown, _) = live.snapshot();
        assert!(
            shown[0].html.contains("v2"),
            "the card says the live version"
        );
        let reads = reads.load(Ordering::SeqCst);
        assert!(reads < BURST / 10, "{reads} schema reads for {BURST} parks");
    }

    /// A gate that lists only its oldest calls is listed again once reviewers have taken
    /// half of them off the queue: the calls behind them show up (and a newer park is not
    /// shown ahead of them).
    #[tokio::test]
    async fn a_queue_longer_than_the_listing_is_listed_again_as_it_drains() {
        let call = |i: usize| {
            let mut call = crate::test_support::call_from(Some("alice"), &[]);
            call.id = format!("c{i}");
            call
        };
        let listings = Arc::new(AtomicUsize::new(0));
        let pending = {
            let listings = Arc::clone(&listings);
            move || async move {
                // First the oldest four of five; then, two decided, the three left.
                Json(match listings.fetch_add(1, Ordering::SeqCst) {
                    0 => PendingList {
                        pending: (0..4).map(call).collect(),
                        more: true,
                    },
                    _ => PendingList {
                        pending: (2..5).map(call).collect(),
                        more: false,
                    },
                })
            }
        };
        // A newer call parks (behind the listed ones: not shown), then two listed are decided.
        let newer = format!(
            "event: parked\ndata: {}\n\n",
            serde_json::to_string(&Event::Parked { call: call(9) }).unwrap()
        );
        let stream: String = std::iter::once(newer)
            .chain((0..2).map(|i| {
                let record = DecidedCall {
                    call: call(i),
                    outcome: hitl_wire::extauth::Outcome::Approved,
                    reviewer: Some("bob".into()),
                    reason: String::new(),
                    decided_at: time::OffsetDateTime::now_utc(),
                    waited_ms: 1,
                    count: 1,
                };
                let event = serde_json::to_string(&Event::Decided { record }).unwrap();
                format!("event: decided\ndata: {event}\n\n")
            }))
            .collect();
        let gate = serve(Router::new().route(paths::PENDING, get(pending)).route(
            paths::EVENTS,
            get(move || async move { ([("content-type", hitl_wire::sse::CONTENT_TYPE)], stream) }),
        ))
        .await;
        let admin = AdminClient::new(&gate, None).unwrap();
        let cards = CardMaker {
            schema: Arc::new(SchemaProbe::new(None).unwrap()),
        };
        let live = Live::new();
        session(&admin, &live, &cards, &mut Backoff::new())
            .await
            .unwrap();
        assert_eq!(listings.load(Ordering::SeqCst), 2, "listed again");
        let (shown, _) = live.snapshot();
        let ids: Vec<_> = shown.iter().map(|c| c.call.id.as_str()).collect();
        assert_eq!(ids, ["c2", "c3", "c4"]);
        assert!(!live.more());
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::new();
        let steps: Vec<_> = (0..8).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.step(), Duration::from_millis(100));
    }
}
