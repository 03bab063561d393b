//! Verifying a requester token (a JWT) as the gate's own check, not the gateway's word: the
//! signature against the configured JWKS, `iss`, `aud`, `exp` (required), `nbf` (honoured),
//! and a longest lifetime; then its `sub` as an [`Identity`]. Built on `jsonwebtoken` (over
//! `ring`); symmetric keys and `alg: none` are never accepted.

use std::{
    collections::HashMap,
    path::Path,
    str::FromStr as _,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hitl_wire::identity::{Identity, REQUESTER_CLAIM};
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse},
};
use serde_json::Value;

/// Clock skew allowed on `exp`, `nbf` and `iat` (Envoy's `clock_skew_seconds` in the lab).
pub const LEEWAY_SECS: u64 = 30;

/// A JWKS the gate cannot verify with.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("not a JWKS (JSON `{{\"keys\": [...]}}`): {0}")]
    Parse(#[from] serde_json::Error),
    #[error("the JWKS holds no signature key")]
    NoKeys,
    #[error("key {kid:?} of the JWKS is unusable: {reason}")]
    Key { kid: String, reason: String },
    #[error("no issuer or no audience given: a token is checked against both")]
    NoIssuerOrAudience,
}

/// Why a requester token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("it is not a JWT ({0})")]
    Malformed(String),
    #[error("no key of the gate's JWKS matches its kid {kid:?} and alg {alg:?}")]
    UnknownKey { kid: Option<String>, alg: String },
    #[error("its signature does not verify against the gate's JWKS")]
    BadSignature,
    #[error("it has expired (`exp`)")]
    Expired,
    #[error("it is not valid yet (`nbf` is in the future)")]
    NotYetValid,
    #[error("it carries no `{0}` claim")]
    Missing(String),
    #[error("its `iss` is not {0:?}")]
    Issuer(String),
    #[error("its `aud` names none of {0:?}")]
    Audience(Vec<String>),
    #[error("it lives {lifetime} s, longer than the {max} s the gate accepts")]
    TooLong { lifetime: u64, max: u64 },
    #[error("it was issued in the future (`iat`)")]
    IssuedInFuture,
    #[error("its `{claim}` is not an acceptable identity: {reason}")]
    Subject { claim: String, reason: String },
    #[error("{0}")]
    Other(String),
}

/// One verification key of the JWKS.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// Verifies requester tokens against one issuer's keys.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<Key>,
    issuer: String,
    audiences: Vec<String>,
    max_lifetime: u64,
    /// The claim that names the person ([`REQUESTER_CLAIM`] unless [`Verifier::naming`]).
    subject: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("max_lifetime", &self.max_lifetime)
            .field("subject", &self.subject)
            .finish()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The algorithm a JWK verifies: its `alg`, or the one its key type implies. Symmetric keys
/// (a shared secret would let the gate's every peer mint tokens) are refused.
fn algorithm(jwk: &jsonwebtoken::jwk::Jwk) -> Result<Algorithm, String> {
    let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
        (_, AlgorithmParameters::OctetKey(_)) => {
            return Err("a symmetric (`oct`) key: the gate accepts public keys only".into());
        }
        (Some(alg), _) => Algorithm::from_str(&alg.to_string()).map_err(|e| e.to_string())?,
        (None, AlgorithmParameters::EllipticCurve(ec)) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            ref other => return Err(format!("curve {other:?} is not supported")),
        },
        (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (None, AlgorithmParameters::OctetKeyPair(_)) => Algorithm::EdDSA,
    };
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(format!("{alg:?} is a shared-secret algorithm"));
    }
    Ok(alg)
}

