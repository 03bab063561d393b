//! hitl-extauth's environment (the gate), besides the connection limits of [`super::http`].

pub use super::shared::{BIND_ADDR, DEFAULT_BIND_ADDR, HTTP_PORT, INSECURE_NO_APPROVAL_KEY};

/// Port of the gRPC `envoy.service.auth.v3.Authorization` service (h2c).
pub const GRPC_PORT: &str = "GRPC_PORT";
pub const DEFAULT_GRPC_PORT: u16 = 9001;
/// [`HTTP_PORT`]'s default: the admin API.
pub const DEFAULT_HTTP_PORT: u16 = 8081;
/// How long a parked call waits for a decision before it is denied as expired (a bare number
/// of seconds, as the seed's, or `crate::duration`'s `10m`).
pub const PARK_TIMEOUT_SEC: &str = "PARK_TIMEOUT_SEC";
pub const DEFAULT_PARK_TIMEOUT_SEC: u64 = 600;
/// How long an approval request nobody decided stays open (and decidable), whatever happened
/// to the calls that asked for it; then it expires (issue #26). A `crate::duration` (`24h`).
pub const APPROVAL_TTL: &str = "APPROVAL_TTL";
pub const DEFAULT_APPROVAL_TTL: &str = "24h";
pub const DEFAULT_APPROVAL_TTL_SEC: u64 = 24 * 60 * 60;
/// How long after its approval one `tools/call` of the action may use it (once): `15m`.
pub const APPROVAL_WINDOW: &str = "APPROVAL_WINDOW";
pub const DEFAULT_APPROVAL_WINDOW: &str = "15m";
pub const DEFAULT_APPROVAL_WINDOW_SEC: u64 = 15 * 60;
/// Seconds a re-send of a rejected action gets the same rejection at once, without a new
/// card (`0`: none; every send after a rejection asks a reviewer again).
pub const REJECTION_HOLD_SEC: &str = "REJECTION_HOLD_SEC";
pub const DEFAULT_REJECTION_HOLD_SEC: u64 = 60;
/// SQLite file of the audit trail.
pub const AUDIT_DB: &str = "AUDIT_DB";
pub const DEFAULT_AUDIT_DB: &str = "hitl-extauth.db";
/// The store on PostgreSQL instead of the SQLite file: a `postgres://` URL.
pub const STORE_URL: &str = "STORE_URL";
/// [`STORE_URL`] read from a file (`crate::secret`; not both): for a URL that holds a password.
pub const STORE_URL_FILE: &str = "STORE_URL_FILE";
/// A file holding the PostgreSQL password, kept out of `STORE_URL`.
pub const STORE_PASSWORD_FILE: &str = "STORE_PASSWORD_FILE";
/// PEM CA of the PostgreSQL server's certificate: the connection is then TLS, and verified.
pub const STORE_CA_FILE: &str = "STORE_CA_FILE";
/// This replica's name in the store (a pod sets its own name): shown in `/state` and logs,
/// and the owner of the calls it holds. A random suffix is added at every start.
pub const REPLICA_NAME: &str = "REPLICA_NAME";
/// JSON-RPC methods that pass without review (default: the classifier's allow-list).
pub const ALLOWED_METHODS: &str = "ALLOWED_METHODS";
/// Bearer token the admin API demands on `/pending`, `/decide`, `/history`, `/events`.
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";
/// [`ADMIN_TOKEN`] read from a file (`crate::secret`; not both).
pub const ADMIN_TOKEN_FILE: &str = "ADMIN_TOKEN_FILE";
/// Serve the admin API without a token (for a UI that sends none). Logged as a warning at
/// every start and shown by `/healthz`; reviewer names are then recorded as unverified.
pub const INSECURE_OPEN_ADMIN: &str = "INSECURE_OPEN_ADMIN";
/// File holding the Ed25519 signing key (32-byte seed, hex) of approval tokens.
pub const APPROVAL_SIGNING_KEY_FILE: &str = "APPROVAL_SIGNING_KEY_FILE";
/// Most calls parked at once.
pub const MAX_PARKED: &str = "MAX_PARKED";
pub const DEFAULT_MAX_PARKED: usize = 50_000;
/// Most calls one requester may have parked at once.
pub const MAX_PARKED_PER_REQUESTER: &str = "MAX_PARKED_PER_REQUESTER";
pub const DEFAULT_MAX_PARKED_PER_REQUESTER: u64 = 20;
/// Most bytes of requests (bodies, headers, paths) the parked calls hold together.
pub const MAX_PARKED_BYTES: &str = "MAX_PARKED_BYTES";
pub const DEFAULT_MAX_PARKED_BYTES: usize = 256 * 1024 * 1024;
/// How a denial reaches the caller: [`DENY_HTTP`] (the default) or [`DENY_MCP`].
pub const DENY_RESPONSE: &str = "DENY_RESPONSE";
/// [`DENY_RESPONSE`]: HTTP 403 with the JSON deny body.
pub const DENY_HTTP: &str = "http";
/// [`DENY_RESPONSE`]: an MCP answer ([`crate::extauth::denial`]).
pub const DENY_MCP: &str = "mcp";
/// Require a verified requester on every parked call; `true` unless explicitly `false`.
pub const REQUIRE_VERIFIED_REQUESTER: &str = "REQUIRE_VERIFIED_REQUESTER";
/// JWKS file (JSON) whose keys sign the requester tokens the gate accepts: the same keys
/// the gateway verifies with. Required unless [`REQUIRE_VERIFIED_REQUESTER`] is `false`.
pub const REQUESTER_JWKS_FILE: &str = "REQUESTER_JWKS_FILE";
/// `iss` a requester token must carry (required with [`REQUESTER_JWKS_FILE`]).
pub const REQUESTER_ISSUER: &str = "REQUESTER_ISSUER";
/// Comma-separated audiences; a requester token's `aud` must hold one of them (required with
/// [`REQUESTER_JWKS_FILE`]).
pub const REQUESTER_AUDIENCES: &str = "REQUESTER_AUDIENCES";
/// The requester token's claim that names the person (default [`DEFAULT_REQUESTER_NAME_CLAIM`]).
/// Separation of duties compares it with the reviewer's name: with an identity provider whose
/// `sub` is an opaque id, set it to the claim reviewers are named by (`REVIEWER_NAME_CLAIM`).
pub const REQUESTER_NAME_CLAIM: &str = "REQUESTER_NAME_CLAIM";
pub const DEFAULT_REQUESTER_NAME_CLAIM: &str = "sub";
/// Longest lifetime accepted for a requester token, in seconds: `exp - iat`, and `exp - now`.
pub const REQUESTER_MAX_LIFETIME_SEC: &str = "REQUESTER_MAX_LIFETIME_SEC";
pub const DEFAULT_REQUESTER_MAX_LIFETIME_SEC: u64 = 3600;
/// PEM certificate (chain) the gRPC Check port presents: with [`GRPC_TLS_KEY_FILE`] and
/// [`GRPC_CLIENT_CA_FILE`], the port speaks TLS only and demands a client certificate. Unset
/// (all three): plaintext h2c, as the seed did. A partial set refuses to start.
pub const GRPC_TLS_CERT_FILE: &str = "GRPC_TLS_CERT_FILE";
/// PEM private key of [`GRPC_TLS_CERT_FILE`].
pub const GRPC_TLS_KEY_FILE: &str = "GRPC_TLS_KEY_FILE";
/// PEM CA certificate(s) a client (the gateway) must present a certificate from.
pub const GRPC_CLIENT_CA_FILE: &str = "GRPC_CLIENT_CA_FILE";
/// Comma-separated webhook receivers of the gate's notifications (generic JSON body).
pub const NOTIFY_WEBHOOK_URLS: &str = "NOTIFY_WEBHOOK_URLS";
/// [`NOTIFY_WEBHOOK_URLS`] read from a file, one a line or comma-separated (not both).
pub const NOTIFY_WEBHOOK_URLS_FILE: &str = "NOTIFY_WEBHOOK_URLS_FILE";
/// Comma-separated Slack incoming-webhook URLs for the gate's notifications.
pub const NOTIFY_SLACK_URLS: &str = "NOTIFY_SLACK_URLS";
/// [`NOTIFY_SLACK_URLS`] read from a file, one a line or comma-separated (not both): a Slack
/// webhook URL is itself the credential.
pub const NOTIFY_SLACK_URLS_FILE: &str = "NOTIFY_SLACK_URLS_FILE";
/// File holding the key that signs every notification (HMAC-SHA256).
pub const NOTIFY_SECRET_FILE: &str = "NOTIFY_SECRET_FILE";
/// hitl-ui's address, for the link to a request's card in notifications.
pub const REVIEW_URL: &str = "REVIEW_URL";
/// TOML file of the approval policy ([`crate::policy`]): who may approve what, how many
/// must. Unset: every gated call needs one approval from any signed-in reviewer.
pub const APPROVAL_POLICY_FILE: &str = "APPROVAL_POLICY_FILE";
/// JWKS file (JSON) of the identity provider that signs reviewers' ID tokens: with it, a
/// decision may carry an `idToken`, and the gate believes the reviewer's name and groups only
/// from a token that verifies. Unset: reviewers are the admin API holder's static names, with
/// the groups the policy file gives them.
pub const REVIEWER_JWKS_FILE: &str = "REVIEWER_JWKS_FILE";
/// `iss` a reviewer's ID token must carry (required with [`REVIEWER_JWKS_FILE`]).
pub const REVIEWER_ISSUER: &str = "REVIEWER_ISSUER";
/// Comma-separated audiences (hitl-ui's OIDC client id); an ID token's `aud` must hold one.
pub const REVIEWER_AUDIENCES: &str = "REVIEWER_AUDIENCES";
/// The ID-token claim holding the reviewer's groups (a list of strings).
pub const REVIEWER_GROUPS_CLAIM: &str = "REVIEWER_GROUPS_CLAIM";
pub const DEFAULT_REVIEWER_GROUPS_CLAIM: &str = "groups";
/// The ID-token claim holding the reviewer's name.
pub const REVIEWER_NAME_CLAIM: &str = "REVIEWER_NAME_CLAIM";
pub const DEFAULT_REVIEWER_NAME_CLAIM: &str = "preferred_username";
