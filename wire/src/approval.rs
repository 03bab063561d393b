//! The approval token: what hitl-extauth adds to an approved request on its way upstream, and
//! what mock-db-mcp's privileged server demands before it executes a `tools/call`.
//!
//! A token is `v1.<claims>.<signature>`: the [`Claims`] as JSON, then an Ed25519 signature
//! over `v1.<claims>`, both base64url without padding. hitl-extauth holds the signing key;
//! the backend holds only the verifying key, so it can check approvals but never mint one.
//! A token is bound to the exact bytes the reviewer saw (their sha256), the tool, the
//! requester and the reviewer; it lives at most [`MAX_TTL_SECS`] and is good for one call.
//!
//! The names, the format and the checks live here once: [`Signer`] (hitl-extauth) and
//! [`Verifier`] (mock-db-mcp) are behind the `crypto` feature.

use serde::{Deserialize, Serialize};

/// Request header carrying the token from the gate, through the gateway, to the backend.
/// Gateways remove any copy a client sends; the gate overwrites or removes it on every answer.
pub const HEADER: &str = "x-hitl-approval";
/// The token format's version prefix.
pub const VERSION: &str = "v1";
/// Longest lifetime (`exp - iat`) a verifier accepts, whatever the signer says.
pub const MAX_TTL_SECS: i64 = 60;
/// Lifetime hitl-extauth gives its tokens: the request is forwarded at once, so the token
/// only has to cover the gateway's hop to the backend.
pub const TTL_SECS: i64 = 30;
/// Clock difference tolerated between signer and verifier, both ways.
pub const CLOCK_SKEW_SECS: i64 = 5;
/// Longest token a verifier reads (a real one is a few hundred bytes).
pub const MAX_TOKEN_BYTES: usize = 4096;
/// JSON-RPC error code of a `tools/call` the backend refused for want of a valid approval.
pub const REFUSED_CODE: i64 = -32004;

/// What an approval token asserts. Unknown fields make a token malformed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The parked call's id (hitl-extauth's `/history`); single use.
    pub id: String,
    /// Hex sha256 of the request body the reviewer approved.
    pub sha256: String,
    /// The tool the approved `tools/call` names.
    pub tool: String,
    /// Who asked, as the gate knew them (unverified until requesters are).
    #[serde(default)]
    pub requester: Option<String>,
    /// Who approved, as the admin API's credential holder asserted.
    pub reviewer: String,
    /// Every approver, in order, when the rule needed more than one (`reviewer` is the last).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// The approval policy's rule the approval was given under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Issued at, Unix seconds (the signer's clock).
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

#[cfg(feature = "crypto")]
mod crypto;
#[cfg(feature = "crypto")]
pub use crypto::*;
