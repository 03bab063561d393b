//! Scenes: the declarative scripts in `scenarios/` (model, parser) and the runner that
//! replays them against a lab and checks every gate.

pub mod model;
pub mod parse;

pub use model::{ExpectedCall, Expectations, HumanDecision, Scene, Tier};
pub use parse::{SceneError, load_dir, parse, select};

#[cfg(test)]
mod tests;
