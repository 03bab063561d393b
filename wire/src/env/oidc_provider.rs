//! The local lab's OpenID Provider (`harness/oidc/op.mjs`, npm `oidc-provider` on Node.js):
//! the variables the lab starts it with. Not a deployable service: in kind, reviewers sign
//! in at the organisation's own provider (Dex, Keycloak, Okta, Entra).

pub use super::shared::{BIND_ADDR, PORT};

/// The issuer URL (`http://127.0.0.1:PORT` in the lab): `iss` of every ID token.
pub const ISSUER: &str = "OIDC_ISSUER";
/// The ES256 signing key (PKCS#8, DER) the lab generated.
pub const SIGNING_KEY_FILE: &str = "OIDC_SIGNING_KEY_FILE";
/// Its public half as a JWKS (the `kid` and `alg` the provider signs with; the gate's
/// `REVIEWER_JWKS_FILE`).
pub const JWKS_FILE: &str = "OIDC_JWKS_FILE";
/// JSON: `[{"username", "password", "groups": [...]}]`.
pub const USERS_FILE: &str = "OIDC_USERS_FILE";
/// JSON: `[{"client_id", "client_secret", "redirect_uris": [...]}]`.
pub const CLIENTS_FILE: &str = "OIDC_CLIENTS_FILE";
/// ID-token lifetime in seconds.
pub const ID_TOKEN_TTL_SEC: &str = "OIDC_ID_TOKEN_TTL_SEC";
pub const DEFAULT_ID_TOKEN_TTL_SEC: u64 = 3600;
