//! Signing and verifying approval tokens (feature `crypto`).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Mutex,
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use super::{CLOCK_SKEW_SECS, Claims, MAX_TOKEN_BYTES, MAX_TTL_SECS, VERSION};

/// Hex sha256 of `bytes`, as tokens and the gate's records carry it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A key that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading the key file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the key file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the key is not 32 bytes of hex")]
    NotHex,
    #[error("the verifying key is not a valid Ed25519 point")]
    BadPoint,
    #[error("no randomness to generate a key: {0}")]
    NoRandomness(String),
}

fn key_bytes(text: &str) -> Result<[u8; 32], KeyError> {
    let bytes = hex::decode(text.trim()).map_err(|_| KeyError::NotHex)?;
    bytes.try_into().map_err(|_| KeyError::NotHex)
}

fn read_key(path: &Path) -> Result<[u8; 32], KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    key_bytes(&text)
}

/// Which check a token failed: each says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "no approval: a tools/call on this server needs the {} header from the gate",
        super::HEADER
    )]
    Missing,
    #[error("malformed approval token: {0}")]
    Malformed(String),
    #[error("approval token signature does not verify (not signed by this lab's gate)")]
    BadSignature,
    #[error("approval token expired {0} s ago")]
    Expired(i64),
    #[error("approval token is not valid yet (issued {0} s in the future)")]
    NotYetValid(i64),
    #[error("approval token lives {0} s, longer than the {max} s allowed", max = MAX_TTL_SECS)]
    TooLong(i64),
    #[error("approval is for tool {approved:?}, but the call is to {called:?}")]
    ToolMismatch { approved: String, called: String },
    #[error("approval is for other bytes: approved sha256 {approved}, received {received}")]
    BodyMismatch { approved: String, received: String },
    #[error("approval {0} was already used")]
    Replayed(String),
}

impl Refusal {
    /// A short name of the failed check, for audits and error data.
    pub fn check(&self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed(_) => "malformed",
            Refusal::BadSignature => "signature",
            Refusal::Expired(_) => "expired",
            Refusal::NotYetValid(_) => "not-yet-valid",
            Refusal::TooLong(_) => "lifetime",
            Refusal::ToolMismatch { .. } => "tool",
            Refusal::BodyMismatch { .. } => "body-sha256",
            Refusal::Replayed(_) => "replayed",
        }
    }
}

/// Signs approval tokens (hitl-extauth).
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("verifying_key", &self.verifying_key_hex())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A fresh random key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
        Ok(Self::from_seed(seed))
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The key in a file: 32 bytes of hex (the seed).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        read_key(path).map(Self::from_seed)
    }

    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        key_bytes(text).map(Self::from_seed)
    }

    /// The seed as hex: what a signing key file holds.
    pub fn signing_key_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// The public half as hex: what a verifying key file holds.
    pub fn verifying_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    pub fn verifier(&self) -> Verifier {
        Verifier::new(self.key.verifying_key())
    }

    /// Write both halves as files in `dir` (the signing key readable by its owner only).
    pub fn write_key_files(&self, dir: &Path) -> Result<KeyFiles, KeyError> {
        let files = KeyFiles {
            signing: dir.join("approval-signing.key"),
            verifying: dir.join("approval-verifying.key"),
        };
        let write = |path: &Path, text: String| {
            crate::private::dir(dir)
                .and_then(|()| crate::private::write(path, text.as_bytes()))
                .map_err(|source| KeyError::Write {
                    path: path.to_owned(),
                    source,
                })
        };
        write(&files.signing, self.signing_key_hex())?;
        write(&files.verifying, self.verifying_key_hex())?;
        Ok(files)
    }

    /// The token for `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let json = serde_json::to_vec(claims).expect("claims always serialise");
        let signed = format!("{VERSION}.{}", B64.encode(json));
        let signature = self.key.sign(signed.as_bytes());
        format!("{signed}.{}", B64.encode(signature.to_bytes()))
    }
}

