//! Secrets the manifests reference but do not contain, because their values must not live in
//! git: random ones `up` generates once per cluster, and model API keys `up` copies from the
//! environment. Listed here so that validation knows they will exist and `up` knows what to
//! create.

/// What goes into a generated Secret's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratedValue {
    /// 32 random bytes, hex.
    Token,
    /// A hitl-ui sign-in line, `<user>:<random password>`.
    ReviewerAccount { user: &'static str },
    /// A fresh Ed25519 approval key pair: the seed (hex) under `key`, the public key (hex)
    /// under [`APPROVAL_VERIFYING_KEY`]. Each Deployment mounts only the half it needs.
    ApprovalKeyPair,
}

/// The key of the approval key Secret that holds the public half.
pub const APPROVAL_VERIFYING_KEY: &str = "verifying-key";

/// A Secret `up` creates with a random value if it does not exist yet (and never rotates:
/// running `up` again keeps sign-ins and tokens valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratedSecret {
    pub namespace: &'static str,
    pub name: &'static str,
    pub key: &'static str,
    pub value: GeneratedValue,
}

impl GeneratedSecret {
    /// Every key the Secret holds.
    pub fn keys(&self) -> Vec<&'static str> {
        match self.value {
            GeneratedValue::ApprovalKeyPair => vec![self.key, APPROVAL_VERIFYING_KEY],
            _ => vec![self.key],
        }
    }
}

/// The admin API token: hitl-extauth demands it, hitl-ui sends it.
pub const ADMIN_TOKEN: GeneratedSecret = GeneratedSecret {
    namespace: "hitl-lab",
    name: "hitl-extauth-admin",
    key: "token",
    value: GeneratedValue::Token,
};

/// mock-db-mcp's reset token: it demands it on `/reset`, the scene runner sends it.
pub const RESET_TOKEN: GeneratedSecret = GeneratedSecret {
    namespace: "hitl-lab",
    name: "mock-db-mcp-reset",
    key: "token",
    value: GeneratedValue::Token,
};

/// Every generated Secret.
pub const GENERATED: &[GeneratedSecret] = &[
    // hitl-ui's cookie-signing key.
    GeneratedSecret {
        namespace: "hitl-lab",
        name: "hitl-ui-session",
        key: "secret",
        value: GeneratedValue::Token,
    },
    // hitl-ui's built-in sign-in account (mounted as a file).
    GeneratedSecret {
        namespace: "hitl-lab",
        name: "hitl-ui-reviewers",
        key: "credentials",
        value: GeneratedValue::ReviewerAccount { user: "reviewer" },
    },
    ADMIN_TOKEN,
    RESET_TOKEN,
    // hitl-extauth signs approvals with `signing-key`; mock-db-mcp verifies with
    // `verifying-key` and never sees the other.
    GeneratedSecret {
        namespace: "hitl-lab",
        name: "hitl-approval-key",
        key: "signing-key",
        value: GeneratedValue::ApprovalKeyPair,
    },
];

/// The generated Secret `namespace/name`, if it is one.
pub fn generated(namespace: &str, name: &str) -> Option<&'static GeneratedSecret> {
    GENERATED
        .iter()
        .find(|s| s.namespace == namespace && s.name == name)
}
