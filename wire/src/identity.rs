//! Who asked for a gated call and who decides it: the proven-requester contract and the one
//! way every process reads and compares a person's name.
//!
//! The chat client signs its user's identity into a short-lived JWT (ES256; the claim
//! [`REQUESTER_CLAIM`]) and sends it as `Authorization: Bearer …`. kagent forwards that
//! header to the MCP servers (`allowedHeaders`); the gateway verifies it (signature, `iss`,
//! `aud`, `exp`) and hands the gate the token itself, which the gate verifies again against
//! its own copy of the JWKS: Envoy's `jwt_authn` keeps the header ([`TOKEN_HEADER`],
//! `forward: true`), agentgateway's `jwtAuth` removes it and passes the raw token in the
//! Check's `metadata_context` under [`TOKEN_METADATA_NAMESPACE`] → [`TOKEN_METADATA_KEY`]
//! ([`token_metadata_cel`], its `extAuth.grpc.requestMetadata`). Claims a gateway (or anyone
//! reaching the Check port) merely states — the payload under [`METADATA_NAMESPACE`] →
//! [`PAYLOAD_KEY`], identity headers such as `x-user-id` — name nobody.
//!
//! Names are compared as [`Identity`]s: NFKC, then case folded, then NFKC again; refused if
//! they hold control, bidi, zero-width or other invisible characters, or mix scripts (a
//! Cyrillic `е` in a Latin name); and two identities are the same person when their UTS #39
//! confusable skeletons are equal (so an all-Cyrillic look-alike still matches).

use std::fmt;

use unicode_normalization::UnicodeNormalization as _;
use unicode_security::MixedScript as _;

/// `filter_metadata` namespace in which gateways hand over a JWT payload they verified
/// (Envoy's `jwt_authn` `payload_in_metadata`; agentgateway by default). Not believed by the
/// gate: whoever reaches its Check port can write anything here.
pub const METADATA_NAMESPACE: &str = "envoy.filters.http.jwt_authn";
/// Key of that payload inside [`METADATA_NAMESPACE`].
pub const PAYLOAD_KEY: &str = "jwt_payload";
/// `filter_metadata` namespace in which a gateway that removes the requester's token after
/// verifying it (agentgateway's `jwtAuth`) passes the raw token on to the gate.
pub const TOKEN_METADATA_NAMESPACE: &str = "dev.hitl-lab.requester";
/// Key of the raw token (a string, the compact JWS) inside [`TOKEN_METADATA_NAMESPACE`].
pub const TOKEN_METADATA_KEY: &str = "token";

/// The CEL expression agentgateway evaluates for `extAuth.grpc.requestMetadata` under
/// [`TOKEN_METADATA_NAMESPACE`]: a map holding the raw token ([`TOKEN_METADATA_KEY`]).
/// `jwt.rawToken` is redacted unless asked for `unredacted()` (agentgateway v1.4.1,
/// `crates/agentgateway/src/http/jwt.rs`); without a verified token `jwt` is absent, the
/// expression fails and agentgateway leaves the namespace out.
pub fn token_metadata_cel() -> String {
    format!(r#"{{"{TOKEN_METADATA_KEY}": jwt.rawToken.unredacted()}}"#)
}

/// The `Authorization` scheme the requester's token travels under.
pub const BEARER_PREFIX: &str = "Bearer ";

/// The claim naming the person on whose behalf the call is made.
pub const REQUESTER_CLAIM: &str = "sub";

/// The header the requester's token travels in, from the chat client through kagent to the
/// gateway (`Authorization: Bearer <jwt>`), and on to the gate through Envoy.
pub const TOKEN_HEADER: &str = "authorization";
/// The only JWT algorithm the lab issues: ES256 (P-256). Envoy's `jwt_authn` verifies
/// EdDSA too, agentgateway only RSA and EC keys.
pub const JWT_ALG: &str = "ES256";
/// `iss` of the lab's own tokens.
pub const LAB_ISSUER: &str = "https://hitl-lab.local/requesters";
/// `aud` of the lab's own tokens: the gateway in front of the MCP servers.
pub const LAB_AUDIENCE: &str = "hitl-lab-gateway";
/// `kid` of the lab's signing key (agentgateway requires one).
pub const LAB_KEY_ID: &str = "hitl-lab-requesters-1";

/// Longest identity accepted, in characters after normalisation.
pub const MAX_IDENTITY_CHARS: usize = 256;

/// Why a name is not accepted as an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    Empty,
    TooLong,
    /// A control, bidi, zero-width or other invisible character (`U+XXXX`).
    Invisible(char),
    /// Letters from more than one script, e.g. a Cyrillic `е` in a Latin name.
    MixedScript,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::Empty => write!(f, "the identity is empty"),
            IdentityError::TooLong => {
                write!(
                    f,
                    "the identity is longer than {MAX_IDENTITY_CHARS} characters"
                )
            }
            IdentityError::Invisible(c) => write!(
                f,
                "the identity holds U+{:04X}, a control, bidi, zero-width or invisible character",
                u32::from(*c)
            ),
            IdentityError::MixedScript => write!(
                f,
                "the identity mixes letters of several scripts (a look-alike name)"
            ),
        }
    }
}

impl std::error::Error for IdentityError {}

