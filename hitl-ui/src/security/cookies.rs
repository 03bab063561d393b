//! Reading the `Cookie` header and writing `Set-Cookie`: always HttpOnly, SameSite=Strict,
//! Path=/; `Secure` when configured.

use std::time::Duration;

use axum::http::{HeaderMap, header};

/// Name of the signed sign-in cookie.
pub const SESSION: &str = hitl_wire::ui::SESSION_COOKIE;
/// Name of the OpenID Connect sign-in's session cookie (the ID token, tagged).
pub const OIDC_SESSION: &str = "hitl_oidc_session";
/// Name of the cookie that carries a sign-in in progress at the provider (state, nonce, PKCE
/// verifier, tagged): `SameSite=Lax`, so it comes back with the provider's redirect.
pub const OIDC_FLOW: &str = "hitl_oidc_flow";
/// Set by a sign-out: the next sign-in at the provider asks for the password again rather
/// than riding the provider's session (`SameSite=Lax`, ten minutes).
pub const OIDC_RELOGIN: &str = "hitl_oidc_relogin";
/// Name of the random per-browser CSRF cookie.
pub const CSRF: &str = hitl_wire::ui::CSRF_COOKIE;

/// Value of cookie `name` from the request's `Cookie` headers, if present.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// Cookie attributes shared by every cookie we set.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub secure: bool,
}

impl Policy {
    /// `Set-Cookie` value for `name=value` living `max_age`. `value` must be a cookie-safe token
    /// (we only ever set hex and dot-separated hex).
    pub fn set(&self, name: &str, value: &str, max_age: Duration) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{name}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
            max_age.as_secs()
        )
    }

    /// The same, `SameSite=Lax`: sent on a top-level navigation from another site (the
    /// provider's redirect back), as a `Strict` cookie is not.
    pub fn set_lax(&self, name: &str, value: &str, max_age: Duration) -> String {
        self.set(name, value, max_age)
            .replace("SameSite=Strict", "SameSite=Lax")
    }

    /// `Set-Cookie` value that deletes `name`.
    pub fn clear(&self, name: &str) -> String {
        self.set(name, "", Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_cookie_among_many_headers_and_pairs() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; hitl_csrf=abc"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("hitl_session=\"x.y\""),
        );
        assert_eq!(get(&headers, CSRF), Some("abc"));
        assert_eq!(get(&headers, SESSION), Some("x.y"));
        assert_eq!(get(&headers, "missing"), None);
        assert_eq!(get(&HeaderMap::new(), CSRF), None);
    }

    #[test]
    fn set_cookie_is_strict_and_http_only() {
        let plain = Policy { secure: false }.set(SESSION, "v", Duration::from_secs(60));
        assert_eq!(
            plain,
            "hitl_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        let secure = Policy { secure: true }.clear(CSRF);
        assert_eq!(
            secure,
            "hitl_csrf=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
