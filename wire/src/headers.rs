//! Header names that carry caller identity through the gateway to the gates and the audit logs.
//!
//! Every one of them is merely *claimed* by whoever sent the request: shown to reviewers as
//! unverified and never used to decide anything. The requester the gate trusts comes only
//! from a verified token (see [`crate::identity`]).

use std::collections::BTreeMap;

/// The end user on whose behalf the agent says it acts (caller-sent, unverified).
pub const USER_ID: &str = "x-user-id";
/// The agent making the call (kagent sets its own name where configured).
pub const AGENT_ID: &str = "x-agent-id";
/// A user name some proxies set (caller-sent unless a trusted proxy strips it; unverified).
pub const FORWARDED_USER: &str = "x-forwarded-user";
/// Partial-body marker Envoy adds when the forwarded body was cut at `max_request_bytes`.
pub const ENVOY_PARTIAL_BODY: &str = "x-envoy-auth-partial-body";

/// Headers recorded as "who says they asked" in audit logs, in display order. Anything else
/// the gateway forwards is kept in the raw header map.
pub const IDENTITY: &[&str] = &[USER_ID, AGENT_ID, FORWARDED_USER, "user-agent"];

/// The person a request *claims* to come from: the first non-blank of `x-user-id`,
/// `x-forwarded-user` (lower-case header names). Unverified: for display only.
pub fn claimed_requester(headers: &BTreeMap<String, String>) -> Option<String> {
    [USER_ID, FORWARDED_USER]
        .iter()
        .find_map(|name| {
            headers
                .get(*name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        })
        .map(str::to_owned)
}

/// A tag the conformance harness (`cargo xtask gate-check`) puts on each call it sends, so a
/// gate that decides elsewhere can be told which call to decide (`--decide-cmd … {id}`).
pub const CHECK_ID: &str = "x-hitl-check-id";
