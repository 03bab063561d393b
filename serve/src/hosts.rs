//! The `Host` allow-list (`ALLOWED_HOSTS`) every browser-reachable service checks (hitl-ui,
//! lab-chat, mock-db-mcp): DNS-rebinding protection. A page on another site whose name an
//! attacker points at a server's address would otherwise be same-origin with it (and could
//! sign in and decide, or read the database's audit); its requests carry the attacker's host
//! name, so anything whose `Host` is not listed is refused.
//!
//! Entries are `host` (any port) or `host:port`, case-insensitive; `[::1]` for IPv6. `*`
//! accepts every host: an explicit and loudly logged opt-out.

use axum::{
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse as _, Response},
};

/// Used when `ALLOWED_HOSTS` is unset: the loopback names, any port (the local lab, tests and
/// `kubectl port-forward`).
pub const DEFAULT: &str = "localhost,127.0.0.1,[::1]";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    host: String,
    port: Option<u16>,
}

/// The parsed allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHosts {
    Any,
    Only(Vec<Entry>),
}

impl AllowedHosts {
    /// Parse a comma-separated list.
    pub fn parse(text: &str) -> Result<Self, String> {
        let items: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Err(
                "ALLOWED_HOSTS is empty: list the host names the service is reached by (e.g. \
                        hitl-ui.example.com,localhost), or `*` for any"
                    .into(),
            );
        }
        if items.contains(&"*") {
            return Ok(Self::Any);
        }
        items
            .into_iter()
            .map(|item| {
                split(item).ok_or_else(|| {
                    format!(
                        "ALLOWED_HOSTS: `{item}` is not a host or host:port (e.g. localhost:8090)"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::Only)
    }

    /// Whether a request with these headers / this URI may be served. HTTP/1 names the host
    /// in `Host`, HTTP/2 in the URI's authority.
    pub fn allows(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        let Self::Only(entries) = self else {
            return true;
        };
        let Some(given) = request_host(headers, uri) else {
            return false;
        };
        let Some(given) = split(&given) else {
            return false;
        };
        entries
            .iter()
            .any(|e| e.host == given.host && (e.port.is_none() || e.port == given.port))
    }

    /// For the log line at start-up.
    pub fn describe(&self) -> String {
        match self {
            Self::Any => "* (any host: DNS-rebinding protection OFF)".into(),
            Self::Only(entries) => entries
                .iter()
                .map(|e| match e.port {
                    Some(port) => format!("{}:{port}", e.host),
                    None => e.host.clone(),
                })
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// The host the request names.
pub fn request_host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` → lowercased host and optional port.
fn split(text: &str) -> Option<Entry> {
    let text = text.trim().to_ascii_lowercase();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?.parse().ok()?),
        };
        (format!("[{inner}]"), port)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port.parse().ok()?)),
            None => (text.clone(), None),
        }
    };
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'));
    valid.then_some(Entry { host, port })
}

/// The answer to a request for a host `service` is not configured for: 421, naming the host
/// and what to configure (the request is logged).
pub fn misdirected(service: &str, headers: &HeaderMap, uri: &Uri) -> Response {
    let host = request_host(headers, uri).unwrap_or_else(|| "(none)".into());
    tracing::warn!(%host, path = %uri.path(), "refused a request for a host not in ALLOWED_HOSTS");
    (
        StatusCode::MISDIRECTED_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "{service} does not answer to the host `{host}`: it is not in ALLOWED_HOSTS \
             (DNS-rebinding protection). Open it by one of its configured names, or add this \
             one to ALLOWED_HOSTS.\n"
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_host(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        headers
    }

    fn allows(list: &str, host: &str) -> bool {
        AllowedHosts::parse(list)
            .unwrap()
            .allows(&with_host(host), &Uri::from_static("/"))
    }

    #[test]
    fn the_default_is_loopback_on_any_port() {
        assert!(allows(DEFAULT, "127.0.0.1:18090"));
        assert!(allows(DEFAULT, "LOCALHOST:8090"));
        assert!(allows(DEFAULT, "[::1]:8090"));
        assert!(!allows(DEFAULT, "evil.example:18090"));
        assert!(!allows(DEFAULT, "localhost.evil.example"));
    }

    #[test]
    fn a_port_pins_the_port() {
        let list = "hitl-ui.hitl-lab.svc:8080,localhost:8090";
        assert!(allows(list, "hitl-ui.hitl-lab.svc:8080"));
        assert!(!allows(list, "hitl-ui.hitl-lab.svc:8081"));
        assert!(!allows(list, "hitl-ui.hitl-lab.svc"));
        assert!(allows(list, "localhost:8090"));
    }

    #[test]
    fn no_host_is_refused_and_http2_authority_counts() {
        let list = AllowedHosts::parse("localhost").unwrap();
        assert!(!list.allows(&HeaderMap::new(), &Uri::from_static("/")));
        let h2 = Uri::from_static("http://localhost:8090/");
        assert!(list.allows(&HeaderMap::new(), &h2));
    }

    #[test]
    fn star_is_any_and_nonsense_is_refused() {
        assert_eq!(AllowedHosts::parse("*").unwrap(), AllowedHosts::Any);
        assert!(allows("*", "anything.example"));
        assert!(AllowedHosts::parse("").is_err());
        assert!(AllowedHosts::parse("local host").is_err());
        assert!(AllowedHosts::parse("host:port").is_err());
    }
}
