//! lab-chat's environment (the chat user's page in the local lab), so the harness that
//! launches it and lab-chat agree. Its port and bind address are the usual `HTTP_PORT` and
//! `BIND_ADDR`; its connection limits are [`crate::http`]'s.

/// The agents the chat user may pick, `name=A2A-URL` separated by commas, the default first.
pub const AGENTS_ENV: &str = "AGENTS";
/// Sign-in accounts, `user:password` separated by commas.
pub const CREDENTIALS_ENV: &str = "CHAT_CREDENTIALS";
/// The scripted model's base URL: its free-chat script is loaded before each new conversation.
pub const SCRIPTED_MODEL_URL_ENV: &str = "SCRIPTED_MODEL_URL";
/// The requester signing key (PKCS#8 file) that mints the signed-in user's token for every
/// A2A request.
pub const REQUESTER_KEY_FILE_ENV: &str = "REQUESTER_KEY_FILE";
/// Host names (optionally `host:port`) the page answers to, comma-separated; `*` for any.
pub const ALLOWED_HOSTS_ENV: &str = crate::ui::ALLOWED_HOSTS_ENV;
/// The port lab-chat serves on unless `HTTP_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8095;
