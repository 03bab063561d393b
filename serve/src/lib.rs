//! One HTTP server loop for every hitl-lab service (hitl-ui, hitl-extauth's admin API,
//! mock-db-mcp, scripted-model): an [`axum::Router`] served with the limits a service on a
//! shared network needs, which `axum::serve` does not set.
//!
//! - **Header-read timeout** ([`HTTP_HEADER_READ_TIMEOUT`](Limits::header_read_timeout)): a
//!   client has this long to send a request's headers, counted from when the connection
//!   starts waiting for them (so it also ends an HTTP/1 keep-alive connection that sits idle
//!   between requests). A client trickling headers byte by byte is cut.
//! - **Idle timeout** ([`HTTP_IDLE_TIMEOUT`](Limits::idle_timeout)): a connection on which no
//!   byte moved either way for this long is closed (HTTP/1 and HTTP/2). Event streams stay
//!   open because their keep-alive comments count.
//! - **Body-read timeout** ([`HTTP_BODY_READ_TIMEOUT`](Limits::body_read_timeout)): a request
//!   body must arrive whole this long after its headers, or reading it fails (the handler
//!   answers 400 and the connection closes). The idle timeout alone would let a client hold a
//!   connection forever by sending a byte now and then.
//! - **Body limit** ([`HTTP_MAX_BODY_BYTES`](Limits::max_body_bytes)): a request body larger
//!   than this is answered `413 Payload Too Large` before any handler acts on it. Each
//!   service passes its own default (see [`Limits::body_limit`]).
//! - **Connection cap** ([`HTTP_MAX_CONNECTIONS`](Limits::max_connections)): at most this
//!   many connections are served at once; more wait in the listen backlog until one closes,
//!   so a flood of slow clients cannot use up the process's file descriptors (which its own
//!   outgoing calls and health checks need too).
//!
//! Every setting is a flag and an environment variable, defined here once; services
//! `#[command(flatten)]` [`Limits`] into their own configuration. Handlers can extract the
//! peer address as `axum::extract::ConnectInfo<SocketAddr>`.

mod activity;
mod deadline;
pub mod hosts;
pub mod logs;
pub mod probes;
mod slots;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tower::ServiceExt as _;
use tower_http::limit::RequestBodyLimitLayer;

use crate::{activity::Activity, slots::Slots};

/// Default for [`Limits::header_read_timeout`]: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`Limits::idle_timeout`]: 60 s (event streams send a keep-alive every 15 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`Limits::body_read_timeout`]: 30 s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`Limits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The body limit a service gets unless it passes its own: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a graceful shutdown waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Connection limits, as flags and environment variables.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Limits {
    /// How long a client may take to send a request's headers (also how long an HTTP/1
    /// keep-alive connection may wait for its next request), e.g. `10s`, `500ms`.
    #[arg(
        long = "http-header-read-timeout",
        env = hitl_wire::env::http::HEADER_READ_TIMEOUT,
        default_value = "10s",
        value_parser = |s: &str| hitl_wire::duration::parse_positive(hitl_wire::env::http::HEADER_READ_TIMEOUT, s),
        value_name = "DURATION"
    )]
    pub header_read_timeout: Duration,

    /// Close a connection on which nothing was sent or received for this long, e.g. `60s`.
    #[arg(
        long = "http-idle-timeout",
        env = hitl_wire::env::http::IDLE_TIMEOUT,
        default_value = "60s",
        value_parser = |s: &str| hitl_wire::duration::parse_positive(hitl_wire::env::http::IDLE_TIMEOUT, s),
        value_name = "DURATION"
    )]
    pub idle_timeout: Duration,

    /// Largest request body accepted, in bytes; larger ones get 413. Unset: the service's own
    /// default (its README says which).
    #[arg(
        long = "http-max-body-bytes",
        env = hitl_wire::env::http::MAX_BODY_BYTES,
        value_name = "BYTES"
    )]
    pub max_body_bytes: Option<usize>,

    /// How long a request body may take to arrive whole, counted from its headers, e.g.
    /// `30s`.
    #[arg(
        long = "http-body-read-timeout",
        env = hitl_wire::env::http::BODY_READ_TIMEOUT,
        default_value = "30s",
        value_parser = |s: &str| hitl_wire::duration::parse_positive(hitl_wire::env::http::BODY_READ_TIMEOUT, s),
        value_name = "DURATION"
    )]
    pub body_read_timeout: Duration,

    /// Most connections served at once; more wait in the listen backlog until one closes.
    #[arg(
        long = "http-max-connections",
        env = hitl_wire::env::http::MAX_CONNECTIONS,
        default_value_t = DEFAULT_MAX_CONNECTIONS,
        value_parser = parse_count,
        value_name = "N"
    )]
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_body_bytes: None,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl Limits {
    /// The body limit: the configured one, else the service's `default`.
    pub fn body_limit(&self, default: usize) -> usize {
        self.max_body_bytes.unwrap_or(default)
    }
}

/// A positive whole number.
fn parse_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

/// Resolves on SIGTERM (a container stop) or Ctrl-C: every service's `shutdown` for
/// [`serve`]. Where SIGTERM cannot be listened for, Ctrl-C only, with a warning.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    tracing::warn!(%err, "cannot listen for SIGTERM; Ctrl-C only");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Serve `app` on `listener` with `limits` until `shutdown` resolves; then stop accepting,
/// let open connections finish (at most 10 s) and return. `default_body_limit` is the
/// service's body limit when [`Limits::max_body_bytes`] is unset.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    default_body_limit: usize,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let body_limit = limits.body_limit(default_body_limit);
    let app = app.layer(RequestBodyLimitLayer::new(body_limit));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.idle_timeout / 2)
        .keep_alive_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tracing::debug!(
        header_read_timeout = ?limits.header_read_timeout,
        idle_timeout = ?limits.idle_timeout,
        body_read_timeout = ?limits.body_read_timeout,
        max_connections = limits.max_connections,
        body_limit,
        "HTTP limits"
    );

    let mut slots = Slots::new(limits.max_connections);
    let body_read_timeout = limits.body_read_timeout;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free connection slot first: at the cap, new clients wait in the backlog.
        let slot = tokio::select! {
            slot = slots.next() => slot,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (stream, idle) = Activity::new(stream, limits.idle_timeout);
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(|body| deadline::Deadline::wrap(body, body_read_timeout))
            },
        ));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                result = connection => {
                    if let Err(err) = result {
                        tracing::debug!(%peer, %err, "connection ended with an error");
                    }
                }
                () = idle => tracing::debug!(%peer, "idle connection closed"),
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still open after the shutdown grace period; dropping them");
        }
    }
    Ok(())
}

/// The peer address type handlers extract with `ConnectInfo`.
pub type Peer = SocketAddr;

#[cfg(test)]
mod tests;
