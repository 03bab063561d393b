//! hitl-ui's environment (the reviewer's queue), besides the connection limits of
//! [`super::http`].

pub use super::shared::{
    ALLOWED_HOSTS, BIND_ADDR, COOKIE_SECURE, DEFAULT_BIND_ADDR, HTTP_PORT, SESSION_SECRET,
    SESSION_SECRET_FILE,
};

/// [`HTTP_PORT`]'s default.
pub const DEFAULT_HTTP_PORT: u16 = 8080;
/// hitl-extauth's admin API base URL.
pub const EXTAUTH_ADMIN_URL: &str = "HITL_EXTAUTH_ADMIN_URL";
pub const DEFAULT_EXTAUTH_ADMIN_URL: &str = "http://127.0.0.1:8081";
/// hitl-ui's copy of hitl-extauth's `ADMIN_TOKEN`.
pub const EXTAUTH_ADMIN_TOKEN: &str = "HITL_EXTAUTH_ADMIN_TOKEN";
/// [`EXTAUTH_ADMIN_TOKEN`] read from a file (`crate::secret`; not both).
pub const EXTAUTH_ADMIN_TOKEN_FILE: &str = "HITL_EXTAUTH_ADMIN_TOKEN_FILE";
/// mock-db-mcp's `/state` URL, for the live schema version on the cards.
pub const MOCK_DB_STATE_URL: &str = "MOCK_DB_STATE_URL";
/// Header an auth proxy sets with the reviewer's name.
pub const TRUSTED_USER_HEADER: &str = "TRUSTED_USER_HEADER";
/// The addresses (IPs or CIDRs, comma-separated) the [`TRUSTED_USER_HEADER`] is believed from:
/// the auth proxy's. From any other peer the header is ignored.
pub const TRUSTED_PROXY_ADDRS: &str = "TRUSTED_PROXY_ADDRS";
/// Loopback: an auth proxy beside hitl-ui (a sidecar in its pod).
pub const DEFAULT_TRUSTED_PROXY_ADDRS: &str = "127.0.0.1,::1";
/// Built-in sign-in accounts, `user:password,…`.
pub const REVIEWER_CREDENTIALS: &str = "REVIEWER_CREDENTIALS";
/// The same, read from a file (one `user:password` a line; with both set, the accounts of
/// both: this file came before the `*_FILE` rule and keeps its meaning).
pub const REVIEWER_CREDENTIALS_FILE: &str = "REVIEWER_CREDENTIALS_FILE";
/// Refuse an approval by the call's verified requester (on unless `false`).
pub const SEPARATION_OF_DUTIES: &str = "SEPARATION_OF_DUTIES";
/// How long a sign-in lasts (`12h`).
pub const SESSION_TTL: &str = "SESSION_TTL";
pub const DEFAULT_SESSION_TTL: &str = "12h";
/// OpenID Connect sign-in for reviewers: the provider's issuer URL (discovery at
/// `<issuer>/.well-known/openid-configuration`). With it, the sign-in page offers the
/// provider; the static accounts, if any, stay beside it.
pub const OIDC_ISSUER_URL: &str = "OIDC_ISSUER_URL";
/// hitl-ui's client id at the provider (the gate's `REVIEWER_AUDIENCES`).
pub const OIDC_CLIENT_ID: &str = "OIDC_CLIENT_ID";
/// File holding hitl-ui's client secret (a mounted Secret).
pub const OIDC_CLIENT_SECRET_FILE: &str = "OIDC_CLIENT_SECRET_FILE";
/// Where the provider sends the browser back (`https://<hitl-ui>/oidc/callback`). Unset: the
/// allowed `Host` the browser used, `/oidc/callback` on it.
pub const OIDC_REDIRECT_URL: &str = "OIDC_REDIRECT_URL";
/// Scopes asked for, space-separated.
pub const OIDC_SCOPES: &str = "OIDC_SCOPES";
pub const DEFAULT_OIDC_SCOPES: &str = "openid profile groups";
/// The ID-token claim holding the reviewer's name (the gate's `REVIEWER_NAME_CLAIM`).
pub const OIDC_NAME_CLAIM: &str = "OIDC_NAME_CLAIM";
pub const DEFAULT_OIDC_NAME_CLAIM: &str = super::extauth::DEFAULT_REVIEWER_NAME_CLAIM;
/// The ID-token claim holding the reviewer's groups (the gate's `REVIEWER_GROUPS_CLAIM`).
pub const OIDC_GROUPS_CLAIM: &str = "OIDC_GROUPS_CLAIM";
pub const DEFAULT_OIDC_GROUPS_CLAIM: &str = super::extauth::DEFAULT_REVIEWER_GROUPS_CLAIM;
