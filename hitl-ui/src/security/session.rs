//! The built-in sign-in's session cookie: `hex(user).issued_ms.expires.tag`, signed, so it
//! cannot be forged or extended without the key. The issue time lets a sign-out end every
//! session issued before it (see [`super::identity`]).

use super::Signer;

const PURPOSE: &str = "session";

/// A genuine, unexpired session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    /// Unix milliseconds when it was issued.
    pub issued_ms: i64,
}

/// Cookie value for `user`, issued at `issued_ms` (unix ms), valid until `expires` (unix s).
pub fn issue(signer: &Signer, user: &str, issued_ms: i64, expires: i64) -> String {
    let body = format!("{}.{issued_ms}.{expires}", hex::encode(user));
    let tag = signer.sign(PURPOSE, body.as_bytes());
    format!("{body}.{tag}")
}

/// The session a cookie value stands for, if it is genuine and not expired at `now`.
pub fn verify(signer: &Signer, value: &str, now: i64) -> Option<Session> {
    let (body, tag) = value.rsplit_once('.')?;
    if !signer.verify(PURPOSE, body.as_bytes(), tag) {
        return None;
    }
    let mut parts = body.split('.');
    let (user_hex, issued_ms, expires) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let expires: i64 = expires.parse().ok()?;
    if now >= expires {
        return None;
    }
    Some(Session {
        user: String::from_utf8(hex::decode(user_hex).ok()?).ok()?,
        issued_ms: issued_ms.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_until_expiry() {
        let signer = Signer::new(Some("k")).unwrap();
        let cookie = issue(&signer, "bob", 5, 1_000);
        let session = verify(&signer, &cookie, 999).unwrap();
        assert_eq!((session.user.as_str(), session.issued_ms), ("bob", 5));
        assert_eq!(verify(&signer, &cookie, 1_000), None);
    }

    #[test]
    fn tampering_is_detected() {
        let signer = Signer::new(Some("k")).unwrap();
        let cookie = issue(&signer, "bob", 5, 1_000);
        let (_, rest) = cookie.split_once('.').unwrap();
        let as_alice = format!("{}.{rest}", hex::encode("alice"));
        assert_eq!(verify(&signer, &as_alice, 0), None);
        let extended = cookie.replace(".1000.", ".9999.");
        assert_eq!(verify(&signer, &extended, 0), None);
        let reissued = cookie.replace(".5.", ".6.");
        assert_eq!(verify(&signer, &reissued, 0), None);
        let other_key = Signer::new(Some("other")).unwrap();
        assert_eq!(verify(&other_key, &cookie, 0), None);
        for junk in ["", ".", "..", "zz.1.aa", "626f62.x.00"] {
            assert_eq!(verify(&signer, junk, 0), None, "{junk:?}");
        }
    }
}
