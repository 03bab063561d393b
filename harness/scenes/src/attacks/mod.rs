//! The attack catalogue (`scenarios/attacks/`) and its replay against a gate behind a real
//! gateway: what a compromised agent or a neighbour on the network sends, and what must hold.

pub mod calls;
pub mod catalogue;
pub mod check;
pub mod decider;
pub mod keys;
pub mod mtls;
pub mod procedures;
pub mod raw;
pub mod request;
pub mod requests;
pub mod run;

pub use catalogue::{Attack, load_dir};
pub use decider::Decider;
pub use run::{AttackReport, Target, run_all};
