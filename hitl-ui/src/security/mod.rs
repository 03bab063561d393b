//! Who may decide, and proof that a request really came from our own page: reviewer
//! identity (trusted proxy header, built-in sign-in, or an OpenID Connect sign-in's ID
//! token), signed session cookies, CSRF tokens
//! the same-origin check and sign-in rate limiting. Pure logic over headers; the HTTP
//! handlers only call in here. (The `Host` allow-list, shared with every browser-reachable
//! service, is `hitl_serve::hosts`.)

pub mod cookies;
pub mod credentials;
pub mod csrf;
pub mod identity;
pub mod oidc_session;
pub mod session;
pub mod signer;
pub mod throttle;

pub use credentials::Credentials;
pub use identity::{Identity, IdentitySource};
pub use signer::Signer;
