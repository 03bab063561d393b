//! Raw HTTP/1.1 on a socket, the way an attacker (or a gate-check probe) speaks: a request
//! written byte for byte, its answer read whole and classified as refused, passed, or held
//! (no answer within the park window: parked).

use std::time::Duration;

use anyhow::Context as _;
use hitl_wire::{approval, headers, mockdb::paths};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use super::{
    catalogue::{ApprovalToken, Framing, Identity, Request, To},
    run::Target,
};
use hitl_lab::{envoy::Endpoint, requester::bearer};

/// What came back for one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// HTTP ≥ 400, or a JSON-RPC error / a tool result with `isError`.
    Refused { status: u16, body: String },
    /// A 2xx answer that refuses nothing.
    Passed { status: u16, body: String },
    /// No answer within the park window.
    Held,
}

impl Answer {
    pub fn describe(&self) -> String {
        match self {
            Answer::Refused { status, .. } => format!("refused {status}"),
            Answer::Passed { status, .. } => format!("passed {status}"),
            Answer::Held => "parked".into(),
        }
    }

    pub fn body(&self) -> &str {
        match self {
            Answer::Refused { body, .. } | Answer::Passed { body, .. } => body,
            Answer::Held => "",
        }
    }
}

/// Classify a complete HTTP answer.
pub fn classify(status: u16, body: &str) -> Answer {
    let squeezed: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    if status >= 400 || squeezed.contains(r#""isError":true"#) || squeezed.contains(r#""error":{"#)
    {
        Answer::Refused {
            status,
            body: body.to_owned(),
        }
    } else {
        Answer::Passed {
            status,
            body: body.to_owned(),
        }
    }
}

/// The answer in a line: what it was and how its body starts.
pub fn short(answer: &Answer) -> String {
    let body = answer.body();
    let cut: String = body.chars().take(160).collect();
    match answer {
        Answer::Held => "no answer (parked)".into(),
        _ => format!("{} {}", answer.describe(), cut.replace(['\r', '\n'], " ")),
    }
}

/// The request line and the headers every raw request carries (`Connection: close`).
fn head(method: &str, path: &str, to: &Endpoint) -> String {
    head_but(method, path, to, &[])
}

/// [`head`] without the default headers `overridden` names (case-insensitive): an attack's own
/// `host` or `content-type` replaces ours rather than adding a second one.
fn head_but(method: &str, path: &str, to: &Endpoint, overridden: &[(String, String)]) -> String {
    let host = format!("{}:{}", to.host, to.port);
    let defaults = [
        ("host", host.as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("connection", "close"),
    ];
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in defaults {
        if !overridden.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head
}

/// A `POST` of a JSON-RPC `body` to the privileged MCP path on `to`, with `extra` headers.
pub fn privileged_post(to: &Endpoint, extra: &[(&str, &str)], body: &str) -> String {
    let mut request = head("POST", paths::PRIVILEGED_MCP, to);
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    request
}

/// A catalogue request's bytes as `requester` sends them, HTTP/1.1, `Connection: close`.
pub fn render(target: &Target, request: &Request, requester: &str) -> anyhow::Result<Vec<u8>> {
    let to = match request.to {
        To::Gateway => &target.gateway,
        To::Backend => &target.backend,
    };
    let mut head = head_but(&request.method, &request.path, to, &request.headers);
    let mut add = |name: &str, value: &str| head.push_str(&format!("{name}: {value}\r\n"));
    match request.identity {
        Identity::Token => {
            add(
                hitl_wire::identity::TOKEN_HEADER,
                &bearer(&target.issuer.mint(requester)?),
            );
            add(headers::USER_ID, requester);
        }
        Identity::HeaderOnly => {
            add(headers::USER_ID, requester);
            add(headers::FORWARDED_USER, requester);
        }
        Identity::TokenNoExp | Identity::TokenFutureNbf => {
            let claims = target.issuer.claims(requester);
            let mut payload = claims.payload();
            if let (Identity::TokenNoExp, Some(p)) = (request.identity, payload.as_object_mut()) {
                p.remove("exp");
            } else {
                payload["nbf"] = (claims.iat + 3600).into();
            }
            let token = target.issuer.sign_payload(&payload)?;
            add(hitl_wire::identity::TOKEN_HEADER, &bearer(&token));
            add(headers::USER_ID, requester);
        }
        Identity::None => {}
    }
    if request.approval == ApprovalToken::Forged {
        add(approval::HEADER, &forged_token(&request.body)?);
    }
    for (name, value) in &request.headers {
        add(name, value);
    }
    let bytes = match request.framing {
        Framing::Length => {
            add("content-length", &request.body.len().to_string());
            head.push_str("\r\n");
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&request.body);
            bytes
        }
        Framing::Chunked => {
            add("transfer-encoding", "chunked");
            head.push_str("\r\n");
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(format!("{:x}\r\n", request.body.len()).as_bytes());
            bytes.extend_from_slice(&request.body);
            bytes.extend_from_slice(b"\r\n0\r\n\r\n");
            bytes
        }
    };
    Ok(bytes)
}

/// A well-formed approval for exactly `body`, signed by a key nobody trusts.
fn forged_token(body: &[u8]) -> anyhow::Result<String> {
    let signer = approval::Signer::generate()?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(signer.sign(&approval::Claims {
        approvers: Vec::new(),
        rule: None,
        id: uuid::Uuid::new_v4().to_string(),
        sha256: approval::sha256_hex(body),
        tool: hitl_wire::mockdb::tools::RUN_MIGRATION.into(),
        requester: Some("alice".into()),
        reviewer: "mallory".into(),
        iat: now,
        exp: now + approval::TTL_SECS,
    }))
}

/// Write `bytes` to `endpoint` and read the whole answer, or [`Answer::Held`] if none comes
/// within `window` (the connection is then dropped: the client hangs up).
pub async fn send_raw(
    endpoint: &Endpoint,
    bytes: &[u8],
    window: Duration,
) -> anyhow::Result<Answer> {
    let mut stream = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .with_context(|| format!("connecting to {}:{}", endpoint.host, endpoint.port))?;
    stream.write_all(bytes).await?;
    let mut answer = Vec::new();
    match tokio::time::timeout(window, stream.read_to_end(&mut answer)).await {
        Err(_) => Ok(Answer::Held),
        Ok(read) => {
            // A reset after a complete answer is still an answer.
            if let Err(e) = read
                && answer.is_empty()
            {
                return Err(e).context("reading the answer");
            }
            let (status, body) = http_answer(&answer)?;
            Ok(classify(status, &body))
        }
    }
}

/// The status and body of a whole raw HTTP/1.1 answer (as read to the connection's close).
pub fn http_answer(answer: &[u8]) -> anyhow::Result<(u16, String)> {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP answer: {text}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_privileged_post_is_one_request_with_its_length() {
        let to = Endpoint::loopback(8080);
        let request = privileged_post(&to, &[("authorization", "Bearer t")], "{}");
        assert_eq!(
            request,
            "POST /privileged/mcp HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-type: \
             application/json\r\naccept: application/json, text/event-stream\r\nconnection: \
             close\r\nauthorization: Bearer t\r\ncontent-length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn an_attacks_own_host_and_content_type_replace_the_defaults() {
        let to = Endpoint::loopback(8080);
        let overridden = [
            ("Host".to_owned(), "evil.example".to_owned()),
            ("content-type".to_owned(), "text/plain".to_owned()),
        ];
        assert_eq!(
            head_but("GET", "/state", &to, &overridden),
            "GET /state HTTP/1.1\r\naccept: application/json, text/event-stream\r\n\
             connection: close\r\n"
        );
    }

    #[test]
    fn answers_refuse_by_status_or_by_their_body() {
        assert!(matches!(classify(403, ""), Answer::Refused { .. }));
        let denied = r#"{"result": {"isError": true}}"#;
        assert!(matches!(classify(200, denied), Answer::Refused { .. }));
        assert!(matches!(
            classify(200, r#"{"result":{}}"#),
            Answer::Passed { .. }
        ));
    }
}
