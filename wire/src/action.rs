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

/// The largest integer magnitude every I-JSON reader holds exactly (RFC 7493 §2.2): 2^53 − 1.
/// RFC 8785 writes numbers as IEEE 754 doubles, so beyond it two different integers share one
/// canonical form — an approval of one would let the other through.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// `value` in RFC 8785 (JCS) canonical form: keys sorted, no whitespace, one spelling of
/// every string and number. Integers beyond ±[`MAX_SAFE_INTEGER`] have none that is theirs
/// alone, and are refused.
pub fn canonical(value: &serde_json::Value) -> Result<String, NotCanonical> {
    exact_numbers(value)?;
    serde_json_canonicalizer::to_string(value).map_err(|e| NotCanonical(e.to_string()))
}

/// Every number in `value` is one its canonical form names alone.
fn exact_numbers(value: &serde_json::Value) -> Result<(), NotCanonical> {
    match value {
        serde_json::Value::Number(n) => {
            let unsafe_integer = n.as_u64().is_some_and(|u| u > MAX_SAFE_INTEGER)
                || n.as_i64()
                    .is_some_and(|i| i.unsigned_abs() > MAX_SAFE_INTEGER);
            if unsafe_integer {
                return Err(NotCanonical(format!(
                    "the integer {n} is beyond ±(2^53 − 1), where JSON numbers stop being exact \
                     (RFC 7493 §2.2); send it as a string"
                )));
            }
            Ok(())
        }
        serde_json::Value::Array(items) => items.iter().try_for_each(exact_numbers),
        serde_json::Value::Object(map) => map.values().try_for_each(exact_numbers),
        _ => Ok(()),
    }
}

/// Where `value` holds a number written as a fraction with an integral value (`1.0`): RFC
/// 8785 spells it as the integer (`1`), but a backend may read the two differently (Python
/// reads a float), so the action key keeps them apart. JSON Pointers, in document order.
fn integral_fractions(value: &serde_json::Value, at: &mut String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Number(n)
            if n.is_f64() && n.as_f64().is_some_and(|f| f.fract() == 0.0) =>
        {
            out.push(at.clone());
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                integral_fractions(item, at, out);
                at.truncate(len);
            }
        }
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                let len = at.len();
                at.push('/');
                at.push_str(&key.replace('~', "~0").replace('/', "~1"));
                integral_fractions(&map[key], at, out);
                at.truncate(len);
            }
        }
        _ => {}
    }
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
    ///
    /// Its preimage is the action's RFC 8785 form; when the arguments write an integral number
    /// as a fraction (`1.0`), the JSON Pointers of those numbers follow it, so `1` and `1.0`
    /// are two actions while every other spelling of one argument list is one.
    pub fn key(&self) -> Result<String, NotCanonical> {
        use sha2::Digest as _;
        exact_numbers(self.arguments)?;
        let mut preimage =
            serde_json_canonicalizer::to_string(self).map_err(|e| NotCanonical(e.to_string()))?;
        let mut fractions = Vec::new();
        integral_fractions(self.arguments, &mut String::new(), &mut fractions);
        if !fractions.is_empty() {
            preimage.push('\n');
            preimage.push_str(&serde_json::to_string(&fractions).unwrap_or_default());
        }
        Ok(hex::encode(sha2::Sha256::digest(preimage.as_bytes())))
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

    #[test]
    fn integers_past_2_53_have_no_canonical_form_of_their_own() {
        let near: serde_json::Value = serde_json::from_str(r#"{"n":9007199254740993}"#).unwrap();
        let edge: serde_json::Value = serde_json::from_str(r#"{"n":9007199254740991}"#).unwrap();
        let negative: serde_json::Value =
            serde_json::from_str(r#"{"n":[-9007199254740993]}"#).unwrap();
        assert!(
            canonical(&near)
                .unwrap_err()
                .0
                .contains("send it as a string")
        );
        assert!(canonical(&negative).is_err());
        assert_eq!(canonical(&edge).unwrap(), r#"{"n":9007199254740991}"#);
        let action = Action {
            requester: Some("alice"),
            route: "privileged-mcp",
            tool: "run_migration",
            arguments: &near,
        };
        assert!(action.key().is_err());
    }

    #[test]
    fn one_and_one_point_zero_are_two_actions_but_the_same_card() {
        let int: serde_json::Value = serde_json::from_str(r#"{"limit":1,"v":"x"}"#).unwrap();
        let float: serde_json::Value = serde_json::from_str(r#"{"v":"x","limit":1.0}"#).unwrap();
        let float_again: serde_json::Value =
            serde_json::from_str(r#"{ "limit" : 10e-1, "v" : "x" }"#).unwrap();
        assert_eq!(canonical(&int).unwrap(), canonical(&float).unwrap());
        assert_ne!(key("alice", &int), key("alice", &float));
        assert_eq!(key("alice", &float), key("alice", &float_again));
        assert_eq!(
            key("alice", &json!({"p": 0.5})),
            key("alice", &serde_json::from_str(r#"{"p":5e-1}"#).unwrap())
        );
    }
}
