//! Who asked for a call, as far as the gate can prove it: the requester claim of the JWT the
//! gateway verified, read from the `CheckRequest`'s `metadata_context` (Envoy `jwt_authn`
//! with `payload_in_metadata`, or agentgateway's JWT policy; both put the payload under
//! [`METADATA_NAMESPACE`] → [`PAYLOAD_KEY`]). Request headers never count.

use envoy_types::pb::{
    envoy::config::core::v3::Metadata,
    google::protobuf::{Struct, value::Kind},
};
use hitl_wire::identity::{Identity, METADATA_NAMESPACE, PAYLOAD_KEY, REQUESTER_CLAIM};

/// What the gateway's metadata says about the requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// A verified token named this person.
    Requester(Identity),
    /// No verified token payload at all (no JWT policy ran, or the call bypassed the
    /// gateway).
    Absent,
    /// A verified payload whose requester claim is missing or not an acceptable identity.
    Invalid(String),
}

impl Verified {
    /// Read the verified requester out of the check's `metadata_context`.
    pub fn from_metadata(metadata: Option<&Metadata>) -> Self {
        let Some(payload) = metadata
            .and_then(|m| m.filter_metadata.get(METADATA_NAMESPACE))
            .and_then(|ns| ns.fields.get(PAYLOAD_KEY))
        else {
            return Verified::Absent;
        };
        let Some(Kind::StructValue(payload)) = &payload.kind else {
            return Verified::Invalid(format!(
                "the gateway's verified token payload ({METADATA_NAMESPACE}/{PAYLOAD_KEY}) is not an object"
            ));
        };
        match claim(payload) {
            Some(raw) => match Identity::parse(raw) {
                Ok(identity) => Verified::Requester(identity),
                Err(e) => Verified::Invalid(format!(
                    "the verified token's `{REQUESTER_CLAIM}` claim is not an acceptable identity: {e}"
                )),
            },
            None => Verified::Invalid(format!(
                "the verified token carries no `{REQUESTER_CLAIM}` claim (a string naming the requester)"
            )),
        }
    }
}

fn claim(payload: &Struct) -> Option<&str> {
    match payload.fields.get(REQUESTER_CLAIM)?.kind.as_ref()? {
        Kind::StringValue(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use envoy_types::pb::google::protobuf::Value;

    use super::*;

    fn string(s: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(s.to_owned())),
        }
    }

    /// `metadata_context` as the gateway sends it after verifying a token with `claims`.
    pub(crate) fn verified_metadata(claims: &[(&str, &str)]) -> Metadata {
        let payload = Struct {
            fields: claims
                .iter()
                .map(|(k, v)| ((*k).to_owned(), string(v)))
                .collect(),
        };
        let namespace = Struct {
            fields: HashMap::from([(
                PAYLOAD_KEY.to_owned(),
                Value {
                    kind: Some(Kind::StructValue(payload)),
                },
            )]),
        };
        Metadata {
            filter_metadata: HashMap::from([(METADATA_NAMESPACE.to_owned(), namespace)]),
            ..Default::default()
        }
    }

    #[test]
    fn the_verified_sub_is_the_requester_normalised() {
        let m = verified_metadata(&[("sub", "Alice"), ("iss", "x")]);
        assert_eq!(
            Verified::from_metadata(Some(&m)),
            Verified::Requester(Identity::parse("alice").unwrap())
        );
    }

    #[test]
    fn no_metadata_is_absent() {
        assert_eq!(Verified::from_metadata(None), Verified::Absent);
        assert_eq!(
            Verified::from_metadata(Some(&Metadata::default())),
            Verified::Absent
        );
    }

    #[test]
    fn a_payload_without_a_good_sub_is_invalid() {
        let m = verified_metadata(&[("iss", "x")]);
        assert!(matches!(
            Verified::from_metadata(Some(&m)),
            Verified::Invalid(r) if r.contains("no `sub` claim")
        ));
        let m = verified_metadata(&[("sub", "ali\u{200B}ce")]);
        assert!(matches!(
            Verified::from_metadata(Some(&m)),
            Verified::Invalid(r) if r.contains("U+200B")
        ));
        let mut m = verified_metadata(&[]);
        m.filter_metadata
            .get_mut(METADATA_NAMESPACE)
            .unwrap()
            .fields
            .insert(PAYLOAD_KEY.into(), string("alice"));
        assert!(matches!(
            Verified::from_metadata(Some(&m)),
            Verified::Invalid(r) if r.contains("not an object")
        ));
    }
}
