//! hitl-ui's browser-facing names the harness drives it by: the sign-in page, the decision
//! form, the cookies. (Its environment is [`crate::env::ui`].)

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
