//! The lab's own token issuer for chat users: an ES256 (P-256) key pair kept under
//! `target/lab`, the JWKS the gateway verifies with, and short-lived JWTs naming the user
//! (`sub`) that the chat client (`cargo xtask chat`, the scene runner) sends to kagent as
//! `Authorization: Bearer …`. No external IdP; a real OIDC issuer replaces all of this.
//!
//! Compact JWS built by hand over `ring`'s fixed-size ECDSA signatures (exactly the 64-byte
//! `r || s` that JWS ES256 wants); claims as in [`hitl_wire::identity`].

use std::{
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use hitl_wire::identity::{JWT_ALG, LAB_AUDIENCE, LAB_ISSUER, LAB_KEY_ID};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _},
};
use serde_json::{Value, json};

/// `jwks.inline` of the gate policy's JWT provider in `manifests/`, which `up` (local and
/// kind) replaces with the lab's own public key: an empty key set verifies nothing.
pub const LAB_JWKS_PLACEHOLDER: &str = r#"{"keys":[]}"#;

/// File name of the signing key (PKCS#8, DER) in the lab's state directory.
pub const KEY_FILE: &str = "requester-signing-key.p8";
/// File name of the public key as a JWKS, next to [`KEY_FILE`].
pub const JWKS_FILE: &str = "requester-jwks.json";
/// How long a minted token is valid: long enough for a tier-2 park (kagent reuses the
/// token of the message that started a task when the task is resumed), short enough to be
/// worthless soon after.
pub const TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// Signs requester tokens.
pub struct Issuer {
    key: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    rng: SystemRandom,
    issuer: String,
    audience: String,
}

impl Clone for Issuer {
    fn clone(&self) -> Self {
        Self::from_pkcs8(self.pkcs8.clone()).expect("a key that parsed once parses again")
    }
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Claims of a token to mint; [`Issuer::claims`] gives the lab's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

impl Claims {
    /// The JWT payload: these claims, with `nbf` = `iat`.
    pub fn payload(&self) -> Value {
        json!({
            "iss": self.iss, "aud": self.aud, "sub": self.sub,
            "iat": self.iat, "nbf": self.iat, "exp": self.exp,
        })
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Issuer {
    /// A fresh key pair, held in memory only (tests, the bench).
    pub fn generate() -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("generating a P-256 key pair failed"))?;
        Self::from_pkcs8(pkcs8.as_ref().to_vec())
    }

