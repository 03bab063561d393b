//! Who the reviewer is: the trusted proxy header when configured, else the built-in sign-in's
//! session cookie, else the OpenID Connect sign-in's (name and groups from the ID token); and
//! who asked for a parked call, for separation of duties.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use axum::http::{HeaderMap, HeaderName};
use hitl_wire::extauth::ParkedCall;

use super::{
    Credentials, Signer, cookies,
    credentials::valid_user,
    oidc_session::{self, ClaimNames},
    session,
};

/// How a reviewer proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The configured trusted header, set by an auth proxy.
    ProxyHeader,
    /// The built-in sign-in.
    SignIn,
    /// A sign-in at the OpenID Provider.
    Oidc,
}

/// A reviewer who may decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub proof: Proof,
    /// The groups the ID token names (OpenID Connect); `None`: the policy's static members say.
    pub groups: Option<Vec<String>>,
    /// The ID token as the provider issued it, for the gate (OpenID Connect only).
    pub id_token: Option<String>,
}

impl Identity {
    fn new(user: String, proof: Proof) -> Self {
        Self {
            user,
            proof,
            groups: None,
            id_token: None,
        }
    }
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Reviewer(Identity),
    /// Signed in at the OpenID Provider, but the ID token has expired: sign in again.
    Expired {
        user: String,
    },
    Nobody,
}

/// 127.0.0.0/8 and ::1: a proxy beside us.
fn loopback() -> Vec<ipnet::IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect()
}

/// `TRUSTED_PROXY_ADDRS`' entries: IPs (one address) or CIDRs; an entry that is neither is an
/// error naming it.
pub fn parse_proxies(entries: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
    entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    format!(
                        "{} entry {entry:?} is neither an IP address nor a CIDR (e.g. 10.0.0.0/8)",
                        hitl_wire::env::ui::TRUSTED_PROXY_ADDRS
                    )
                })
        })
        .collect()
}

/// Most sign-outs remembered for OpenID Connect reviewers (not a configured list).
const MAX_SIGNED_OUT: usize = 10_000;

/// The configured ways of establishing identity.
#[derive(Debug)]
pub struct IdentitySource {
    trusted_header: Option<HeaderName>,
    /// Who the trusted header is believed from (`TRUSTED_PROXY_ADDRS`): the auth proxy.
    trusted_proxies: Vec<ipnet::IpNet>,
    credentials: Option<Credentials>,
    signer: Signer,
    /// The session cookie's name (another page on the same host keeps its own).
    session_cookie: &'static str,
    /// When each account last signed out (unix ms): sessions issued before are void. One
    /// entry per configured account at most, so bounded. Per process: with several replicas
    /// a sign-out holds on the replica that saw it (and on all after a key change).
    signed_out: Mutex<HashMap<String, i64>>,
    /// OpenID Connect sign-in: which claims name the reviewer and their groups.
    oidc: Option<ClaimNames>,
}

impl IdentitySource {
    pub fn new(
        trusted_header: Option<HeaderName>,
        credentials: Option<Credentials>,
        signer: Signer,
    ) -> Self {
        Self {
            trusted_header,
            trusted_proxies: loopback(),
            credentials,
            signer,
            session_cookie: cookies::SESSION,
            signed_out: Mutex::default(),
            oidc: None,
        }
    }

    /// The trusted header is believed only from `proxies` (loopback unless said otherwise).
    pub fn with_trusted_proxies(mut self, proxies: Vec<ipnet::IpNet>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Whether a request from `peer` (`None`: not from a socket) may name its reviewer with
    /// the trusted header: only the auth proxy may.
    pub fn header_believed_from(&self, peer: Option<std::net::IpAddr>) -> bool {
        peer.is_some_and(|peer| {
            let peer = peer.to_canonical();
            self.trusted_proxies.iter().any(|net| net.contains(&peer))
        })
    }

    /// Reviewers may also sign in at an OpenID Provider; `names` are the claims read.
    pub fn with_oidc(mut self, names: ClaimNames) -> Self {
        self.oidc = Some(names);
        self
    }

    /// Whether the OpenID Connect sign-in is offered.
    pub fn oidc_enabled(&self) -> bool {
        self.oidc.is_some()
    }

    /// The claims the OpenID Connect sign-in reads.
    pub fn claim_names(&self) -> Option<&ClaimNames> {
        self.oidc.as_ref()
    }

    /// Read the session from a cookie of another name: cookies are shared by every port of a
    /// host, so another page beside this one (lab-chat) must not read or overwrite its sessions.
    pub fn with_session_cookie(mut self, name: &'static str) -> Self {
        self.session_cookie = name;
        self
    }

    /// The session cookie's name.
    pub fn session_cookie(&self) -> &'static str {
        self.session_cookie
    }

