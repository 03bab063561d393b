//! The action a reviewer decides on: who asked (the verified requester), on which route, for
//! which tool, with which arguments in RFC 8785 canonical form. Two `tools/call`s that differ
//! only in JSON-RPC id, key order, whitespace or `\u` escapes are the same action, and so the
//! same approval request (issue #26). hitl-extauth keys its requests by [`Action::key`]; cards
//! show [`canonical`] arguments, which is what an approval covers.

use serde::Serialize;

/// A tool call's arguments could not be put in canonical form (e.g. a number JCS cannot
/// represent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the arguments have no RFC 8785 canonical form: {0}")]
pub struct NotCanonical(pub String);

/// `value` in RFC 8785 (JCS) canonical form: keys sorted, no whitespace, one spelling of
/// every string and number.
pub fn canonical(value: &serde_json::Value) -> Result<String, NotCanonical> {
    serde_json_canonicalizer::to_string(value).map_err(|e| NotCanonical(e.to_string()))
}

/// What one approval request stands for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action<'a> {
    /// The verified requester; `None` only when the gate runs without requiring one.
    pub requester: Option<&'a str>,
    /// The gateway's route (`context_extensions["route"]`), or the path when it names none.
    pub route: &'a str,
    pub tool: &'a str,
    pub arguments: &'a serde_json::Value,
}

impl Action<'_> {
    /// The action's key: hex sha256 of its canonical form. Equal keys, equal actions.
    #[cfg(feature = "crypto")]
    pub fn key(&self) -> Result<String, NotCanonical> {
        use sha2::Digest as _;
        let canonical =
            serde_json_canonicalizer::to_string(self).map_err(|e| NotCanonical(e.to_string()))?;
        Ok(hex::encode(sha2::Sha256::digest(canonical.as_bytes())))
    }
}

#[cfg(all(test, feature = "crypto"))]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(requester: &str, arguments: &serde_json::Value) -> String {
        Action {
            requester: Some(requester),
            route: "privileged-mcp",
            tool: "run_migration",
            arguments,
        }
        .key()
        .unwrap()
    }

    #[test]
    fn key_order_whitespace_and_escapes_do_not_make_another_action() {
        let plain: serde_json::Value =
            serde_json::from_str(r#"{"version":"v3","dry_run":false}"#).unwrap();
        let other: serde_json::Value =
            serde_json::from_str("{ \"dry_run\" : false,\n \"version\": \"\\u0076\\u0033\" }")
                .unwrap();
        assert_eq!(
            canonical(&plain).unwrap(),
            r#"{"dry_run":false,"version":"v3"}"#
        );
        assert_eq!(canonical(&other).unwrap(), canonical(&plain).unwrap());
        assert_eq!(key("alice", &plain), key("alice", &other));
    }

    #[test]
    fn another_requester_or_other_arguments_are_another_action() {
        let v3 = json!({"version": "v3"});
        assert_ne!(key("alice", &v3), key("bob", &v3));
        assert_ne!(key("alice", &v3), key("alice", &json!({"version": "v4"})));
    }
}
