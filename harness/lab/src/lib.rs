//! hitl-lab: the lab as processes — where our binaries are, how to start and stop each
//! component, the gateways (Envoy, agentgateway) and their plans, the requester's tokens,
//! the recorded lab (`target/lab/state.json`) and the local lab that starts it all.
//! Shared by xtask, the tests, the scenes and the bench. It never talks to a cluster: the
//! kind lab is `hitl-kind`.

pub mod agentgateway;
pub mod agents;
pub mod bins;
pub mod clients;
pub mod components;
pub mod credentials;
pub mod envoy;
pub mod gate_tls;
pub mod gateway;
pub mod lab;
pub mod local;
pub mod net;
pub mod npm_tools;
pub mod oidc_provider;
pub mod on_disk;
pub mod op_browser;
pub mod postgres;
pub mod prereqs;
pub mod proc;
pub mod pyenv;
pub mod requester;
pub mod sockets;
pub mod stack;
pub mod versions;
