//! scripted-model: a deterministic OpenAI-compatible model that answers from scene scripts.

pub mod openai;
pub mod script;
mod server;

pub use server::router;
