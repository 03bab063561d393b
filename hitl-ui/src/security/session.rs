//! The built-in sign-in's session cookie: `hex(user).expires.tag`, stateless and signed, so
//! it cannot be forged or extended without the key.

use super::Signer;

const PURPOSE: &str = "session";

/// Cookie value for `user`, valid until `expires` (unix seconds).
pub fn issue(signer: &Signer, user: &str, expires: i64) -> String {
    let body = format!("{}.{expires}", hex::encode(user));
    let tag = signer.sign(PURPOSE, body.as_bytes());
    format!("{body}.{tag}")
}

/// The user a cookie value was issued to, if it is genuine and not expired at `now`.
pub fn verify(signer: &Signer, value: &str, now: i64) -> Option<String> {
    let (body, tag) = value.rsplit_once('.')?;
    if !signer.verify(PURPOSE, body.as_bytes(), tag) {
        return None;
    }
    let (user_hex, expires) = body.split_once('.')?;
    let expires: i64 = expires.parse().ok()?;
    if now >= expires {
        return None;
    }
    String::from_utf8(hex::decode(user_hex).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_until_expiry() {
        let signer = Signer::new(Some("k")).unwrap();
        let cookie = issue(&signer, "bob", 1_000);
        assert_eq!(verify(&signer, &cookie, 999).as_deref(), Some("bob"));
        assert_eq!(verify(&signer, &cookie, 1_000), None);
    }

    #[test]
    fn tampering_is_detected() {
        let signer = Signer::new(Some("k")).unwrap();
        let cookie = issue(&signer, "bob", 1_000);
        let (_, rest) = cookie.split_once('.').unwrap();
        let as_alice = format!("{}.{rest}", hex::encode("alice"));
        assert_eq!(verify(&signer, &as_alice, 0), None);
        let extended = cookie.replace(".1000.", ".9999.");
        assert_eq!(verify(&signer, &extended, 0), None);
        let other_key = Signer::new(Some("other")).unwrap();
        assert_eq!(verify(&other_key, &cookie, 0), None);
        for junk in ["", ".", "..", "zz.1.aa", "626f62.x.00"] {
            assert_eq!(verify(&signer, junk, 0), None, "{junk:?}");
        }
    }
}
