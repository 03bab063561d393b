//! Scenes: the declarative scripts in `scenarios/` (model, parser) and the runner that
//! replays them against a lab and checks every gate.

pub mod model;
pub mod parse;
pub mod report;
pub mod run;
pub mod transcript;

pub use model::{Expectations, ExpectedCall, HumanDecision, Scene, Tier};
pub use parse::{SceneError, load_dir, parse, select};
pub use report::SuiteReport;
pub use run::{RunOptions, SceneReport, run};

#[cfg(test)]
mod tests;
