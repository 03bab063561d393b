//! The OpenID Connect sign-in's session cookie: the reviewer's ID token exactly as the
//! provider issued it (verified once, at sign-in: signature, issuer, audience, expiry, nonce),
//! its issue time here, and a tag over both, so it cannot be swapped for another token or
//! re-dated without the key. The reviewer's name and groups are read from the token's claims;
//! the session ends when the token expires, and every decision carries the token to the gate,
//! which verifies it again itself.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde_json::Value;

use super::{Signer, credentials::valid_user};

const PURPOSE: &str = "oidc-session";
/// Longest ID token kept in a cookie (browsers keep about 4 KB per cookie).
pub const MAX_TOKEN_BYTES: usize = 3500;

/// Which ID-token claims name the reviewer and list their groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub name: String,
    pub groups: String,
}

/// What an ID token says about its reviewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    pub user: String,
    pub groups: Vec<String>,
    /// Unix seconds (`exp`).
    pub expires: i64,
}

/// Why an ID token names no reviewer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the ID token is not a JWT")]
    NotAJwt,
    #[error("the ID token has no `{0}` claim")]
    Missing(String),
    #[error("the ID token's `{0}` claim is not a valid reviewer name")]
    BadName(String),
    #[error("the ID token's `{0}` claim is not a list of group names")]
    BadGroups(String),
}

/// The reviewer an ID token names (its claims read, not verified: the caller verified the
/// token, or holds it under our tag).
pub fn reviewer(id_token: &str, names: &ClaimNames) -> Result<Reviewer, ClaimsError> {
    let payload = id_token.split('.').nth(1).ok_or(ClaimsError::NotAJwt)?;
    let claims: Value = B64
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(ClaimsError::NotAJwt)?;
    let user = claims
        .get(&names.name)
        .ok_or_else(|| ClaimsError::Missing(names.name.clone()))?
        .as_str()
        .filter(|u| valid_user(u))
        .ok_or_else(|| ClaimsError::BadName(names.name.clone()))?
        .to_owned();
    let groups = match claims.get(&names.groups) {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|g| g.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ClaimsError::BadGroups(names.groups.clone()))?,
        Some(_) => return Err(ClaimsError::BadGroups(names.groups.clone())),
    };
    let expires = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| ClaimsError::Missing("exp".into()))?;
    Ok(Reviewer {
        user,
        groups,
        expires,
    })
}

/// A genuine session (its token possibly expired: see [`Session::reviewer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_token: String,
    /// Unix milliseconds when it was issued here.
    pub issued_ms: i64,
}

/// Cookie value for `id_token`, signed in at `issued_ms`.
pub fn issue(signer: &Signer, id_token: &str, issued_ms: i64) -> String {
    let body = format!("{id_token}.{issued_ms}");
    let tag = signer.sign(PURPOSE, body.as_bytes());
    format!("{body}.{tag}")
}

/// The session a cookie value stands for, if we issued it.
pub fn verify(signer: &Signer, value: &str) -> Option<Session> {
    let (body, tag) = value.rsplit_once('.')?;
    if !signer.verify(PURPOSE, body.as_bytes(), tag) {
        return None;
    }
    let (id_token, issued_ms) = body.rsplit_once('.')?;
    Some(Session {
        id_token: id_token.to_owned(),
        issued_ms: issued_ms.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: Value) -> String {
        format!(
            "eyJhbGciOiJFUzI1NiJ9.{}.sig",
            B64.encode(claims.to_string())
        )
    }

    fn names() -> ClaimNames {
        ClaimNames {
            name: "preferred_username".into(),
            groups: "groups".into(),
        }
    }

    #[test]
    fn the_claims_name_the_reviewer_and_their_groups() {
        let t = token(
            serde_json::json!({"preferred_username": "dba-ann", "groups": ["dba"], "exp": 9}),
        );
        assert_eq!(
            reviewer(&t, &names()),
            Ok(Reviewer {
                user: "dba-ann".into(),
                groups: vec!["dba".into()],
                expires: 9
            })
        );
        let no_groups = token(serde_json::json!({"preferred_username": "x", "exp": 9}));
        assert_eq!(
            reviewer(&no_groups, &names()).unwrap().groups,
            Vec::<String>::new()
        );
        let bad = token(serde_json::json!({"preferred_username": "x", "groups": "dba", "exp": 9}));
        assert!(matches!(
            reviewer(&bad, &names()),
            Err(ClaimsError::BadGroups(_))
        ));
        let look_alike = token(serde_json::json!({"preferred_username": "alic\u{0435}", "exp": 9}));
        assert!(matches!(
            reviewer(&look_alike, &names()),
            Err(ClaimsError::BadName(_))
        ));
        assert_eq!(reviewer("junk", &names()), Err(ClaimsError::NotAJwt));
    }

    #[test]
    fn the_cookie_binds_the_token_and_its_time() {
        let signer = Signer::new(Some("k")).unwrap();
        let t = token(serde_json::json!({"preferred_username": "x", "exp": 9}));
        let cookie = issue(&signer, &t, 5);
        assert_eq!(
            verify(&signer, &cookie),
            Some(Session {
                id_token: t.clone(),
                issued_ms: 5
            })
        );
        let other = token(serde_json::json!({"preferred_username": "root", "exp": 99}));
        let swapped = cookie.replacen(&t, &other, 1);
        assert_eq!(verify(&signer, &swapped), None);
        assert_eq!(verify(&signer, &cookie.replace(".5.", ".6.")), None);
        assert_eq!(verify(&Signer::new(Some("other")).unwrap(), &cookie), None);
    }
}
