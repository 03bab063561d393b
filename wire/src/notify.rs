//! The gate's notifications (issue #28): what hitl-extauth POSTs to each webhook receiver
//! when an approval request opens, is decided, or expires — the generic JSON body, the Slack
//! incoming-webhook body, and the signature every receiver can check (HMAC-SHA256 over the
//! timestamp and the body, as Slack and Stripe sign theirs). One definition, used by the
//! gate to send and by receivers (and the tests) to verify.
//!
//! A notification decides nothing: it says a request waits, with a link to its card in
//! hitl-ui; deciding still needs a signed-in reviewer there.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Header carrying the signature: `v1=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "x-hitl-signature";
/// Header carrying the Unix time (seconds) the signature was made at.
pub const TIMESTAMP_HEADER: &str = "x-hitl-timestamp";
/// How far a receiver should accept a timestamp from its own clock (replays beyond it fail).
pub const TOLERANCE_SEC: i64 = 300;

/// What happened to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Opened,
    Decided,
    Expired,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Opened => "opened",
            Kind::Decided => "decided",
            Kind::Expired => "expired",
        }
    }
}

/// The generic JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: Kind,
    /// The approval request's id (its card's id in `/pending` and hitl-ui).
    pub request_id: String,
    pub tool: String,
    /// The canonical arguments (RFC 8785), as the card shows them.
    pub arguments: String,
    /// The verified requester, if any.
    pub requester: Option<String>,
    /// For `decided`: `approved` or `rejected`, by whom, why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The card in hitl-ui (when the gate knows hitl-ui's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The approval policy's rule: who may decide, how many must approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<crate::policy::RuleView>,
}

impl Notification {
    /// One line for a person: what, which tool, whose.
    pub fn headline(&self) -> String {
        let who = self
            .requester
            .as_deref()
            .unwrap_or("an unverified requester");
        match self.kind {
            Kind::Opened => format!("{who} asks to run {} — waiting for a reviewer", self.tool),
            Kind::Decided => format!(
                "{} of {who}: {} by {}",
                self.tool,
                self.outcome.as_deref().unwrap_or("decided"),
                self.reviewer.as_deref().unwrap_or("a reviewer")
            ),
            Kind::Expired => format!("{} of {who}: expired, nobody decided", self.tool),
        }
    }

    /// The Slack incoming-webhook body: a text fallback and a card with tool, arguments,
    /// requester and the link.
    pub fn slack(&self) -> serde_json::Value {
        let mut fields = vec![
            serde_json::json!({"type": "mrkdwn", "text": format!("*Tool*\n`{}`", self.tool)}),
            serde_json::json!({"type": "mrkdwn", "text": format!(
                "*Requester*\n{}", self.requester.as_deref().unwrap_or("(unverified)"))}),
        ];
        if let Some(rule) = &self.rule {
            fields.push(serde_json::json!({"type": "mrkdwn", "text": format!(
                "*Rule*\n{}: {} approval(s) from {}",
                rule.name,
                rule.approvals,
                rule.groups.join(" or ")
            )}));
        }
        if let Some(reason) = self.reason.as_deref().filter(|r| !r.is_empty()) {
            fields
                .push(serde_json::json!({"type": "mrkdwn", "text": format!("*Reason*\n{reason}")}));
        }
        let mut blocks = vec![
            serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": self.headline()}}),
            serde_json::json!({"type": "section", "fields": fields}),
            serde_json::json!({"type": "section", "text": {"type": "mrkdwn",
                "text": format!("*Arguments*\n```{}```", self.arguments)}}),
        ];
        if let Some(link) = &self.link {
            blocks.push(serde_json::json!({"type": "section", "text": {"type": "mrkdwn",
                "text": format!("<{link}|Open the card in hitl-ui> (deciding needs a signed-in reviewer)")}}));
        }
        serde_json::json!({ "text": self.headline(), "blocks": blocks })
    }
}

#[cfg(feature = "crypto")]
mod signature {
    use hmac::{Hmac, KeyInit as _, Mac as _};
    use sha2::Sha256;
    use subtle::ConstantTimeEq as _;

    use super::TOLERANCE_SEC;

    /// Why a signature was refused.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum Refused {
        #[error("the signature header is not `v1=<hex>`")]
        Malformed,
        #[error("the timestamp is not a Unix time in seconds")]
        BadTimestamp,
        #[error("the timestamp is more than {TOLERANCE_SEC} s from now (a replay?)")]
        Stale,
        #[error("the signature does not match the body")]
        Mismatch,
    }

    fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `x-hitl-signature` value for `body` sent at `timestamp` (Unix seconds).
    pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
        let tag = mac(secret, &timestamp.to_string(), body)
            .finalize()
            .into_bytes();
        format!("v1={}", hex::encode(tag))
    }

    /// Check `signature` and `timestamp` (the two headers as received) over `body`, at `now`.
    pub fn verify(
        secret: &[u8],
        signature: &str,
        timestamp: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), Refused> {
        let tag = signature
            .strip_prefix("v1=")
            .and_then(|h| hex::decode(h).ok())
            .ok_or(Refused::Malformed)?;
        let at: i64 = timestamp.parse().map_err(|_| Refused::BadTimestamp)?;
        if (now - at).abs() > TOLERANCE_SEC {
            return Err(Refused::Stale);
        }
        let expected = mac(secret, timestamp, body).finalize().into_bytes();
        if bool::from(expected.as_slice().ct_eq(&tag)) {
            Ok(())
        } else {
            Err(Refused::Mismatch)
        }
    }
}

#[cfg(feature = "crypto")]
pub use signature::{Refused, sign, verify};

/// Shortest notification key accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// The notification key in the file at `path` (surrounding whitespace dropped): what the gate
/// signs with and a receiver checks with, read the same way by both.
pub fn secret_from_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let secret = String::from_utf8_lossy(&raw).trim().as_bytes().to_vec();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "{}: the key must be at least {MIN_SECRET_BYTES} bytes",
            path.display()
        ));
    }
    Ok(secret)
}

#[cfg(all(test, feature = "crypto"))]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_once_and_only_for_its_body_and_time() {
        let body = br#"{"kind":"opened"}"#;
        let signed = sign(b"secret", 1_000, body);
        assert_eq!(verify(b"secret", &signed, "1000", body, 1_010), Ok(()));
        assert_eq!(
            verify(b"other", &signed, "1000", body, 1_010),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            verify(b"secret", &signed, "1000", b"{}", 1_010),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            verify(b"secret", &signed, "1001", body, 1_010),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            verify(b"secret", &signed, "1000", body, 2_000),
            Err(Refused::Stale)
        );
        assert_eq!(
            verify(b"secret", "deadbeef", "1000", body, 1_000),
            Err(Refused::Malformed)
        );
    }
}
