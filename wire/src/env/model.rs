//! scripted-model's environment, besides the connection limits of [`super::http`].

pub use super::shared::{BIND_ADDR, DEFAULT_BIND_ADDR, PORT};

/// [`PORT`]'s default.
pub const DEFAULT_PORT: u16 = 8080;
/// A script (JSON, the shape of `PUT /script`) to load at start-up.
pub const SCRIPT_FILE: &str = "SCRIPT_FILE";
