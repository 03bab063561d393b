//! hitl-scenes: what the lab is checked with — the scene model, its parser, runner and
//! reports, the A2A client the chat user speaks with, the attack catalogue and its runner,
//! the conformance suite and the gate check. It drives a lab hitl-lab (or hitl-kind) has
//! started; it starts none of its own beyond what `conformance` asks hitl-lab for.

pub mod a2a;
pub mod attacks;
pub mod conformance;
pub mod gate_check;
pub mod scene;
