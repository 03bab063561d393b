//! hitl-ui's environment variables besides the seed's (`HTTP_PORT`, `HITL_EXTAUTH_ADMIN_URL`,
//! …), so launchers and the UI agree.

/// Host names (optionally `host:port`) the UI answers to, comma-separated; `*` for any.
pub const ALLOWED_HOSTS_ENV: &str = "ALLOWED_HOSTS";

/// The reviewer sign-in page and form (`GET`/`POST`).
pub const SIGNIN_PATH: &str = "/signin";
/// `POST /calls/{id}/decide`: a signed-in reviewer's decision (form: `decision`, `reason`,
/// `csrf`).
pub fn decide_path(id: &str) -> String {
    format!("/calls/{id}/decide")
}
/// The session cookie a sign-in sets.
pub const SESSION_COOKIE: &str = "hitl_session";
/// The per-browser CSRF cookie; pages embed its token in `<meta name="csrf-token">`.
pub const CSRF_COOKIE: &str = "hitl_csrf";
