//! Who may reach which route: the `Host` allow-list on every route but `/healthz` (DNS
//! rebinding: a page whose name an attacker points at this address must not read `/state` or
//! reset the data), and the credential `POST /reset` demands. (`Origin` is checked in
//! [`crate::origin`].)

use std::sync::Arc;

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use hitl_serve::hosts::{self, AllowedHosts};
use hitl_wire::{env::mockdb as env, mockdb::ErrorBody};

/// The middleware: 421 for a `Host` not on the list, naming it and the setting.
pub async fn check_host(
    State(allowed): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    if allowed.allows(request.headers(), request.uri()) {
        return next.run(request).await;
    }
    hosts::misdirected("mock-db-mcp", request.headers(), request.uri())
}

/// The reset credential: `Authorization: Bearer <token>`, compared in constant time.
#[derive(Clone)]
pub struct ResetToken(Arc<str>);

impl ResetToken {
    pub fn new(token: &str) -> Self {
        Self(Arc::from(token.trim()))
    }

    /// Whether `headers` carry the token (a refusal is logged).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        use subtle::ConstantTimeEq as _;
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.0.as_bytes()))) {
            return true;
        }
        tracing::warn!(
            credential = if presented.is_some() { "wrong" } else { "none" },
            "refused a /reset without its credential; nothing was reset"
        );
        false
    }
}

/// The answer to a `/reset` without the credential: 401, nothing reset.
pub fn unauthorized() -> Response {
    let error = format!(
        "/reset needs `Authorization: Bearer <{}>`; nothing was reset",
        env::RESET_TOKEN
    );
    let mut response = (StatusCode::UNAUTHORIZED, Json(ErrorBody { error })).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(authorization: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn only_the_exact_token_resets() {
        let token = ResetToken::new("s3cret");
        assert!(token.admits(&with(Some("Bearer s3cret"))));
        for refused in [
            None,
            Some("Bearer "),
            Some("Bearer s3cre"),
            Some("Bearer s3cretx"),
            Some("s3cret"),
            Some("Basic s3cret"),
        ] {
            assert!(!token.admits(&with(refused)), "{refused:?}");
        }
    }
}
