//! A sign-in in progress at the provider: `state`, `nonce`, the PKCE verifier and the redirect
//! URL, kept in the browser's `hitl_oidc_flow` cookie (hex JSON, tagged with the session key,
//! ten minutes), so the callback can check `state` and finish with the same verifier and
//! nonce. A flow from another browser, an altered one, or a stale one is refused.

use serde::{Deserialize, Serialize};

use crate::security::Signer;

const PURPOSE: &str = "oidc-flow";
/// How long a sign-in at the provider may take.
pub const FLOW_TTL_SECS: i64 = 600;

/// One sign-in in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub redirect: String,
    /// Unix seconds after which the callback refuses it.
    pub expires: i64,
}

/// Why a callback does not match a sign-in this browser started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error("no sign-in was started in this browser (or it was altered): start again")]
    Missing,
    #[error("the sign-in took longer than {FLOW_TTL_SECS} s: start again")]
    Stale,
    #[error("the provider's answer is for another sign-in (state does not match): start again")]
    WrongState,
}

impl Flow {
    /// The cookie value, valid until `now + FLOW_TTL_SECS`.
    pub fn seal(mut self, signer: &Signer, now: i64) -> String {
        self.expires = now + FLOW_TTL_SECS;
        let body = hex::encode(serde_json::to_vec(&self).unwrap_or_default());
        let tag = signer.sign(PURPOSE, body.as_bytes());
        format!("{body}.{tag}")
    }

    /// The flow in `cookie`, if we sealed it, it is fresh and `state` is its own.
    pub fn open(
        signer: &Signer,
        cookie: Option<&str>,
        state: &str,
        now: i64,
    ) -> Result<Self, FlowError> {
        let (body, tag) = cookie
            .and_then(|c| c.rsplit_once('.'))
            .ok_or(FlowError::Missing)?;
        if !signer.verify(PURPOSE, body.as_bytes(), tag) {
            return Err(FlowError::Missing);
        }
        let flow: Flow = hex::decode(body)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(FlowError::Missing)?;
        if now >= flow.expires {
            return Err(FlowError::Stale);
        }
        let same: bool =
            subtle::ConstantTimeEq::ct_eq(flow.state.as_bytes(), state.as_bytes()).into();
        if !same {
            return Err(FlowError::WrongState);
        }
        Ok(flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> Flow {
        Flow {
            state: "s".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            redirect: "http://ui/oidc/callback".into(),
            expires: 0,
        }
    }

    #[test]
    fn a_flow_comes_back_only_sealed_fresh_and_with_its_state() {
        let signer = Signer::new(Some("k")).unwrap();
        let cookie = flow().seal(&signer, 100);
        let back = Flow::open(&signer, Some(&cookie), "s", 101).unwrap();
        assert_eq!(
            (back.nonce.as_str(), back.expires),
            ("n", 100 + FLOW_TTL_SECS)
        );
        assert_eq!(
            Flow::open(&signer, Some(&cookie), "other", 101),
            Err(FlowError::WrongState)
        );
        assert_eq!(
            Flow::open(&signer, Some(&cookie), "s", 100 + FLOW_TTL_SECS),
            Err(FlowError::Stale)
        );
        assert_eq!(Flow::open(&signer, None, "s", 101), Err(FlowError::Missing));
        let other_key = Signer::new(Some("x")).unwrap();
        assert_eq!(
            Flow::open(&other_key, Some(&cookie), "s", 101),
            Err(FlowError::Missing)
        );
        let (body, tag) = cookie.rsplit_once('.').unwrap();
        let altered = format!("{}00.{tag}", body);
        assert_eq!(
            Flow::open(&signer, Some(&altered), "s", 101),
            Err(FlowError::Missing)
        );
    }
}
