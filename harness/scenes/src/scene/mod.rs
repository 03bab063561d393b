//! Scenes: the declarative scripts in `scenarios/` (model, parser) and the runner that
//! replays them against a lab in the shape of a scene — the chat user, the reviewer, the
//! judge — and reports what it found.

pub mod chat_user;
pub mod judge;
pub mod model;
pub mod observation;
pub mod parse;
pub mod report;
pub mod reviewer;
pub mod run;
pub mod transcript;
pub mod verdict;

pub use model::{Expectations, ExpectedCall, HumanDecision, Scene, Tier, WhileHeld};
pub use parse::{SceneError, load_dir, parse, select};
pub use report::{SceneReport, SuiteReport};
pub use run::{RunOptions, run};
pub use verdict::{CallRow, Check, Decided};

#[cfg(test)]
mod tests;
