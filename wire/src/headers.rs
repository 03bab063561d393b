//! Header names that carry caller identity through the gateway to the gates and the audit logs.

/// The end user on whose behalf the agent acts (set by the chat front end / gateway).
pub const USER_ID: &str = "x-user-id";
/// The agent making the call (kagent sets its own name where configured).
pub const AGENT_ID: &str = "x-agent-id";
/// Partial-body marker Envoy adds when the forwarded body was cut at `max_request_bytes`.
pub const ENVOY_PARTIAL_BODY: &str = "x-envoy-auth-partial-body";

/// Headers recorded as "who asked" in audit logs, in display order. Anything else the
/// gateway forwards is kept in the raw header map, but only these identify a caller.
pub const IDENTITY: &[&str] = &[USER_ID, AGENT_ID, "x-forwarded-user", "user-agent"];
