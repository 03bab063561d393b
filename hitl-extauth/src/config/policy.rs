//! The gate's settings for who may approve what: the approval policy file, and the verifier
//! of reviewers' ID tokens — both checked at start, so a mistake stops the gate with a
//! message that names the file, line and setting, never a gate that half enforces a policy.

use std::sync::Arc;

use anyhow::Context as _;
use hitl_wire::{env::extauth as env, policy::Policy};

use super::Config;
use crate::reviewer::Tokens;

impl Config {
    /// The approval policy: the file's, or (none given) one approval from anybody.
    pub fn approval_policy(&self) -> anyhow::Result<Arc<Policy>> {
        let Some(path) = &self.approval_policy_file else {
            tracing::info!(
                "no {}: every gated call needs one approval from any signed-in reviewer",
                env::APPROVAL_POLICY_FILE
            );
            return Ok(Arc::new(Policy::anyone_once()));
        };
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading the approval policy {} ({})",
                path.display(),
                env::APPROVAL_POLICY_FILE
            )
        })?;
        let policy = Policy::parse(&text, &path.display().to_string())
            .map_err(|e| anyhow::anyhow!("the approval policy is refused: {e}"))?;
        tracing::info!(
            file = %path.display(),
            rules = policy.rules.len(),
            groups = policy.groups.len(),
            "approval policy loaded"
        );
        Ok(Arc::new(policy))
    }

    /// The verifier of reviewers' ID tokens, if a JWKS is configured.
    pub fn reviewer_tokens(&self) -> anyhow::Result<Option<Tokens>> {
        let Some(path) = &self.reviewer_jwks_file else {
            return Ok(None);
        };
        let issuer = self.reviewer_issuer.as_deref().unwrap_or_default();
        let tokens = Tokens::from_file(
            path,
            issuer,
            &self.reviewer_audiences,
            &self.reviewer_name_claim,
            &self.reviewer_groups_claim,
        )
        .with_context(|| {
            format!(
                "loading the reviewers' JWKS {} ({} {issuer:?}, {} {:?})",
                path.display(),
                env::REVIEWER_ISSUER,
                env::REVIEWER_AUDIENCES,
                self.reviewer_audiences
            )
        })?;
        Ok(Some(tokens))
    }
}
