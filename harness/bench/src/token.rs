//! Step 1c: what the approval chain adds to one approved call, in process: hitl-extauth signs
//! one token per approval, and mock-db-mcp verifies its signature and hashes the body it
//! received. CPU time per operation, on this machine, with the same code the services run.

use std::time::Instant;

use hitl_wire::approval::{Claims, Signer};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// Per-operation cost, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct TokenCost {
    pub rounds: usize,
    /// hitl-extauth: sign one approval token (Ed25519 over the claims' JSON).
    pub sign_us: f64,
    /// mock-db-mcp: check a token's signature and read its claims.
    pub verify_us: f64,
    /// mock-db-mcp: sha256 of a 1 KiB body (a typical `tools/call`).
    pub sha256_1k_us: f64,
    /// mock-db-mcp: sha256 of a 64 KiB body (the gateway's forward limit).
    pub sha256_64k_us: f64,
}

impl TokenCost {
    /// The whole chain for a typical approved call: sign + verify + hash of 1 KiB.
    pub fn per_approved_call_us(&self) -> f64 {
        self.sign_us + self.verify_us + self.sha256_1k_us
    }
}

/// Time `rounds` of each operation.
pub fn measure(rounds: usize) -> anyhow::Result<TokenCost> {
    let rounds = rounds.max(1);
    let signer = Signer::generate()?;
    let verifier = signer.verifier();
    let claims = Claims {
        approvers: Vec::new(),
        rule: None,
        id: "0b6f3c2e-6f1d-4c55-9d7e-2d9a3f1e8c41".into(),
        sha256: hex::encode(Sha256::digest(b"{}")),
        tool: hitl_wire::mockdb::tools::RUN_MIGRATION.into(),
        requester: Some("alice".into()),
        reviewer: "bob".into(),
        iat: 1_800_000_000,
        exp: 1_800_000_060,
    };
    let per_op = |started: Instant| started.elapsed().as_secs_f64() * 1e6 / rounds as f64;

    let started = Instant::now();
    let mut token = String::new();
    for _ in 0..rounds {
        token = std::hint::black_box(signer.sign(std::hint::black_box(&claims)));
    }
    let sign_us = per_op(started);

    let started = Instant::now();
    for _ in 0..rounds {
        let opened = verifier.open(std::hint::black_box(&token));
        anyhow::ensure!(opened.is_ok(), "the bench's own token did not verify");
    }
    let verify_us = per_op(started);

    let hash = |size: usize| {
        let body = vec![b'x'; size];
        let started = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(Sha256::digest(std::hint::black_box(&body)));
        }
        per_op(started)
    };
    Ok(TokenCost {
        rounds,
        sign_us,
        verify_us,
        sha256_1k_us: hash(1024),
        sha256_64k_us: hash(64 * 1024),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_runs_and_the_token_verifies() {
        let cost = super::measure(3).unwrap();
        assert_eq!(cost.rounds, 3);
        assert!(cost.per_approved_call_us() > 0.0);
    }
}
