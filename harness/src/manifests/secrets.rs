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
}

/// A Secret `up` creates with a random value if it does not exist yet (and never rotates:
/// running `up` again keeps sign-ins and tokens valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratedSecret {
    pub namespace: &'static str,
    pub name: &'static str,
    pub key: &'static str,
    pub value: GeneratedValue,
}

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
];

/// The generated Secret `namespace/name`, if it is one.
pub fn generated(namespace: &str, name: &str) -> Option<&'static GeneratedSecret> {
    GENERATED
        .iter()
        .find(|s| s.namespace == namespace && s.name == name)
}