/// A person's name, normalised and checked: the only form names are stored, shown as the
/// verified requester, and compared in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    normalised: String,
    skeleton: String,
}

impl Identity {
    /// NFKC + case folding, with surrounding whitespace trimmed; refused as [`IdentityError`].
    pub fn parse(raw: &str) -> Result<Self, IdentityError> {
        if let Some(c) = raw.chars().find(|c| is_invisible(*c)) {
            return Err(IdentityError::Invisible(c));
        }
        let folded: String = raw.nfkc().collect::<String>().to_lowercase();
        let normalised: String = folded.nfkc().collect::<String>().trim().to_owned();
        // Normalisation may produce what the raw text hid (e.g. compatibility forms).
        if let Some(c) = normalised.chars().find(|c| is_invisible(*c)) {
            return Err(IdentityError::Invisible(c));
        }
        if normalised.is_empty() {
            return Err(IdentityError::Empty);
        }
        if normalised.chars().count() > MAX_IDENTITY_CHARS {
            return Err(IdentityError::TooLong);
        }
        if !normalised.as_str().is_single_script() {
            return Err(IdentityError::MixedScript);
        }
        let skeleton = unicode_security::skeleton(&normalised).collect();
        Ok(Self {
            normalised,
            skeleton,
        })
    }

    /// The normalised name (`Ａｌｉｃｅ` → `alice`).
    pub fn as_str(&self) -> &str {
        &self.normalised
    }

    /// Whether both name the same person: equal confusable skeletons.
    pub fn is_same_person(&self, other: &Identity) -> bool {
        self.skeleton == other.skeleton
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalised)
    }
}

/// Whether `a` and `b` name the same person. A name that is not a valid [`Identity`] is
/// never anybody (callers refuse such names before they compare).
pub fn same_person(a: &str, b: &str) -> bool {
    match (Identity::parse(a), Identity::parse(b)) {
        (Ok(a), Ok(b)) => a.is_same_person(&b),
        _ => false,
    }
}

/// Control characters (other than none: even tab and newline), bidi controls, zero-width
/// and other default-ignorable code points, and whitespace other than the plain space.
fn is_invisible(c: char) -> bool {
    if c.is_control() || (c.is_whitespace() && c != ' ') {
        return true;
    }
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Identity {
        Identity::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn case_and_fullwidth_fold_to_one_name() {
        assert_eq!(id("Alice").as_str(), "alice");
        assert_eq!(id("ALICE").as_str(), "alice");
        assert_eq!(id("ａｌｉｃｅ").as_str(), "alice", "fullwidth letters");
        assert_eq!(id("Ａｌｉｃｅ").as_str(), "alice");
        assert_eq!(id("  alice ").as_str(), "alice");
        assert!(same_person("Alice", "ａｌｉｃｅ"));
        assert!(!same_person("alice", "bob"));
    }

    #[test]
    fn a_cyrillic_letter_in_a_latin_name_is_refused() {
        // "alic" + U+0435 CYRILLIC SMALL LETTER IE
        assert_eq!(
            Identity::parse("alic\u{0435}"),
            Err(IdentityError::MixedScript)
        );
        assert!(!same_person("alic\u{0435}", "alice"));
    }

    #[test]
    fn an_all_cyrillic_look_alike_is_the_same_person() {
        // "аре" in Cyrillic looks like Latin "ape": single-script, so accepted, and its
        // confusable skeleton is the Latin one.
        let cyrillic = id("\u{0430}\u{0440}\u{0435}");
        assert!(cyrillic.is_same_person(&id("ape")));
    }

    #[test]
    fn zero_width_and_bidi_characters_are_refused() {
        for (raw, c) in [
            ("ali\u{200B}ce", '\u{200B}'), // ZERO WIDTH SPACE
            ("alice\u{200D}", '\u{200D}'), // ZERO WIDTH JOINER
            ("\u{FEFF}alice", '\u{FEFF}'), // BOM / ZWNBSP
            ("\u{202E}ecila", '\u{202E}'), // RIGHT-TO-LEFT OVERRIDE
            ("alice\u{2066}", '\u{2066}'), // LEFT-TO-RIGHT ISOLATE
            ("ali\u{00AD}ce", '\u{00AD}'), // SOFT HYPHEN
            ("alice\n", '\n'),
            ("al\u{7}ice", '\u{7}'),
            ("alice\u{00A0}", '\u{00A0}'), // NO-BREAK SPACE
        ] {
            assert_eq!(
                Identity::parse(raw),
                Err(IdentityError::Invisible(c)),
                "{raw:?}"
            );
        }
        assert!(!same_person("ali\u{200B}ce", "alice"));
    }

    #[test]
    fn empty_and_overlong_are_refused() {
        assert_eq!(Identity::parse(""), Err(IdentityError::Empty));
        assert_eq!(Identity::parse("   "), Err(IdentityError::Empty));
        let long = "a".repeat(MAX_IDENTITY_CHARS + 1);
        assert_eq!(Identity::parse(&long), Err(IdentityError::TooLong));
        assert!(Identity::parse(&long[1..]).is_ok());
    }

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "bob",
            "carol.smith@example.com",
            "reviewer-2",
            "José",
            "李小龙",
        ] {
            assert!(Identity::parse(name).is_ok(), "{name}");
        }
    }
}
