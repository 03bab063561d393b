//! lab-chat's environment (the chat user's page in the local lab), besides the connection
//! limits of [`super::http`].

pub use super::shared::{
    ALLOWED_HOSTS, BIND_ADDR, COOKIE_SECURE, HTTP_PORT, SESSION_SECRET, SESSION_SECRET_FILE,
};

/// [`HTTP_PORT`]'s default.
pub const DEFAULT_HTTP_PORT: u16 = 8095;
/// lab-chat binds to loopback unless told otherwise (it is a local-lab page).
pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1";
/// The agents the chat user may pick, `name=A2A-URL` separated by commas, the default first.
pub const AGENTS: &str = "AGENTS";
/// Sign-in accounts, `user:password` separated by commas.
pub const CHAT_CREDENTIALS: &str = "CHAT_CREDENTIALS";
/// [`CHAT_CREDENTIALS`] read from a file (`crate::secret`; not both).
pub const CHAT_CREDENTIALS_FILE: &str = "CHAT_CREDENTIALS_FILE";
/// The scripted model's base URL: its free-chat script is loaded before each new conversation.
pub const SCRIPTED_MODEL_URL: &str = "SCRIPTED_MODEL_URL";
/// The requester signing key (PKCS#8 file) that mints the signed-in user's token for every
/// A2A request.
pub const REQUESTER_KEY_FILE: &str = "REQUESTER_KEY_FILE";
/// File holding the key hitl-extauth signs its notifications with: lab-chat then receives
/// them (`POST /notify`) and shows them (`/notifications`).
pub const NOTIFY_SECRET_FILE: &str = "NOTIFY_SECRET_FILE";
