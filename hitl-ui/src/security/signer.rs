//! The one secret key: HMAC-SHA256 tags for session cookies and CSRF tokens, each under its
//! own purpose label so a tag made for one can never be replayed as the other.

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs and verifies short messages with a process-wide key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { key: <redacted> }")
    }
}

impl Signer {
    /// A signer keyed by `secret`, or by 32 random bytes when there is none.
    pub fn new(secret: Option<&str>) -> Result<Self, getrandom::Error> {
        let key = match secret {
            Some(secret) if !secret.is_empty() => secret.as_bytes().to_vec(),
            _ => random_bytes::<32>()?.to_vec(),
        };
        Ok(Self { key })
    }

    fn mac(&self, purpose: &str, message: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(message);
        mac
    }

    /// Hex tag of `message` under `purpose`.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> String {
        hex::encode(self.mac(purpose, message).finalize().into_bytes())
    }

    /// Whether `tag_hex` is the tag of `message` under `purpose` (constant-time compare).
    pub fn verify(&self, purpose: &str, message: &[u8], tag_hex: &str) -> bool {
        match hex::decode(tag_hex) {
            Ok(tag) => self.mac(purpose, message).verify_slice(&tag).is_ok(),
            Err(_) => false,
        }
    }
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_verify_only_for_same_purpose_message_and_key() {
        let a = Signer::new(Some("k1")).unwrap();
        let b = Signer::new(Some("k2")).unwrap();
        let tag = a.sign("session", b"bob");
        assert!(a.verify("session", b"bob", &tag));
        assert!(!a.verify("csrf", b"bob", &tag));
        assert!(!a.verify("session", b"bobby", &tag));
        assert!(!b.verify("session", b"bob", &tag));
        assert!(!a.verify("session", b"bob", "not hex"));
        assert!(!a.verify("session", b"bob", ""));
    }

    #[test]
    fn random_keys_differ() {
        let a = Signer::new(None).unwrap();
        let b = Signer::new(Some("")).unwrap();
        assert!(!b.verify("p", b"m", &a.sign("p", b"m")));
    }
}
