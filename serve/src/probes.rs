//! The probes of a service that is ready as soon as it serves (nothing it needs can go away
//! after start): `/healthz` (`ok`, as the seed's), `/livez` and `/readyz`, open to any `Host`.

use axum::{Router, routing::get};
use hitl_wire::health::{HEALTHZ, LIVE_TEXT, LIVEZ, READY_TEXT, READYZ};

/// The three probes, to merge into a service's router.
pub fn serving<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(HEALTHZ, get(|| async { "ok" }))
        .route(LIVEZ, get(|| async { LIVE_TEXT }))
        .route(READYZ, get(|| async { READY_TEXT }))
}
