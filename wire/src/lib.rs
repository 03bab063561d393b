//! The one definition of every JSON shape that crosses a process boundary in hitl-lab.
//!
//! Services serialise these, the harness and the UI deserialise them; nobody keeps a copy.
//! Field names are a published contract: camelCase on the ext-auth admin API, snake_case on
//! mock-db-mcp's `/state` (why: `docs/decisions.md`).

pub mod action;
pub mod approval;
pub mod duration;
pub mod env;
pub mod extauth;
pub mod headers;
pub mod health;
pub mod identity;
pub mod mockdb;
pub mod model;
pub mod notify;
pub mod policy;
pub mod private;
pub mod secret;
pub mod sse;
pub mod text;
pub mod ui;
