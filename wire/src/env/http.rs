//! The connection limits every hitl-lab HTTP server reads (served by the `hitl-serve` crate),
//! so launchers and servers agree.

/// How long a client may take to send a request's headers (`10s`, `500ms`; default 10 s).
/// Also how long an HTTP/1 keep-alive connection may wait for its next request.
pub const HEADER_READ_TIMEOUT: &str = "HTTP_HEADER_READ_TIMEOUT";
/// Close a connection on which no byte moved for this long (`60s`; default 60 s).
pub const IDLE_TIMEOUT: &str = "HTTP_IDLE_TIMEOUT";
/// Largest request body in bytes; larger ones get 413 (default: per service).
pub const MAX_BODY_BYTES: &str = "HTTP_MAX_BODY_BYTES";
/// How long a request body may take to arrive whole, counted from its headers (`30s`;
/// default 30 s). A client trickling a body byte by byte is cut.
pub const BODY_READ_TIMEOUT: &str = "HTTP_BODY_READ_TIMEOUT";
/// Most connections served at once (default 1024); more wait in the listen backlog until
/// one closes.
pub const MAX_CONNECTIONS: &str = "HTTP_MAX_CONNECTIONS";
