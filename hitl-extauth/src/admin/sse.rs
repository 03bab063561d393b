//! `GET /events`: the live feed as server-sent events.
//!
//! On connect the stream first replays one `parked` event per call pending right now, so a
//! late subscriber starts complete, then follows live. Events are delivered at least once
//! (a call parked while the subscriber connects may be announced twice): key them by id. A
//! subscriber that falls more than the backlog behind is cut off; reconnecting (which
//! `EventSource` does on its own) starts again from a fresh snapshot.

use std::{convert::Infallible, sync::Arc};

use axum::{
    extract::State,
    response::sse::{self, KeepAlive, Sse},
};
use futures::{Stream, stream};
use hitl_wire::extauth::{Event, PENDING_LISTED};
use tokio_stream::{StreamExt as _, wrappers::BroadcastStream};

use crate::{events::Frame, gate::Gate};

fn sse_event(frame: &Frame) -> sse::Event {
    sse::Event::default().event(frame.name).data(&frame.data)
}

pub async fn events(
    State(gate): State<Arc<Gate>>,
) -> Sse<impl Stream<Item = Result<sse::Event, Infallible>>> {
    // Subscribe before the snapshot, so nothing falls between the two.
    let live = BroadcastStream::new(gate.events().subscribe())
        .map_while(|frame| frame.ok().map(|frame| Ok(sse_event(&frame))));
    let snapshot: Vec<Result<sse::Event, Infallible>> = gate
        .pending_listed(PENDING_LISTED)
        .await
        .calls
        .iter()
        .map(|call| {
            Ok(sse_event(&Frame::new(&Event::Parked {
                call: call.preview().into_owned(),
            })))
        })
        .collect();
    Sse::new(stream::iter(snapshot).chain(live)).keep_alive(KeepAlive::default())
}
