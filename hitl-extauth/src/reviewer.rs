//! Who takes a decision, and in which groups — believed only from what the gate can check:
//! a reviewer's OpenID Connect ID token verified against the identity provider's keys (the
//! name and groups its claims hold), or, without a token, the name the admin API's token
//! holder (hitl-ui) asserts, in the groups the gate's own approval policy lists it in.

use std::{path::Path, time::Duration};

use hitl_wire::identity::Identity;
use serde_json::Value;

use crate::requester::verify::{JwksError, Verifier};

/// Longest lifetime accepted for a reviewer's ID token (identity providers issue 5 min to
/// 24 h; hitl-ui signs the reviewer in again when theirs has expired).
pub const MAX_ID_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Most groups read from one token.
const MAX_GROUPS: usize = 256;

/// Verifies reviewers' ID tokens (`REVIEWER_JWKS_FILE` and friends).
#[derive(Debug, Clone)]
pub struct Tokens {
    verifier: Verifier,
    name_claim: String,
    groups_claim: String,
}

/// A reviewer as the gate believes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    /// As recorded and signed (verified, or marked unverified).
    pub name: String,
    /// The normalised identity, for comparisons (`None`: an unnamed decision of an open
    /// admin API, which is nobody).
    pub identity: Option<Identity>,
    /// The groups the identity provider's token gives; `None` without a token (then the
    /// policy file's static members decide, as for the no-setup sign-in list).
    pub token_groups: Option<Vec<String>>,
}

impl Tokens {
    /// A verifier of ID tokens from `issuer` for `audiences` (hitl-ui's client id), signed by
    /// a key of the JWKS at `jwks`.
    pub fn from_file(
        jwks: &Path,
        issuer: &str,
        audiences: &[String],
        name_claim: &str,
        groups_claim: &str,
    ) -> Result<Self, JwksError> {
        let verifier =
            Verifier::from_file(jwks, issuer, audiences, MAX_ID_TOKEN_LIFETIME)?.naming(name_claim);
        Ok(Self {
            verifier,
            name_claim: name_claim.to_owned(),
            groups_claim: groups_claim.to_owned(),
        })
    }

    /// The reviewer `token` names, with its groups; why not, in a sentence.
    pub fn verify(&self, token: &str) -> Result<Reviewer, String> {
        let claims = self
            .verifier
            .verify_claims(token)
            .map_err(|e| format!("the reviewer's ID token is refused: {e}"))?;
        let name = claims
            .get(&self.name_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the ID token carries no `{}` claim", self.name_claim))?;
        let identity = Identity::parse(name)
            .map_err(|e| format!("the ID token's `{}` is refused: {e}", self.name_claim))?;
        let token_groups = match claims.get(&self.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(all)) => all
                .iter()
                .filter_map(Value::as_str)
                .take(MAX_GROUPS)
                .map(str::to_owned)
                .collect(),
            Some(_) => {
                return Err(format!(
                    "the ID token's `{}` claim is not a list of group names",
                    self.groups_claim
                ));
            }
        };
        Ok(Reviewer {
            name: identity.as_str().to_owned(),
            identity: Some(identity),
            token_groups: Some(token_groups),
        })
    }
}
