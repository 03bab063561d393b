//! Unpacking a gateway's `CheckRequest` (Envoy's or agentgateway's) into the parts the gate
//! looks at: method, path, headers, the forwarded body bytes (and whether they came as text),
//! the declared size, the route the gateway says the request is on, and the requester token it
//! carries (verified by the gate, [`Incoming::verify`]).

use std::collections::BTreeMap;

use envoy_types::ext_authz::v3::pb::CheckRequest;

use crate::{
    classify::Frame,
    requester::{Presented, Verified, verify::Verifier},
};

/// The HTTP request behind one `Check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub method: String,
    pub path: String,
    /// Lower-case names; repeated headers are joined with `,` (as Envoy sends them).
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The body came as `body` (text) rather than `raw_body` (bytes): a gateway that sends
    /// text replaces invalid UTF-8 with U+FFFD (agentgateway always does; Envoy unless told
    /// `pack_as_bytes`), so these may not be the bytes it forwards.
    pub body_is_text: bool,
    /// `http.size`; `None` for -1 (agentgateway: the body was cut at its limit; Envoy: no
    /// Content-Length).
    pub declared_size: Option<u64>,
    /// `context_extensions["route"]`: the route the gateway matched (both lab gateways set
    /// it on the gated route), for the log; the raw path may not say it.
    pub route: Option<String>,
    /// The requester token the Check carries (header or `metadata_context`), unverified.
    pub presented: Presented,
    /// What the gate proved of it: [`Verified::Absent`] until [`Incoming::verify`].
    pub verified: Verified,
}

/// The `context_extensions` key naming the gateway's route.
pub const ROUTE_CONTEXT_KEY: &str = "route";

/// A `CheckRequest` that can't be read as an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the gateway's check request carries no HTTP request attributes")]
    NoHttpAttributes,
    #[error(
        "the gateway sent the body both as text and as bytes ({text} and {raw} bytes): ambiguous"
    )]
    TwoBodies { text: usize, raw: usize },
}

impl TryFrom<CheckRequest> for Incoming {
    type Error = RequestError;

    fn try_from(check: CheckRequest) -> Result<Self, Self::Error> {
        let mut attributes = check.attributes.ok_or(RequestError::NoHttpAttributes)?;
        let route = attributes.context_extensions.remove(ROUTE_CONTEXT_KEY);
        let http = attributes
            .request
            .and_then(|r| r.http)
            .ok_or(RequestError::NoHttpAttributes)?;
        tracing::debug!(
            route = route.as_deref().unwrap_or("-"),
            method = %http.method,
            path = %http.path,
            size = http.size,
            "check"
        );
        // Envoy fills `body` (UTF-8 text) by default and `raw_body` with `pack_as_bytes`;
        // agentgateway always fills `body`.
        let body_is_text = http.raw_body.is_empty() && !http.body.is_empty();
        let body = match (http.body.is_empty(), http.raw_body.is_empty()) {
            (_, true) => http.body.into_bytes(),
            (true, false) => http.raw_body,
            (false, false) => {
                return Err(RequestError::TwoBodies {
                    text: http.body.len(),
                    raw: http.raw_body.len(),
                });
            }
        };
        // `headers` by default; `header_map` when Envoy is told to `encode_raw_headers`.
        // Lower-cased in place: gateways send lower-case names already, so nothing is copied.
        let mut headers: BTreeMap<String, String> = http
            .headers
            .into_iter()
            .map(|(mut k, v)| {
                k.make_ascii_lowercase();
                (k, v)
            })
            .collect();
        if headers.is_empty() {
            for mut h in http.header_map.map(|m| m.headers).unwrap_or_default() {
                h.key.make_ascii_lowercase();
                let value = if h.raw_value.is_empty() {
                    h.value
                } else {
                    String::from_utf8_lossy(&h.raw_value).into_owned()
                };
                headers
                    .entry(h.key)
                    .and_modify(|v| {
                        v.push(',');
                        v.push_str(&value);
                    })
                    .or_insert(value);
            }
        }
        let presented = Presented::from_check(&headers, attributes.metadata_context.as_ref());
        Ok(Self {
            method: http.method,
            path: http.path,
            headers,
            body,
            body_is_text,
            declared_size: u64::try_from(http.size).ok(),
            route,
            presented,
            verified: Verified::Absent,
        })
    }
}

