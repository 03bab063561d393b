//! How to start each of the lab's processes: one `proc::Spec` builder per component (binary,
//! env vars, health URL), used both by the tests (attached children) and by the local lab
//! (detached, tracked in its state file). One definition of "how to run X".

pub mod agentgateway;
pub mod chat;
pub mod envoy;
pub mod extauth;
pub mod kagent;
pub mod langgraph;
pub mod mock_db;
pub mod oidc_provider;
pub mod scripted_model;
pub mod ui;
