//! hitl-ui's environment variables besides the seed's (`HTTP_PORT`, `HITL_EXTAUTH_ADMIN_URL`,
//! …), so launchers and the UI agree.

/// Host names (optionally `host:port`) the UI answers to, comma-separated; `*` for any.
pub const ALLOWED_HOSTS_ENV: &str = "ALLOWED_HOSTS";
