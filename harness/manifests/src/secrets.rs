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
    /// mTLS between the gateway and the gate: a fresh CA issues the gate's server
    /// certificate (this Secret) and the gateway's client certificate (Secret `client`, in
    /// the same namespace), each as [`TLS_KEYS`] with the CA as `ca.crt`; the CA's key is then
    /// forgotten. The two are made together, and kept once both exist.
    GateTls { client: &'static str },
}

/// The keys of a [`GeneratedValue::GateTls`] Secret (a `kubernetes.io/tls` Secret's, plus the
/// CA that the other side's certificate must chain to).
pub const TLS_KEYS: [&str; 3] = ["tls.crt", "tls.key", "ca.crt"];

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
            GeneratedValue::GateTls { .. } => TLS_KEYS.to_vec(),
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

/// The gate's certificate for its Check port (mounted by hitl-extauth) and, in Secret
/// `hitl-gateway-client-tls`, the gateway's client certificate (the `mtlsCertificateRef` of the
/// AgentgatewayPolicy on the hitl-extauth Service).
pub const GATE_TLS: GeneratedSecret = GeneratedSecret {
    namespace: "hitl-lab",
    name: "hitl-extauth-tls",
    key: "tls.crt",
    value: GeneratedValue::GateTls {
        client: "hitl-gateway-client-tls",
    },
};

/// The password of the gate's PostgreSQL (`--store postgres`): the server's
/// `POSTGRES_PASSWORD_FILE` and the gate's `STORE_PASSWORD_FILE` mount it.
pub const POSTGRES_PASSWORD: GeneratedSecret = GeneratedSecret {
    namespace: "hitl-lab",
    name: "hitl-postgres-password",
    key: "password",
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
    GATE_TLS,
    POSTGRES_PASSWORD,
];

/// The generated Secret `namespace/name`, if it is one (the client half of
/// [`GeneratedValue::GateTls`] included: it has the same keys).
pub fn generated(namespace: &str, name: &str) -> Option<&'static GeneratedSecret> {
    GENERATED.iter().find(|s| {
        s.namespace == namespace
            && (s.name == name
                || matches!(s.value, GeneratedValue::GateTls { client } if client == name))
    })
}