impl Verifier {
    /// A verifier for tokens from `issuer` to one of `audiences`, signed by a key of `jwks`
    /// (JSON text), living at most `max_lifetime`.
    pub fn new(
        jwks: &str,
        issuer: &str,
        audiences: &[String],
        max_lifetime: Duration,
    ) -> Result<Self, JwksError> {
        if issuer.trim().is_empty() || audiences.iter().all(|a| a.trim().is_empty()) {
            return Err(JwksError::NoIssuerOrAudience);
        }
        let set: JwkSet = serde_json::from_str(jwks)?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let kid = jwk.common.key_id.clone();
            let unusable = |reason: String| JwksError::Key {
                kid: kid.clone().unwrap_or_default(),
                reason,
            };
            let alg = algorithm(jwk).map_err(unusable)?;
            let key = DecodingKey::from_jwk(jwk).map_err(|e| unusable(e.to_string()))?;
            keys.push(Key { kid, alg, key });
        }
        if keys.is_empty() {
            return Err(JwksError::NoKeys);
        }
        Ok(Self {
            keys,
            issuer: issuer.trim().to_owned(),
            audiences: audiences
                .iter()
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
            max_lifetime: max_lifetime.as_secs(),
            subject: REQUESTER_CLAIM.to_owned(),
        })
    }

    /// This verifier with `claim` as the one that must name the person (e.g. a reviewer's
    /// ID token's `preferred_username`).
    pub fn naming(mut self, claim: &str) -> Self {
        claim.clone_into(&mut self.subject);
        self
    }

    /// [`Verifier::new`] with the JWKS read from `path`.
    pub fn from_file(
        path: &Path,
        issuer: &str,
        audiences: &[String],
        max_lifetime: Duration,
    ) -> Result<Self, JwksError> {
        let jwks = std::fs::read_to_string(path).map_err(|source| JwksError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(&jwks, issuer, audiences, max_lifetime)
    }

    /// The requester `token` names, if it verifies.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let claims = self.verify_claims(token)?;
        match claims.get(&self.subject) {
            Some(Value::String(sub)) => Identity::parse(sub).map_err(|e| TokenError::Subject {
                claim: self.subject.clone(),
                reason: e.to_string(),
            }),
            _ => Err(TokenError::Missing(self.subject.clone())),
        }
    }

    /// Every claim of `token`, if it verifies (signature, issuer, audience, clock, lifetime,
    /// and the naming claim present).
    pub fn verify_claims(&self, token: &str) -> Result<HashMap<String, Value>, TokenError> {
        let header = decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let mut candidates = self.keys.iter().filter(|k| {
            k.alg == header.alg
                && match (&header.kid, &k.kid) {
                    (Some(wanted), Some(kid)) => wanted == kid,
                    _ => true,
                }
        });
        let Some(first) = candidates.next() else {
            return Err(TokenError::UnknownKey {
                kid: header.kid,
                alg: format!("{:?}", header.alg),
            });
        };
        let mut outcome = self.decode(token, first);
        for key in candidates {
            if outcome.as_ref().err() != Some(&TokenError::BadSignature) {
                break;
            }
            outcome = self.decode(token, key);
        }
        let claims = outcome?;
        self.lifetime(&claims)?;
        Ok(claims)
    }

    fn decode(&self, token: &str, key: &Key) -> Result<HashMap<String, Value>, TokenError> {
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", self.subject.as_str()]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        decode::<HashMap<String, Value>>(token, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::MissingRequiredClaim(claim) => TokenError::Missing(claim.clone()),
                ErrorKind::InvalidIssuer => TokenError::Issuer(self.issuer.clone()),
                ErrorKind::InvalidAudience => TokenError::Audience(self.audiences.clone()),
                ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) => {
                    TokenError::Malformed(e.to_string())
                }
                _ => TokenError::Other(e.to_string()),
            })
    }

    /// `exp - iat` and `exp - now` within the longest lifetime; `iat` not in the future.
    fn lifetime(&self, claims: &HashMap<String, Value>) -> Result<(), TokenError> {
        let now = now_secs();
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| TokenError::Missing("exp".into()))?;
        let iat = claims.get("iat").and_then(Value::as_u64);
        if iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
            return Err(TokenError::IssuedInFuture);
        }
        let from = iat.unwrap_or(now);
        let lifetime = exp.saturating_sub(from).max(exp.saturating_sub(now));
        if lifetime > self.max_lifetime {
            return Err(TokenError::TooLong {
                lifetime,
                max: self.max_lifetime,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    use jsonwebtoken::{EncodingKey, Header, encode};
    use ring::{
        rand::SystemRandom,
        signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _},
    };
    use serde_json::json;

    use super::*;

    pub(crate) const ISSUER: &str = "https://issuer.test";
    pub(crate) const AUDIENCE: &str = "gateway.test";
    pub(crate) const KID: &str = "k1";

    /// An ES256 key pair: mints tokens, and gives its JWKS.
    pub(crate) struct TestIssuer {
        pkcs8: Vec<u8>,
        jwks: String,
    }

    impl TestIssuer {
        pub(crate) fn new() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .unwrap()
                .as_ref()
                .to_vec();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).unwrap();
            let point = pair.public_key().as_ref();
            let jwks = json!({"keys": [{
                "kty": "EC", "crv": "P-256", "kid": KID, "alg": "ES256", "use": "sig",
                "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
            }]})
            .to_string();
            Self { pkcs8, jwks }
        }

        pub(crate) fn jwks(&self) -> &str {
            &self.jwks
        }

        pub(crate) fn verifier(&self) -> Verifier {
            Verifier::new(
                &self.jwks,
                ISSUER,
                &[AUDIENCE.to_owned()],
                Duration::from_secs(3600),
            )
            .unwrap()
        }

        /// A token with `claims` as they are.
        pub(crate) fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some(KID.into());
            encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
        }

        /// The lab's usual claims for `sub`, valid for 15 minutes from now.
        pub(crate) fn claims(sub: &str) -> Value {
            let now = now_secs();
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "nbf": now, "exp": now + 900})
        }

        pub(crate) fn mint(&self, sub: &str) -> String {
            self.sign(&Self::claims(sub))
        }
    }

    fn refused(issuer: &TestIssuer, edit: impl FnOnce(&mut Value)) -> TokenError {
        let mut claims = TestIssuer::claims("alice");
        edit(&mut claims);
        issuer.verifier().verify(&issuer.sign(&claims)).unwrap_err()
    }

    #[test]
    fn a_good_token_names_its_sub_normalised() {
        let issuer = TestIssuer::new();
        let id = issuer.verifier().verify(&issuer.mint("Alice")).unwrap();
        assert_eq!(id.as_str(), "alice");
    }

    /// Where `sub` is an opaque id, the requester is named by the claim reviewers are named
    /// by (`REQUESTER_NAME_CLAIM`): then separation of duties compares like with like.
    #[test]
    fn a_requester_may_be_named_by_another_claim() {
        let issuer = TestIssuer::new();
        let mut claims = TestIssuer::claims("00u1a2b3c4");
        claims["preferred_username"] = "Alice".into();
        let token = issuer.sign(&claims);
        let by_name = issuer.verifier().naming("preferred_username");
        assert_eq!(by_name.verify(&token).unwrap().as_str(), "alice");
        assert_eq!(
            issuer.verifier().verify(&token).unwrap().as_str(),
            "00u1a2b3c4"
        );
        let unnamed = by_name.verify(&issuer.mint("alice")).unwrap_err();
        assert!(
            unnamed.to_string().contains("preferred_username"),
            "{unnamed}"
        );
    }

    #[test]
    fn exp_is_required_and_nbf_honoured() {
        let issuer = TestIssuer::new();
        let now = now_secs();
        let no_exp = refused(&issuer, |c| {
            c.as_object_mut().unwrap().remove("exp");
        });
        assert_eq!(no_exp, TokenError::Missing("exp".into()));
        let early = refused(&issuer, |c| c["nbf"] = json!(now + 3600));
        assert_eq!(early, TokenError::NotYetValid);
        let expired = refused(&issuer, |c| {
            c["iat"] = json!(now - 1000);
            c["exp"] = json!(now - 100);
        });
        assert_eq!(expired, TokenError::Expired);
    }

    #[test]
    fn issuer_audience_and_lifetime_are_checked() {
        let issuer = TestIssuer::new();
        let now = now_secs();
        assert!(matches!(
            refused(&issuer, |c| c["iss"] = json!("https://evil")),
            TokenError::Issuer(_)
        ));
        assert!(matches!(
            refused(&issuer, |c| c["aud"] = json!("elsewhere")),
            TokenError::Audience(_)
        ));
        assert!(matches!(
            refused(&issuer, |c| c["exp"] = json!(now + 86_400)),
            TokenError::TooLong { .. }
        ));
        assert!(matches!(
            refused(&issuer, |c| {
                c.as_object_mut().unwrap().remove("iat");
                c["exp"] = json!(now + 7200);
            }),
            TokenError::TooLong { .. }
        ));
        assert_eq!(
            refused(&issuer, |c| c["iat"] = json!(now + 600)),
            TokenError::IssuedInFuture
        );
        assert_eq!(
            refused(&issuer, |c| c["sub"] = json!("ali\u{200B}ce")).to_string(),
            "its `sub` is not an acceptable identity: the identity holds U+200B, a control, bidi, zero-width or invisible character"
        );
    }

    #[test]
    fn another_key_a_bad_signature_and_no_jwt_are_refused() {
        let issuer = TestIssuer::new();
        let other = TestIssuer::new();
        assert_eq!(
            issuer.verifier().verify(&other.mint("alice")).unwrap_err(),
            TokenError::BadSignature
        );
        assert!(matches!(
            issuer.verifier().verify("alice").unwrap_err(),
            TokenError::Malformed(_)
        ));
        // alg none: no key verifies "none".
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            B64.encode(TestIssuer::claims("alice").to_string())
        );
        assert!(issuer.verifier().verify(&none).is_err());
    }

    #[test]
    fn symmetric_keys_and_empty_sets_are_refused() {
        let oct = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}"#;
        let aud = [AUDIENCE.to_owned()];
        let long = Duration::from_secs(3600);
        assert!(matches!(
            Verifier::new(oct, ISSUER, &aud, long),
            Err(JwksError::Key { .. })
        ));
        assert!(matches!(
            Verifier::new(r#"{"keys":[]}"#, ISSUER, &aud, long),
            Err(JwksError::NoKeys)
        ));
        let jwks = TestIssuer::new().jwks().to_owned();
        assert!(matches!(
            Verifier::new(&jwks, "", &aud, long),
            Err(JwksError::NoIssuerOrAudience)
        ));
    }
}