/// Where [`Signer::write_key_files`] put the two halves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFiles {
    pub signing: PathBuf,
    pub verifying: PathBuf,
}

/// Verifies approval tokens and remembers the ones used (mock-db-mcp).
#[derive(Debug)]
pub struct Verifier {
    key: VerifyingKey,
    /// Approval ids already used, with the time after which a replay would be refused as
    /// expired anyway (then they are forgotten).
    used: Mutex<HashMap<String, i64>>,
}

impl Verifier {
    pub fn new(key: VerifyingKey) -> Self {
        Self {
            key,
            used: Mutex::default(),
        }
    }

    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let bytes = key_bytes(text)?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self::new)
            .map_err(|_| KeyError::BadPoint)
    }

    /// The key in a file: 32 bytes of hex.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let bytes = read_key(path)?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self::new)
            .map_err(|_| KeyError::BadPoint)
    }

    /// Read a token without any check but its shape and signature.
    pub fn open(&self, token: &str) -> Result<Claims, Refusal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::Malformed(format!(
                "longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let mut parts = token.trim().split('.');
        let (Some(version), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refusal::Malformed(format!(
                "expected {VERSION}.<claims>.<signature>"
            )));
        };
        if version != VERSION {
            return Err(Refusal::Malformed(format!(
                "version {version:?}, expected {VERSION:?}"
            )));
        }
        let signature: [u8; 64] = B64
            .decode(signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                Refusal::Malformed("the signature is not 64 bytes of base64url".into())
            })?;
        let signed_len = version.len() + 1 + payload.len();
        let signed = &token.trim()[..signed_len];
        self.key
            .verify_strict(signed.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| Refusal::BadSignature)?;
        let json = B64
            .decode(payload)
            .map_err(|_| Refusal::Malformed("the claims are not base64url".into()))?;
        serde_json::from_slice(&json).map_err(|e| Refusal::Malformed(format!("claims: {e}")))
    }

    /// Every check, in order: shape, signature, lifetime, expiry (with [`CLOCK_SKEW_SECS`]
    /// either way), tool, body bytes, single use. Only a token that passes all of them is
    /// marked used, so a failed attempt cannot burn someone else's approval.
    pub fn verify(
        &self,
        token: Option<&str>,
        body: &[u8],
        tool: &str,
        now: i64,
    ) -> Result<Claims, Refusal> {
        let claims = self.open(token.ok_or(Refusal::Missing)?)?;
        let lifetime = claims.exp - claims.iat;
        if !(0..=MAX_TTL_SECS).contains(&lifetime) {
            return Err(Refusal::TooLong(lifetime));
        }
        if now > claims.exp + CLOCK_SKEW_SECS {
            return Err(Refusal::Expired(now - claims.exp));
        }
        if claims.iat > now + CLOCK_SKEW_SECS {
            return Err(Refusal::NotYetValid(claims.iat - now));
        }
        if claims.tool != tool {
            return Err(Refusal::ToolMismatch {
                approved: claims.tool,
                called: tool.to_owned(),
            });
        }
        let received = sha256_hex(body);
        if claims.sha256 != received {
            return Err(Refusal::BodyMismatch {
                approved: claims.sha256,
                received,
            });
        }
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.retain(|_, forget_after| *forget_after >= now);
        if used.contains_key(&claims.id) {
            return Err(Refusal::Replayed(claims.id));
        }
        used.insert(claims.id.clone(), claims.exp + CLOCK_SKEW_SECS);
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_migration","arguments":{"version":"v3"}}}"#;
    const NOW: i64 = 1_800_000_000;

    fn claims() -> Claims {
        Claims {
            approvers: Vec::new(),
            rule: None,
            id: "call-1".into(),
            sha256: sha256_hex(BODY),
            tool: "run_migration".into(),
            requester: Some("alice".into()),
            reviewer: "bob".into(),
            iat: NOW,
            exp: NOW + super::super::TTL_SECS,
        }
    }

    fn signer() -> Signer {
        Signer::from_seed([7; 32])
    }

    #[test]
    fn a_fresh_token_verifies_once() {
        let signer = signer();
        let verifier = signer.verifier();
        let token = signer.sign(&claims());
        assert!(token.starts_with("v1."));
        let got = verifier.verify(Some(&token), BODY, "run_migration", NOW + 1);
        assert_eq!(got, Ok(claims()));
        assert_eq!(
            verifier.verify(Some(&token), BODY, "run_migration", NOW + 2),
            Err(Refusal::Replayed("call-1".into()))
        );
    }

    #[test]
    fn every_check_names_itself() {
        let signer = signer();
        let verifier = signer.verifier();
        let check = |claims: Claims, body: &[u8], tool: &str, now: i64| {
            verifier
                .verify(Some(&signer.sign(&claims)), body, tool, now)
                .unwrap_err()
                .check()
        };
        assert_eq!(check(claims(), b"{}", "run_migration", NOW), "body-sha256");
        assert_eq!(check(claims(), BODY, "truncate_table", NOW), "tool");
        assert_eq!(check(claims(), BODY, "run_migration", NOW + 40), "expired");
        assert_eq!(
            check(claims(), BODY, "run_migration", NOW - 10),
            "not-yet-valid"
        );
        let long = Claims {
            exp: NOW + 3600,
            ..claims()
        };
        assert_eq!(check(long, BODY, "run_migration", NOW), "lifetime");
        // Within the skew both ways: fine.
        assert!(
            verifier
                .verify(
                    Some(&signer.sign(&claims())),
                    BODY,
                    "run_migration",
                    NOW - 4
                )
                .is_ok()
        );
    }

    #[test]
    fn forged_and_mangled_tokens_are_refused() {
        let verifier = signer().verifier();
        let forged = Signer::from_seed([8; 32]).sign(&claims());
        assert_eq!(
            verifier.verify(Some(&forged), BODY, "run_migration", NOW),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verifier.verify(None, BODY, "run_migration", NOW),
            Err(Refusal::Missing)
        );
        // Claims swapped under a valid signature.
        let good = signer().sign(&claims());
        let other = signer().sign(&Claims {
            tool: "x".into(),
            ..claims()
        });
        let (_, sig) = good.rsplit_once('.').unwrap();
        let (other_signed, _) = other.rsplit_once('.').unwrap();
        assert_eq!(
            verifier.verify(Some(&format!("{other_signed}.{sig}")), BODY, "x", NOW),
            Err(Refusal::BadSignature)
        );
        for bad in ["", "v1", "v2.a.b", "v1.a.b.c", "v1.!!.AAAA"] {
            assert_eq!(
                verifier
                    .verify(Some(bad), BODY, "run_migration", NOW)
                    .unwrap_err()
                    .check(),
                "malformed",
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let signer = signer();
        let again = Signer::from_hex(&signer.signing_key_hex()).unwrap();
        let verifier = Verifier::from_hex(&signer.verifying_key_hex()).unwrap();
        let token = again.sign(&claims());
        assert!(
            verifier
                .verify(Some(&token), BODY, "run_migration", NOW)
                .is_ok()
        );
        assert!(matches!(Verifier::from_hex("abc"), Err(KeyError::NotHex)));
    }

    /// What one sign and one verify cost (`cargo test -p hitl-wire --features crypto
    /// --release -- --ignored --nocapture token_cost`).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn token_cost() {
        let signer = signer();
        let n = 20_000;
        let started = std::time::Instant::now();
        let tokens: Vec<String> = (0..n)
            .map(|i| {
                signer.sign(&Claims {
                    id: format!("call-{i}"),
                    ..claims()
                })
            })
            .collect();
        let sign = started.elapsed() / n;
        let verifier = signer.verifier();
        let started = std::time::Instant::now();
        for token in &tokens {
            verifier
                .verify(Some(token), BODY, "run_migration", NOW)
                .unwrap();
        }
        let verify = started.elapsed() / n;
        eprintln!("per token: sign {sign:?}, verify (sha256 of the body included) {verify:?}");
    }
}
