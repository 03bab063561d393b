//! `Origin` validation on every route (the MCP spec's DNS-rebinding defence, and no cross-site
//! page may POST `/reset` or read `/state`): a request without `Origin` passes (every
//! non-browser client); one whose Origin is not on the allow-list is answered 403 with a JSON
//! error before anything runs. Unconfigured, the list is the server's own loopback origins.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use hitl_wire::{env::mockdb as env, mockdb::ErrorBody};

/// One allowed origin: `scheme://host[:port]` (port `*` for any), or the literal `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Null,
    Origin {
        scheme: String,
        host: String,
        /// `None`: any port.
        port: Option<u16>,
    },
}

/// The configured allow-list.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    allowed: Arc<Vec<Allowed>>,
}

impl Origins {
    /// Parse the `ALLOWED_ORIGINS` entries; a malformed one is a start-up error. No entries:
    /// the server's own origins on loopback, `http://{localhost,127.0.0.1,[::1]}:own_port`
    /// (a page this server itself served, as a browser on the same machine sees it).
    pub fn parse(entries: &[String], own_port: u16) -> Result<Self, String> {
        let entries: Vec<&str> = entries
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            let own = ["localhost", "127.0.0.1", "[::1]"].map(|host| Allowed::Origin {
                scheme: "http".into(),
                host: host.into(),
                port: Some(own_port),
            });
            return Ok(Self {
                allowed: Arc::new(own.into()),
            });
        }
        let allowed = entries
            .into_iter()
            .map(|entry| {
                if entry == "null" {
                    return Ok(Allowed::Null);
                }
                let (scheme, host, port) = split(entry, true).ok_or_else(|| {
                    format!(
                        "{}: `{entry}` is not an origin like http://localhost:8080, \
                         https://app.example.com, http://localhost:* or null",
                        env::ALLOWED_ORIGINS
                    )
                })?;
                Ok(Allowed::Origin { scheme, host, port })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            allowed: Arc::new(allowed),
        })
    }

    /// Whether a request carrying `Origin: origin` may go on.
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim();
        if origin == "null" {
            return self.allowed.contains(&Allowed::Null);
        }
        let Some((scheme, host, Some(port))) = split(origin, false) else {
            return false;
        };
        self.allowed.iter().any(|allowed| match allowed {
            Allowed::Null => false,
            Allowed::Origin {
                scheme: s,
                host: h,
                port: p,
            } => *s == scheme && *h == host && p.is_none_or(|p| p == port),
        })
    }
}

/// `scheme://host[:port]` → (scheme, host, port), lowercased, the scheme's default port filled
/// in; `:*` (only when `wildcard`) gives `None`. No path, query or user info.
fn split(text: &str, wildcard: bool) -> Option<(String, String, Option<u16>)> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    // `[::1]:8080`, `host:8080`, `host`.
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty() && (rest.starts_with('[') == host.ends_with(']')) =>
        {
            if wildcard && port == "*" {
                (host, None)
            } else {
                (host, Some(port.parse().ok()?))
            }
        }
        _ => (rest, Some(default_port)),
    };
    Some((scheme, host.to_ascii_lowercase(), port))
}

/// The middleware: 403 `{"error": …}` for an Origin not allowed.
pub async fn check(State(origins): State<Origins>, request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return next.run(request).await;
    };
    let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
    if origins.allows(&origin) {
        return next.run(request).await;
    }
    tracing::warn!(%origin, path = %request.uri().path(), "refused a request from a browser origin not allowed");
    let error = format!(
        "Forbidden: Origin `{origin}` is not allowed by mock-db-mcp (DNS-rebinding and \
         cross-site protection); nothing was executed. Allowed origins are set with {} \
         (comma-separated scheme://host[:port]); requests without an Origin header are not \
         affected.",
        env::ALLOWED_ORIGINS
    );
    (StatusCode::FORBIDDEN, Json(ErrorBody { error })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Origins {
        Origins::parse(
            &list.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            8080,
        )
        .unwrap()
    }

    #[test]
    fn unconfigured_only_the_servers_own_loopback_origins_pass() {
        let own = origins(&[]);
        for origin in [
            "http://localhost:8080",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
        ] {
            assert!(own.allows(origin), "{origin}");
        }
        for origin in [
            "http://localhost",
            "http://localhost:8081",
            "https://localhost:8080",
            "http://evil.example:8080",
            "null",
            "",
        ] {
            assert!(!own.allows(origin), "{origin}");
        }
    }

    #[test]
    fn a_configured_list_replaces_the_default() {
        let list = origins(&["https://app.example.com"]);
        assert!(list.allows("https://app.example.com"));
        assert!(!list.allows("http://localhost:8080"));
    }

    #[test]
    fn scheme_host_and_port_must_match() {
        let list = origins(&[
            "http://localhost:8080",
            "https://App.Example.com",
            "http://127.0.0.1:*",
        ]);
        assert!(list.allows("http://localhost:8080"));
        assert!(list.allows("HTTP://LOCALHOST:8080"));
        assert!(!list.allows("http://localhost:8081"));
        assert!(!list.allows("http://localhost"));
        assert!(!list.allows("https://localhost:8080"));
        assert!(list.allows("https://app.example.com"));
        assert!(list.allows("https://app.example.com:443"));
        assert!(!list.allows("https://app.example.com.evil.example"));
        assert!(!list.allows("http://app.example.com"));
        assert!(list.allows("http://127.0.0.1:5173"));
        assert!(!list.allows("http://127.0.0.2:5173"));
        assert!(!list.allows("null"));
        assert!(!list.allows("http://localhost:8080/path"));
        assert!(!list.allows("garbage"));
    }

    #[test]
    fn null_and_ipv6_are_explicit() {
        let list = origins(&["null", "http://[::1]:8080"]);
        assert!(list.allows("null"));
        assert!(list.allows("http://[::1]:8080"));
        assert!(!list.allows("http://[::1]:8081"));
    }

    #[test]
    fn malformed_entries_are_refused_at_start() {
        for bad in ["localhost", "ftp://x", "http://x/path", "http://x:port"] {
            assert!(Origins::parse(&[bad.to_string()], 8080).is_err(), "{bad}");
        }
    }
}
