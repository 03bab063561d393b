//! `GET /live`: the browser's own event stream. First a `sync` with the whole queue, then
//! `card` / `gone` / `upstream` as they happen; a browser that falls behind gets a new `sync`.
//! The browser never talks to hitl-extauth.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::{SharedState, now, personal_html};
use crate::{live::Push, security::Identity};

/// `push` for the browser of `viewer`: each card with their own decide form.
fn to_event(state: &SharedState, viewer: Option<&Identity>, push: &Push) -> Event {
    let data = push.data(|card| personal_html(state, card, viewer));
    Event::default().event(push.name()).data(data.to_string())
}

pub async fn stream(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let viewer = state.identity.resolve(&headers, now());
    let subscription = state.live.subscribe();
    let first = Some(Arc::new(subscription.first));
    let stream = futures::stream::unfold(
        (first, subscription.changes, state, viewer),
        |(first, mut changes, state, viewer)| async move {
            if let Some(first) = first {
                // Cut off (hitl-ui restarting), the browser tries again within a second.
                let event = to_event(&state, viewer.as_ref(), &first).retry(Duration::from_secs(1));
                return Some((Ok(event), (None, changes, state, viewer)));
            }
            let push = match changes.recv().await {
                Ok(push) => push,
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "browser stream fell behind; resyncing");
                    Arc::new(state.live.sync())
                }
                Err(RecvError::Closed) => return None,
            };
            let event = to_event(&state, viewer.as_ref(), &push);
            Some((Ok(event), (None, changes, state, viewer)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
