//! The lab's OpenID Provider: how to run it (Node.js and `op.mjs`, installed by
//! [`crate::oidc_provider::ensure`]), healthy once `/healthz` answers; 127.0.0.1 only.

use std::path::Path;

use hitl_wire::env::oidc_provider as env;

use crate::{
    oidc_provider::{Installed, NAME, Setup},
    proc::Spec,
};

/// The process spec for the provider `setup` describes, logging to `<log_dir>/oidc-provider.log`.
pub fn spec(installed: &Installed, setup: &Setup, log_dir: &Path) -> Spec {
    Spec::new(NAME, &installed.node, log_dir)
        .arg(installed.script.as_os_str())
        .env(env::PORT, setup.port.to_string())
        .env(env::BIND_ADDR, "127.0.0.1")
        .env(env::ISSUER, &setup.issuer)
        .env(env::SIGNING_KEY_FILE, setup.key_file.as_os_str())
        .env(env::JWKS_FILE, setup.jwks_file.as_os_str())
        .env(env::USERS_FILE, setup.users_file.as_os_str())
        .env(env::CLIENTS_FILE, setup.clients_file.as_os_str())
        .health(format!("{}/healthz", setup.issuer))
}

/// The same with ID tokens living `ttl_sec` (tests of expiry).
pub fn spec_with_ttl(installed: &Installed, setup: &Setup, log_dir: &Path, ttl_sec: u64) -> Spec {
    spec(installed, setup, log_dir).env(env::ID_TOKEN_TTL_SEC, ttl_sec.to_string())
}
