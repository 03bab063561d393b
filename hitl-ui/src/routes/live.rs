//! `GET /live`: the browser's own event stream. First a `sync` with the whole queue, then
//! `card` / `gone` / `upstream` as they happen; a browser that falls behind gets a new `sync`.
//! The browser never talks to hitl-extauth.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::SharedState;
use crate::live::Push;

fn to_event(push: &Push) -> Event {
    let data = serde_json::to_string(push).unwrap_or_else(|_| "{}".into());
    Event::default().event(push.name()).data(data)
}

pub async fn stream(
    State(state): State<SharedState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let subscription = state.live.subscribe();
    let first = Some(Arc::new(subscription.first));
    let stream = futures::stream::unfold(
        (first, subscription.changes, state),
        |(first, mut changes, state)| async move {
            if let Some(first) = first {
                return Some((Ok(to_event(&first)), (None, changes, state)));
            }
            let push = match changes.recv().await {
                Ok(push) => push,
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "browser stream fell behind; resyncing");
                    Arc::new(state.live.sync())
                }
                Err(RecvError::Closed) => return None,
            };
            Some((Ok(to_event(&push)), (None, changes, state)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
