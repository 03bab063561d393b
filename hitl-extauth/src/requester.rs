//! Who asked for a call, as far as the gate can prove it: the `sub` of the requester's token
//! (a JWT), which the gate verifies itself ([`verify::Verifier`]) — not the gateway's word for
//! it, since whoever reaches the Check port could state anything. The token arrives as the
//! gateway forwards it: `Authorization: Bearer …` (Envoy's `jwt_authn` with `forward: true`)
//! or the raw token in `metadata_context` (agentgateway's `requestMetadata`; the names are
//! `hitl_wire::identity`'s). A verified payload in `metadata_context` and identity headers
//! name nobody.

use std::collections::BTreeMap;

use envoy_types::pb::{envoy::config::core::v3::Metadata, google::protobuf::value::Kind};
use hitl_wire::identity::{
    BEARER_PREFIX, Identity, TOKEN_HEADER, TOKEN_METADATA_KEY, TOKEN_METADATA_NAMESPACE,
};

pub mod verify;

use verify::Verifier;

/// The requester token a Check carries, before anything is believed of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// No token in the header nor in the metadata.
    None,
    /// One token (the same in both places, if in both).
    Token(String),
    /// Something that cannot be read as one token: the reason.
    Unreadable(String),
}

impl Presented {
    /// The token in the `authorization` header (`Bearer …`) and/or in `metadata_context`
    /// under [`TOKEN_METADATA_NAMESPACE`] → [`TOKEN_METADATA_KEY`].
    pub fn from_check(headers: &BTreeMap<String, String>, metadata: Option<&Metadata>) -> Self {
        let header = headers.get(TOKEN_HEADER).and_then(|value| {
            let (scheme, token) = value.split_at_checked(BEARER_PREFIX.len())?;
            scheme
                .eq_ignore_ascii_case(BEARER_PREFIX)
                .then(|| token.trim().to_owned())
        });
        let in_metadata = match metadata
            .and_then(|m| m.filter_metadata.get(TOKEN_METADATA_NAMESPACE))
            .map(|ns| {
                ns.fields
                    .get(TOKEN_METADATA_KEY)
                    .and_then(|v| v.kind.as_ref())
            }) {
            None => None,
            Some(Some(Kind::StringValue(token))) => Some(token.trim().to_owned()),
            Some(_) => {
                return Presented::Unreadable(format!(
                    "the requester token in metadata_context ({TOKEN_METADATA_NAMESPACE}/\
                     {TOKEN_METADATA_KEY}) is not a string"
                ));
            }
        };
        match (header, in_metadata) {
            (None, None) => Presented::None,
            (Some(token), None) | (None, Some(token)) => Presented::Token(token),
            (Some(a), Some(b)) if a == b => Presented::Token(a),
            (Some(_), Some(_)) => Presented::Unreadable(
                "two different requester tokens (the Authorization header and metadata_context)"
                    .into(),
            ),
        }
    }
}

/// What the gate could prove about the requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// A token that verified named this person.
    Requester(Identity),
    /// No token at all (or, with no verifier configured under the opt-out, none checked).
    Absent,
    /// A token that does not verify, or no readable token: the reason.
    Invalid(String),
}

impl Verified {
    /// Verify what the Check `presented` with `verifier` (none only under the opt-out).
    pub fn check(presented: &Presented, verifier: Option<&Verifier>) -> Self {
        match (presented, verifier) {
            (Presented::None, _) => Verified::Absent,
            (Presented::Unreadable(reason), _) => Verified::Invalid(reason.clone()),
            (Presented::Token(_), None) => Verified::Absent,
            (Presented::Token(token), Some(verifier)) => match verifier.verify(token) {
                Ok(identity) => Verified::Requester(identity),
                Err(e) => Verified::Invalid(format!("the requester token is refused: {e}")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use envoy_types::pb::google::protobuf::{Struct, Value};
    use hitl_wire::identity::{METADATA_NAMESPACE, PAYLOAD_KEY};

    use super::{verify::tests::TestIssuer, *};

    fn string(s: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(s.to_owned())),
        }
    }

    fn metadata(namespace: &str, key: &str, value: Value) -> Metadata {
        Metadata {
            filter_metadata: HashMap::from([(
                namespace.to_owned(),
                Struct {
                    fields: HashMap::from([(key.to_owned(), value)]),
                },
            )]),
            ..Default::default()
        }
    }

    fn bearer(token: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("authorization".to_owned(), format!("Bearer {token}"))])
    }

    #[test]
    fn the_token_comes_from_the_header_or_the_metadata() {
        let issuer = TestIssuer::new();
        let token = issuer.mint("Alice");
        let alice = Verified::Requester(Identity::parse("alice").unwrap());
        let v = issuer.verifier();
        let from_header = Presented::from_check(&bearer(&token), None);
        assert_eq!(Verified::check(&from_header, Some(&v)), alice);
        let m = metadata(TOKEN_METADATA_NAMESPACE, TOKEN_METADATA_KEY, string(&token));
        let from_metadata = Presented::from_check(&BTreeMap::new(), Some(&m));
        assert_eq!(Verified::check(&from_metadata, Some(&v)), alice);
        let both = Presented::from_check(&bearer(&token), Some(&m));
        assert_eq!(Verified::check(&both, Some(&v)), alice);
    }

    #[test]
    fn a_stated_payload_names_nobody() {
        let issuer = TestIssuer::new();
        let forged = Struct {
            fields: HashMap::from([("sub".to_owned(), string("alice"))]),
        };
        let m = metadata(
            METADATA_NAMESPACE,
            PAYLOAD_KEY,
            Value {
                kind: Some(Kind::StructValue(forged)),
            },
        );
        let presented = Presented::from_check(&BTreeMap::new(), Some(&m));
        assert_eq!(presented, Presented::None);
        assert_eq!(
            Verified::check(&presented, Some(&issuer.verifier())),
            Verified::Absent
        );
    }

    #[test]
    fn a_forged_or_doubled_token_is_invalid() {
        let issuer = TestIssuer::new();
        let v = issuer.verifier();
        let forged = TestIssuer::new().mint("alice");
        assert!(matches!(
            Verified::check(&Presented::from_check(&bearer(&forged), None), Some(&v)),
            Verified::Invalid(r) if r.contains("signature")
        ));
        let m = metadata(
            TOKEN_METADATA_NAMESPACE,
            TOKEN_METADATA_KEY,
            string(&issuer.mint("bob")),
        );
        let two = Presented::from_check(&bearer(&issuer.mint("alice")), Some(&m));
        assert!(matches!(two, Presented::Unreadable(r) if r.contains("two different")));
        let m = metadata(
            TOKEN_METADATA_NAMESPACE,
            TOKEN_METADATA_KEY,
            Value::default(),
        );
        assert!(matches!(
            Presented::from_check(&BTreeMap::new(), Some(&m)),
            Presented::Unreadable(_)
        ));
    }

    #[test]
    fn other_authorization_schemes_are_no_token() {
        let headers = BTreeMap::from([("authorization".to_owned(), "Basic YTpi".to_owned())]);
        assert_eq!(Presented::from_check(&headers, None), Presented::None);
    }
}
