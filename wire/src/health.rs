//! The probe paths every hitl-lab HTTP service serves, one definition for the services, the
//! harness and the manifests' tests.
//!
//! - [`LIVEZ`]: the process serves; always 200 while it runs (a liveness probe).
//! - [`READYZ`]: it can do its job now (a readiness probe); 503 with a one-line reason
//!   otherwise. What "its job" needs is per service (hitl-extauth: its store commits and its
//!   keys are loaded; hitl-ui: its gate's admin API answers; mock-db-mcp: its database
//!   answers).
//! - [`HEALTHZ`]: the original probe, kept as it was (a drop-in for earlier deployments).

/// `GET`: 200 `live` while the process runs.
pub const LIVEZ: &str = "/livez";
/// `GET`: 200 `ready`, or 503 `not ready: <reason>`.
pub const READYZ: &str = "/readyz";
/// `GET`: the original health probe, unchanged (200 `ok`).
pub const HEALTHZ: &str = "/healthz";

/// The body of a `/livez` answer.
pub const LIVE_TEXT: &str = "live\n";
/// The body of a successful `/readyz` answer.
pub const READY_TEXT: &str = "ready\n";

/// The body of a 503 `/readyz` answer: `not ready: <reason>` on one line.
pub fn not_ready_text(reason: &str) -> String {
    let reason = reason.replace(['\n', '\r'], " ");
    format!("not ready: {reason}\n")
}
