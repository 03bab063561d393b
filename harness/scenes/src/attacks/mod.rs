//! The attack catalogue (`scenarios/attacks/`) and its replay against a gate behind a real
//! gateway: what a compromised agent or a neighbour on the network sends, and what must hold.

pub mod catalogue;
pub mod check;
pub mod run;

pub use catalogue::{Attack, load_dir};
pub use run::{AttackReport, Decider, Target, run_all};
