//! hitl-harness: everything xtask and the tests share about the lab — where our binaries
//! are, how to run and stop processes, and (as the lab grows) the topology, the scene model,
//! the A2A client and the assertions.

pub mod a2a;
pub mod agentgateway;
pub mod agents;
pub mod attacks;
pub mod bench;
pub mod bins;
pub mod clients;
pub mod components;
pub mod conformance;
pub mod credentials;
pub mod envoy;
pub mod gate_check;
pub mod gateway;
pub mod kind;
pub mod lab;
pub mod local;
pub mod manifests;
pub mod net;
pub mod prereqs;
pub mod proc;
pub mod pyenv;
pub mod requester;
pub mod scene;
