//! CSRF defence for every state-changing request, two independent checks:
//! 1. same origin: the `Origin` (or, failing that, `Referer`) must name this very host;
//! 2. a token: each browser gets a random HttpOnly `hitl_csrf` cookie, and pages embed
//!    `HMAC(key, cookie)`; a request must carry that token in a header or form field. Another
//!    site can neither read the cookie nor compute the token.

use axum::http::{HeaderMap, header};

use super::{Signer, cookies, signer::random_bytes};

const PURPOSE: &str = "csrf";
/// Request header the page's script sends the token in.
pub const HEADER: &str = "x-csrf-token";

/// Why a state-changing request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsrfError {
    #[error("cross-site request refused: Origin/Referer does not match this site")]
    CrossOrigin,
    #[error("request refused: no Origin or Referer header")]
    NoOrigin,
    #[error("missing or invalid CSRF token: reload the page and try again")]
    BadToken,
}

/// A fresh random cookie value for a browser that has none.
pub fn new_cookie() -> Result<String, getrandom::Error> {
    Ok(hex::encode(random_bytes::<16>()?))
}

/// The token pages embed for the browser holding `cookie`.
pub fn token_for(signer: &Signer, cookie: &str) -> String {
    signer.sign(PURPOSE, cookie.as_bytes())
}

/// Both checks for a state-changing request. `form_token` is the form field, if the body had
/// one; the header wins when both are present.
pub fn check(
    signer: &Signer,
    headers: &HeaderMap,
    form_token: Option<&str>,
) -> Result<(), CsrfError> {
    check_cookie(signer, headers, form_token, cookies::CSRF)
}

/// [`check`] against a CSRF cookie of another name: another page on the same host (cookies
/// are not separated by port) keeps its own.
pub fn check_cookie(
    signer: &Signer,
    headers: &HeaderMap,
    form_token: Option<&str>,
    cookie_name: &str,
) -> Result<(), CsrfError> {
    same_origin(headers)?;
    let cookie = cookies::get(headers, cookie_name).ok_or(CsrfError::BadToken)?;
    let token = headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .or(form_token)
        .ok_or(CsrfError::BadToken)?;
    if cookie.is_empty() || !signer.verify(PURPOSE, cookie.as_bytes(), token) {
        return Err(CsrfError::BadToken);
    }
    Ok(())
}

/// `Origin` (or `Referer`) must have the request's own `Host` as its authority. The scheme is
/// not compared: a TLS-terminating proxy may sit in front.
pub fn same_origin(headers: &HeaderMap) -> Result<(), CsrfError> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or(CsrfError::CrossOrigin)?;
    let claimed = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        // Browsers send `Origin: null` from sandboxed or privacy-sensitive contexts.
        Some("null") => return Err(CsrfError::CrossOrigin),
        Some(origin) => origin,
        None => headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .ok_or(CsrfError::NoOrigin)?,
    };
    match authority(claimed) {
        Some(authority) if authority.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(CsrfError::CrossOrigin),
    }
}

/// `host[:port]` of an absolute http(s) URL.
fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    (!authority.is_empty() && !authority.contains('@')).then_some(authority)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn origin_must_match_host() {
        let ok = headers(&[
            ("host", "127.0.0.1:8090"),
            ("origin", "http://127.0.0.1:8090"),
        ]);
        assert_eq!(same_origin(&ok), Ok(()));
        let behind_tls = headers(&[("host", "ui.example"), ("origin", "https://ui.example")]);
        assert_eq!(same_origin(&behind_tls), Ok(()));
        let evil = headers(&[
            ("host", "127.0.0.1:8090"),
            ("origin", "http://evil.example"),
        ]);
        assert_eq!(same_origin(&evil), Err(CsrfError::CrossOrigin));
        let other_port = headers(&[("host", "127.0.0.1:8090"), ("origin", "http://127.0.0.1:1")]);
        assert_eq!(same_origin(&other_port), Err(CsrfError::CrossOrigin));
        let null = headers(&[("host", "a"), ("origin", "null")]);
        assert_eq!(same_origin(&null), Err(CsrfError::CrossOrigin));
        let userinfo = headers(&[("host", "a"), ("origin", "http://a@b")]);
        assert_eq!(same_origin(&userinfo), Err(CsrfError::CrossOrigin));
    }

    #[test]
    fn referer_is_the_fallback_and_one_is_required() {
        let referer = headers(&[("host", "a:1"), ("referer", "http://a:1/history?x=1")]);
        assert_eq!(same_origin(&referer), Ok(()));
        let evil_path = headers(&[("host", "a:1"), ("referer", "http://evil/a:1")]);
        assert_eq!(same_origin(&evil_path), Err(CsrfError::CrossOrigin));
        assert_eq!(
            same_origin(&headers(&[("host", "a:1")])),
            Err(CsrfError::NoOrigin)
        );
    }

    #[test]
    fn token_must_match_this_browsers_cookie() {
        let signer = Signer::new(Some("k")).unwrap();
        let token = token_for(&signer, "c1");
        let base = [
            ("host", "h"),
            ("origin", "http://h"),
            ("cookie", "hitl_csrf=c1"),
        ];

        let mut with_header = base.to_vec();
        with_header.push(("x-csrf-token", &token));
        assert_eq!(check(&signer, &headers(&with_header), None), Ok(()));
        assert_eq!(check(&signer, &headers(&base), Some(&token)), Ok(()));

        assert_eq!(
            check(&signer, &headers(&base), None),
            Err(CsrfError::BadToken)
        );
        assert_eq!(
            check(&signer, &headers(&base), Some("00")),
            Err(CsrfError::BadToken)
        );
        let other_browser = [
            ("host", "h"),
            ("origin", "http://h"),
            ("cookie", "hitl_csrf=c2"),
        ];
        assert_eq!(
            check(&signer, &headers(&other_browser), Some(&token)),
            Err(CsrfError::BadToken)
        );
        let no_cookie = [("host", "h"), ("origin", "http://h")];
        assert_eq!(
            check(&signer, &headers(&no_cookie), Some(&token)),
            Err(CsrfError::BadToken)
        );
        let cross = [
            ("host", "h"),
            ("origin", "http://evil"),
            ("cookie", "hitl_csrf=c1"),
        ];
        assert_eq!(
            check(&signer, &headers(&cross), Some(&token)),
            Err(CsrfError::CrossOrigin)
        );
    }

    #[test]
    fn cookies_are_random() {
        assert_ne!(new_cookie().unwrap(), new_cookie().unwrap());
        assert_eq!(new_cookie().unwrap().len(), 32);
    }
}