    /// Whether anyone at all can be identified (else the UI is read-only).
    pub fn configured(&self) -> bool {
        self.trusted_header.is_some() || self.credentials.is_some() || self.oidc.is_some()
    }

    /// Whether the built-in sign-in form is offered.
    pub fn sign_in_enabled(&self) -> bool {
        self.credentials.is_some()
    }

    /// Whether there is a sign-in page to send a visitor to (built-in or OpenID Connect).
    pub fn any_sign_in(&self) -> bool {
        self.credentials.is_some() || self.oidc.is_some()
    }

    /// The configured trusted header's name, for messages.
    pub fn trusted_header(&self) -> Option<&HeaderName> {
        self.trusted_header.as_ref()
    }

    /// The reviewer behind a request, if any. The trusted header wins over a session.
    pub fn resolve(&self, request: &HeaderMap, now: i64) -> Option<Identity> {
        match self.resolve_why(request, now) {
            Resolved::Reviewer(identity) => Some(identity),
            Resolved::Expired { .. } | Resolved::Nobody => None,
        }
    }

    /// Whether the browser still holds one of our session cookies (valid or not): with no
    /// reviewer behind the request, its session ended (signed out elsewhere, or the service
    /// restarted with a new key), which the sign-in form then says.
    pub fn holds_session_cookie(&self, request: &HeaderMap) -> bool {
        let held = |name: &str| cookies::get(request, name).is_some_and(|v| !v.is_empty());
        held(self.session_cookie) || (self.oidc.is_some() && held(cookies::OIDC_SESSION))
    }

    /// The reviewer behind a request, or why there is none.
    pub fn resolve_why(&self, request: &HeaderMap, now: i64) -> Resolved {
        if let Some(name) = &self.trusted_header
            && let Some(user) = request.get(name).and_then(|v| v.to_str().ok())
        {
            let user = user.trim();
            if valid_user(user) {
                return Resolved::Reviewer(Identity::new(user.to_owned(), Proof::ProxyHeader));
            }
        }
        if let Some(identity) = self.built_in_session(request, now) {
            return Resolved::Reviewer(identity);
        }
        self.oidc_session(request, now)
    }

    fn built_in_session(&self, request: &HeaderMap, now: i64) -> Option<Identity> {
        let credentials = self.credentials.as_ref()?;
        let cookie = cookies::get(request, self.session_cookie)?;
        let session = session::verify(&self.signer, cookie, now)?;
        if self.signed_out_since(&session.user, session.issued_ms) {
            return None;
        }
        // An account removed from the configuration stops working at the next restart.
        credentials
            .has_user(&session.user)
            .then(|| Identity::new(session.user, Proof::SignIn))
    }

    fn oidc_session(&self, request: &HeaderMap, now: i64) -> Resolved {
        let Some(names) = &self.oidc else {
            return Resolved::Nobody;
        };
        let Some(session) = cookies::get(request, cookies::OIDC_SESSION)
            .and_then(|cookie| oidc_session::verify(&self.signer, cookie))
        else {
            return Resolved::Nobody;
        };
        let Ok(reviewer) = oidc_session::reviewer(&session.id_token, names) else {
            return Resolved::Nobody;
        };
        if self.signed_out_since(&reviewer.user, session.issued_ms) {
            return Resolved::Nobody;
        }
        if now >= reviewer.expires {
            return Resolved::Expired {
                user: reviewer.user,
            };
        }
        Resolved::Reviewer(Identity {
            user: reviewer.user,
            proof: Proof::Oidc,
            groups: Some(reviewer.groups),
            id_token: Some(session.id_token),
        })
    }