    fn from_pkcs8(pkcs8: Vec<u8>) -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|e| anyhow::anyhow!("not a P-256 PKCS#8 key: {e}"))?;
        Ok(Self {
            key,
            pkcs8,
            rng,
            issuer: LAB_ISSUER.to_owned(),
            audience: LAB_AUDIENCE.to_owned(),
        })
    }

    /// The lab's key in `dir` ([`KEY_FILE`]), created (owner-only) on first use.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(pkcs8) => {
                Self::from_pkcs8(pkcs8).with_context(|| format!("reading {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let issuer = Self::generate()?;
                hitl_wire::private::dir(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                hitl_wire::private::write(&path, &issuer.pkcs8)
                    .with_context(|| format!("writing {}", path.display()))?;
                tracing::info!(path = %path.display(), "generated the lab's requester signing key");
                Ok(issuer)
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The lab's key in `dir`, which must exist (`up --local` creates it).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        Self::load_file(&dir.join(KEY_FILE))
    }

    /// The key in `path` (PKCS#8, DER), which must exist.
    pub fn load_file(path: &Path) -> anyhow::Result<Self> {
        let pkcs8 = std::fs::read(path).with_context(|| {
            format!(
                "reading the lab's requester signing key {} (does `cargo xtask up --local` run?)",
                path.display()
            )
        })?;
        Self::from_pkcs8(pkcs8)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// What a gateway needs to accept this issuer's tokens (its JWT provider), as the lab's
    /// gate policy says: a missing token reaches the gate, which denies with a reason.
    pub fn gateway_jwt(&self) -> crate::envoy::RequesterJwt {
        crate::envoy::RequesterJwt {
            issuer: self.issuer.clone(),
            audiences: vec![self.audience.clone()],
            jwks: self.jwks().to_string(),
            allow_missing: true,
        }
    }

    /// The public key as a JWKS (what the gateway verifies with).
    pub fn jwks(&self) -> Value {
        // Uncompressed SEC1 point: 0x04 || X (32 bytes) || Y (32 bytes).
        let point = self.key.public_key().as_ref();
        json!({
            "keys": [{
                "kty": "EC",
                "crv": "P-256",
                "x": B64.encode(&point[1..33]),
                "y": B64.encode(&point[33..65]),
                "kid": LAB_KEY_ID,
                "alg": JWT_ALG,
                "use": "sig",
            }]
        })
    }

    /// The lab's claims for `user`, valid for [`TOKEN_TTL`] from now.
    pub fn claims(&self, user: &str) -> Claims {
        let iat = now_secs();
        Claims {
            sub: user.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat,
            exp: iat + TOKEN_TTL.as_secs(),
        }
    }

    /// A token for `user` with the lab's claims.
    pub fn mint(&self, user: &str) -> anyhow::Result<String> {
        self.sign(&self.claims(user))
    }

    /// A token carrying exactly `claims` (tests mint expired or foreign ones with this).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        self.sign_payload(&claims.payload())
    }

    /// A token whose payload is `payload` as it is (attacks mint tokens without `exp`, or
    /// not valid yet, with this).
    pub fn sign_payload(&self, payload: &Value) -> anyhow::Result<String> {
        let header = json!({ "alg": JWT_ALG, "typ": "JWT", "kid": LAB_KEY_ID });
        let signing_input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(payload.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| anyhow::anyhow!("signing the token failed"))?;
        Ok(format!(
            "{signing_input}.{}",
            B64.encode(signature.as_ref())
        ))
    }
}

/// Replace [`LAB_JWKS_PLACEHOLDER`] with `issuer`'s JWKS in an AgentgatewayPolicy document's
/// JWT providers, or in a ConfigMap's data (the gate's copy); whether anything was replaced.
pub fn fill_lab_jwks(doc: &mut Value, issuer: &Issuer) -> bool {
    if doc.get("kind").and_then(Value::as_str) == Some("ConfigMap") {
        let Some(data) = doc.get_mut("data").and_then(Value::as_object_mut) else {
            return false;
        };
        let mut filled = false;
        for value in data.values_mut() {
            if value.as_str() == Some(LAB_JWKS_PLACEHOLDER) {
                *value = Value::String(issuer.jwks().to_string());
                filled = true;
            }
        }
        return filled;
    }
    if doc.get("kind").and_then(Value::as_str) != Some("AgentgatewayPolicy") {
        return false;
    }
    let Some(providers) = doc
        .pointer_mut("/spec/traffic/jwtAuthentication/providers")
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let mut filled = false;
    for provider in providers {
        if let Some(inline) = provider.pointer_mut("/jwks/inline")
            && inline.as_str() == Some(LAB_JWKS_PLACEHOLDER)
        {
            *inline = Value::String(issuer.jwks().to_string());
            filled = true;
        }
    }
    filled
}

/// `Authorization` header value carrying `token`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[cfg(test)]
mod tests {
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    use super::*;

    #[test]
    fn a_token_is_a_compact_es256_jws_the_jwks_verifies() {
        let issuer = Issuer::generate().unwrap();
        let token = issuer.mint("alice").unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], LAB_KEY_ID);
        let payload: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload["sub"], "alice");
        assert_eq!(payload["iss"], LAB_ISSUER);
        assert_eq!(payload["aud"], LAB_AUDIENCE);
        assert!(payload["exp"].as_u64().unwrap() > payload["iat"].as_u64().unwrap());

        let jwk = &issuer.jwks()["keys"][0];
        let mut point = vec![4u8];
        point.extend(B64.decode(jwk["x"].as_str().unwrap()).unwrap());
        point.extend(B64.decode(jwk["y"].as_str().unwrap()).unwrap());
        let signed = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(signed.as_bytes(), &B64.decode(parts[2]).unwrap())
            .expect("the JWKS verifies the token");
    }

    #[test]
    fn the_placeholder_jwks_is_filled_in() {
        let issuer = Issuer::generate().unwrap();
        let mut doc = json!({
            "kind": "AgentgatewayPolicy",
            "spec": {"traffic": {"jwtAuthentication": {"providers": [
                {"issuer": "a", "jwks": {"inline": LAB_JWKS_PLACEHOLDER}},
                {"issuer": "b", "jwks": {"inline": "{\"keys\":[1]}"}},
            ]}}}
        });
        assert!(fill_lab_jwks(&mut doc, &issuer));
        let providers = &doc["spec"]["traffic"]["jwtAuthentication"]["providers"];
        let filled: Value =
            serde_json::from_str(providers[0]["jwks"]["inline"].as_str().unwrap()).unwrap();
        assert_eq!(filled, issuer.jwks());
        assert_eq!(
            providers[1]["jwks"]["inline"], "{\"keys\":[1]}",
            "a real JWKS stays"
        );
        assert!(!fill_lab_jwks(&mut json!({"kind": "Service"}), &issuer));
        let mut config_map =
            json!({"kind": "ConfigMap", "data": {"jwks.json": LAB_JWKS_PLACEHOLDER}});
        assert!(fill_lab_jwks(&mut config_map, &issuer));
        assert_eq!(
            config_map["data"]["jwks.json"],
            Value::String(issuer.jwks().to_string())
        );
    }

    #[test]
    fn the_key_is_kept_and_reused() {
        let dir = std::env::temp_dir().join(format!("hitl-requester-{}", uuid::Uuid::new_v4()));
        let first = Issuer::load_or_create(&dir).unwrap();
        let again = Issuer::load(&dir).unwrap();
        assert_eq!(first.jwks(), again.jwks());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