impl Incoming {
    /// Verify the presented requester token with `verifier` (none under the opt-out).
    pub fn verify(&mut self, verifier: Option<&Verifier>) {
        self.verified = Verified::check(&self.presented, verifier);
    }

    pub fn frame(&self) -> Frame<'_> {
        Frame {
            method: &self.method,
            path: &self.path,
            headers: &self.headers,
            body: &self.body,
            body_is_text: self.body_is_text,
            declared_size: self.declared_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::{
        config::core::v3::{HeaderMap, HeaderValue},
        service::auth::v3::{
            AttributeContext,
            attribute_context::{HttpRequest, Request},
        },
    };

    use super::*;

    fn check(http: HttpRequest) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(Request {
                    http: Some(http),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    fn http() -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/privileged/mcp".into(),
            size: 2,
            headers: [("Content-Type".to_owned(), "application/json".to_owned())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn text_body() {
        let incoming = Incoming::try_from(check(HttpRequest {
            body: "{}".into(),
            ..http()
        }))
        .unwrap();
        assert_eq!(incoming.body, b"{}");
        assert!(incoming.body_is_text);
        assert_eq!(incoming.declared_size, Some(2));
        assert_eq!(incoming.headers["content-type"], "application/json");
        assert_eq!(incoming.method, "POST");
        assert_eq!(incoming.path, "/privileged/mcp");
    }

    #[test]
    fn raw_body() {
        let incoming = Incoming::try_from(check(HttpRequest {
            raw_body: vec![0xff, b'{'],
            ..http()
        }))
        .unwrap();
        assert_eq!(incoming.body, [0xff, b'{']);
        assert!(!incoming.body_is_text);
    }

    #[test]
    fn the_route_comes_from_context_extensions() {
        let mut request = check(http());
        let attributes = request.attributes.as_mut().unwrap();
        attributes
            .context_extensions
            .insert("route".into(), "privileged-mcp".into());
        let incoming = Incoming::try_from(request).unwrap();
        assert_eq!(incoming.route.as_deref(), Some("privileged-mcp"));
        assert_eq!(Incoming::try_from(check(http())).unwrap().route, None);
    }

    #[test]
    fn both_bodies_are_ambiguous() {
        let err = Incoming::try_from(check(HttpRequest {
            body: "{}".into(),
            raw_body: b"{}".to_vec(),
            ..http()
        }))
        .unwrap_err();
        assert_eq!(err, RequestError::TwoBodies { text: 2, raw: 2 });
    }

    #[test]
    fn unknown_size_is_none() {
        let incoming = Incoming::try_from(check(HttpRequest { size: -1, ..http() })).unwrap();
        assert_eq!(incoming.declared_size, None);
    }

    #[test]
    fn raw_header_map_is_used_when_headers_are_empty() {
        #[allow(deprecated)]
        let incoming = Incoming::try_from(check(HttpRequest {
            headers: Default::default(),
            header_map: Some(HeaderMap {
                headers: vec![
                    HeaderValue {
                        key: "X-A".into(),
                        value: "1".into(),
                        raw_value: vec![],
                    },
                    HeaderValue {
                        key: "x-a".into(),
                        value: String::new(),
                        raw_value: b"2".to_vec(),
                    },
                ],
            }),
            ..http()
        }))
        .unwrap();
        assert_eq!(incoming.headers["x-a"], "1,2");
    }

    #[test]
    fn missing_attributes_are_an_error() {
        assert_eq!(
            Incoming::try_from(CheckRequest::default()),
            Err(RequestError::NoHttpAttributes)
        );
    }
}