    /// Whether `user` signed out here after a session issued at `issued_ms`.
    fn signed_out_since(&self, user: &str, issued_ms: i64) -> bool {
        self.signed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user)
            .is_some_and(|at| issued_ms <= *at)
    }

    /// A new OpenID Connect session for `id_token` (verified by the caller): the cookie value.
    pub fn oidc_session_for(&self, user: &str, id_token: &str) -> String {
        let issued = self.issue_time(user);
        oidc_session::issue(&self.signer, id_token, issued)
    }

    /// Now in unix ms, strictly after any sign-out of `user` recorded in this same millisecond.
    fn issue_time(&self, user: &str) -> i64 {
        let signed_out = self
            .signed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        now_ms().max(signed_out.get(user).map_or(0, |at| at + 1))
    }

    /// Check a sign-in; on success the session cookie value valid until `expires`.
    pub fn sign_in(&self, user: &str, password: &str, expires: i64) -> Option<(String, String)> {
        let user = self.credentials.as_ref()?.check(user, password)?.to_owned();
        let issued = self.issue_time(&user);
        let cookie = session::issue(&self.signer, &user, issued, expires);
        Some((user, cookie))
    }

    /// Sign `user` out: every built-in session of theirs issued until now stops working here,
    /// so a copy of the cookie replayed later is refused.
    pub fn sign_out(&self, user: &str) {
        let configured = self.credentials.as_ref().is_some_and(|c| c.has_user(user));
        if !configured && self.oidc.is_none() {
            return;
        }
        let mut signed_out = self
            .signed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // OpenID Connect names are not a configured list: forget the oldest sign-outs past a
        // bound (their ID tokens, an hour or so long, have long expired).
        if signed_out.len() >= MAX_SIGNED_OUT {
            let day_ago = now_ms() - 24 * 3600 * 1000;
            signed_out.retain(|_, at| *at > day_ago);
        }
        signed_out.insert(user.to_owned(), now_ms());
    }
}

fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Whether `reviewer` is the call's verified requester, compared as
/// `hitl_wire::identity` does everywhere (NFKC, case folding, confusable skeletons), so
/// `Alice` or `ａｌｉｃｅ` cannot approve what `alice` asked for. Headers the caller sent
/// (`x-user-id`, …) are never consulted: anyone can send them.
pub fn is_requester(reviewer: &str, call: &ParkedCall) -> bool {
    call.requester
        .as_deref()
        .is_some_and(|requester| hitl_wire::identity::same_person(reviewer, requester))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::call_from;
    use axum::http::HeaderValue;

    fn source(header: Option<&'static str>, creds: Option<&str>) -> IdentitySource {
        IdentitySource::new(
            header.map(HeaderName::from_static),
            creds.map(|c| Credentials::parse(c).unwrap()),
            Signer::new(Some("k")).unwrap(),
        )
    }

    fn request(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn nothing_configured_means_nobody() {
        let none = source(None, None);
        assert!(!none.configured());
        let forged = request(&[("x-forwarded-user", "bob")]);
        assert_eq!(none.resolve(&forged, 0), None);
    }

    #[test]
    fn trusted_header_only_when_configured() {
        let proxy = source(Some("x-forwarded-user"), None);
        let req = request(&[("x-forwarded-user", " bob ")]);
        assert_eq!(
            proxy.resolve(&req, 0),
            Some(Identity::new("bob".into(), Proof::ProxyHeader))
        );
        assert_eq!(
            proxy.resolve(&request(&[("x-forwarded-user", "")]), 0),
            None
        );
        assert_eq!(proxy.resolve(&request(&[("x-user", "bob")]), 0), None);
        // Sign-in only: the same header is just a header.
        let sign_in = source(None, Some("bob:pw"));
        assert_eq!(sign_in.resolve(&req, 0), None);
    }

    #[test]
    fn another_page_reads_only_its_own_session_cookie() {
        let chat = source(None, Some("alice:pw")).with_session_cookie("lab_chat_session");
        let (_, cookie) = chat.sign_in("alice", "pw", 100).unwrap();
        let own = request(&[("cookie", &format!("lab_chat_session={cookie}"))]);
        assert_eq!(chat.resolve(&own, 50).map(|i| i.user), Some("alice".into()));
        let reviewers = request(&[("cookie", &format!("hitl_session={cookie}"))]);
        assert_eq!(chat.resolve(&reviewers, 50), None);
    }

    #[test]
    fn sign_in_issues_a_session_that_identifies() {
        let src = source(None, Some("bob:pw,alice:pw2"));
        assert!(src.sign_in("bob", "wrong", 100).is_none());
        let (user, cookie) = src.sign_in("bob", "pw", 100).unwrap();
        assert_eq!(user, "bob");
        let req = request(&[("cookie", &format!("hitl_session={cookie}"))]);
        assert_eq!(src.resolve(&req, 50).map(|i| i.user), Some("bob".into()));
        assert_eq!(src.resolve(&req, 100), None, "expired");
        // A session signed with another key (e.g. before a restart) is worthless.
        // Signing out voids that cookie; a new sign-in works.
        src.sign_out("bob");
        assert_eq!(src.resolve(&req, 50), None, "replayed after sign-out");
        let (_, fresh) = src.sign_in("bob", "pw", 100).unwrap();
        let req = request(&[("cookie", &format!("hitl_session={fresh}"))]);
        assert_eq!(src.resolve(&req, 50).map(|i| i.user), Some("bob".into()));
        let other = source(None, Some("bob:pw"));
        let (_, foreign) = IdentitySource::new(
            None,
            Some(Credentials::parse("bob:pw").unwrap()),
            Signer::new(Some("other")).unwrap(),
        )
        .sign_in("bob", "pw", 100)
        .unwrap();
        let req = request(&[("cookie", &format!("hitl_session={foreign}"))]);
        assert_eq!(other.resolve(&req, 50), None);
    }

    #[test]
    fn an_oidc_session_names_the_token_s_reviewer_until_it_expires_or_they_sign_out() {
        use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
        let src = source(None, None).with_oidc(ClaimNames {
            name: "preferred_username".into(),
            groups: "groups".into(),
        });
        assert!(src.configured() && src.any_sign_in() && !src.sign_in_enabled());
        let claims = r#"{"preferred_username":"dba-ann","groups":["dba"],"exp":100}"#;
        let token = format!("h.{}.s", B64.encode(claims));
        let cookie = src.oidc_session_for("dba-ann", &token);
        let req = request(&[("cookie", &format!("hitl_oidc_session={cookie}"))]);
        let Resolved::Reviewer(ann) = src.resolve_why(&req, 50) else {
            panic!("signed in")
        };
        assert_eq!(ann.user, "dba-ann");
        assert_eq!(ann.groups, Some(vec!["dba".to_owned()]));
        assert_eq!(ann.id_token.as_deref(), Some(token.as_str()));
        assert_eq!(
            src.resolve_why(&req, 100),
            Resolved::Expired {
                user: "dba-ann".into()
            }
        );
        // Another token under the same tag, or a cookie from another key: nobody.
        let forged = cookie.replacen(&token, &token.replace(".s", ".t"), 1);
        let forged = request(&[("cookie", &format!("hitl_oidc_session={forged}"))]);
        assert_eq!(src.resolve_why(&forged, 50), Resolved::Nobody);
        src.sign_out("dba-ann");
        assert_eq!(src.resolve_why(&req, 50), Resolved::Nobody, "signed out");
        // Without OIDC configured, the cookie is just a cookie.
        assert_eq!(source(None, None).resolve_why(&req, 50), Resolved::Nobody);
    }

    #[test]
    fn the_requester_is_the_verified_one_only() {
        let call = call_from(
            Some("alice"),
            &[
                ("x-user-id", "carol"),
                ("x-agent-id", "dba-assistant"),
                ("user-agent", "bob"),
            ],
        );
        assert!(is_requester("alice", &call));
        assert!(is_requester("ALICE", &call));
        assert!(is_requester("ａｌｉｃｅ", &call), "fullwidth");
        assert!(!is_requester("carol", &call), "a header is not proof");
        assert!(!is_requester("bob", &call));
        assert!(!is_requester("dba-assistant", &call));
        let unverified = call_from(None, &[("x-user-id", "alice")]);
        assert!(!is_requester("alice", &unverified));
    }

    #[test]
    fn look_alike_reviewer_names_are_not_identities() {
        // A Cyrillic е, a zero-width space, a right-to-left override: refused as names.
        for name in ["alic\u{0435}", "ali\u{200B}ce", "\u{202E}ecila"] {
            assert!(!valid_user(name), "{name:?}");
            let src = source(Some("x-forwarded-user"), None);
            let req = request(&[("x-forwarded-user", name)]);
            assert_eq!(src.resolve(&req, 0), None, "{name:?}");
        }
    }
}
