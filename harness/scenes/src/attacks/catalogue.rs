//! The attack catalogue as data: `scenarios/attacks/*.toml`, one file per family, each
//! `[[attack]]` a request (or a short procedure) an attacker sends and what must hold
//! afterwards. Every error names the file, line and column. The format is documented in
//! `scenarios/README.md`.

use std::{
    ops::Range,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use toml::Spanned;

use super::{keys::KeysAttack, requests::Procedure};
use crate::scene::{
    SceneError,
    parse::{from_toml, locate},
};

/// One attack.
#[derive(Debug, Clone, PartialEq)]
pub struct Attack {
    /// Unique over the catalogue, e.g. `path-double-slash`.
    pub id: String,
    pub name: String,
    /// The file's family (`path`, `body`, …).
    pub family: String,
    pub file: String,
    pub kind: Kind,
    pub expect: Expect,
}

/// What the attacker does.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// One HTTP request, written byte for byte on a raw socket.
    Request(Request),
    /// A requester asks, then tries to approve their own call: refused; another reviewer
    /// approves and it runs.
    SelfApproval,
    /// An approval token the gate issued, used a second time straight at the backend.
    ReplayApproval,
    /// `POST /decide/{id}` on the gate's admin API without its credential.
    DecideWithoutCredentials,
    /// A Check straight to the gate naming the requester only in `metadata_context`.
    StatedRequester,
    /// A Check straight to the gate's port without the gateway's client certificate.
    CheckWithoutClientCertificate,
    /// Issue #26's approval requests: an approval tried beyond what it covers.
    Requests(Procedure),
    /// Issue #28's two keys: one reviewer counted twice, or a reviewer the policy never named.
    Keys(KeysAttack),
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum To {
    /// Through the gateway (the way the agent goes).
    Gateway,
    /// Straight to mock-db-mcp, around the gateway.
    Backend,
}

/// How the requester's identity travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Identity {
    /// A valid requester token (the gateway verifies it), plus `x-user-id`.
    Token,
    /// `x-user-id` / `x-forwarded-user` naming the requester, no token.
    HeaderOnly,
    /// A token from the trusted issuer without `exp`.
    TokenNoExp,
    /// A token from the trusted issuer not valid for another hour (`nbf`).
    TokenFutureNbf,
    /// Nothing at all.
    None,
}

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    Length,
    Chunked,
}

/// Which approval token the request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalToken {
    None,
    /// Well-formed, for this very body, signed by a key nobody trusts.
    Forged,
}

/// One request, byte for byte.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub to: To,
    pub method: String,
    pub path: String,
    /// The body after templates, BOM and padding.
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub identity: Identity,
    pub framing: Framing,
    pub approval: ApprovalToken,
}

/// What the answer must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// An answer that refuses: HTTP ≥ 400, or a JSON-RPC error / tool result with `isError`.
    Refused,
    /// No answer within the park window: the call waits for a reviewer.
    Parked,
    /// Either of those (the gateway may route it to the gate or refuse it itself).
    RefusedOrParked,
}

/// What must hold after the attack. Always also: nothing ran (mock-db-mcp's audit has no new
/// executed entry and the schema did not move).
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub verdict: Verdict,
    /// The answer's HTTP status is one of these (any, when empty).
    pub status: Vec<u16>,
    /// The refusal's text holds this (hitl-extauth's reason; other gates word theirs freely,
    /// so for them this check is n/a).
    pub reason: Option<String>,
    /// A `denied` record in the gate's `/history` (hitl-extauth only).
    pub audited: bool,
    /// What mock-db-mcp's audit must show.
    pub backend: Backend,
}

/// mock-db-mcp's view of the attack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Nothing reached a privileged tool: no new audit entry at all (the gate did not
    /// forward an unapproved call).
    Untouched,
    /// One refusal in the audit, by the named check (`missing`, `signature`, …).
    Refused(String),
}

/// The canonical tool call `{{call}}` stands for.
pub const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_migration","arguments":{"version":"v3"}}}"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    family: String,
    #[serde(rename = "attack")]
    attacks: Vec<Spanned<RawAttack>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttack {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    kind: Option<Spanned<String>>,
    to: Option<To>,
    method: Option<String>,
    path: Option<String>,
    body: Option<String>,
    #[serde(default)]
    bom: bool,
    #[serde(default)]
    pad_before: usize,
    #[serde(default)]
    pad_after: usize,
    #[serde(default)]
    trailing: String,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    identity: Option<Identity>,
    framing: Option<Framing>,
    approval: Option<ApprovalToken>,
    expect: Spanned<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    verdict: Option<Verdict>,
    #[serde(default)]
    status: Vec<u16>,
    reason: Option<String>,
    #[serde(default)]
    audited: bool,
    backend: Option<Spanned<String>>,
}

/// Parse one catalogue file.
pub fn parse(file: &str, text: &str) -> Result<Vec<Attack>, SceneError> {
    let at = |span: Range<usize>, message: String| locate(file, text, span, message);
    let raw: RawFile = from_toml(file, text)?;
    if raw.attacks.is_empty() {
        return Err(at(0..0, "no `[[attack]]` in this file".into()));
    }
    let mut out = Vec::new();
    for attack in raw.attacks {
        let span = attack.span();
        let a = attack.into_inner();
        let id_span = a.id.span();
        let id = a.id.get_ref().clone();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(at(
                id_span,
                format!("attack id `{id}`: use lowercase letters, digits and `-`"),
            ));
        }
        let name = a.name.clone();
        let expect_span = a.expect.span();
        let kind = kind_of(&a, span).map_err(|(span, message)| at(span, message))?;
        let e = a.expect.into_inner();
        let backend = backend_of(e.backend).map_err(|(span, message)| at(span, message))?;
        let verdict = match (&kind, e.verdict) {
            (Kind::Request(_), None) => {
                return Err(at(
                    expect_span,
                    "a request needs `expect.verdict`: refused, parked or refused-or-parked".into(),
                ));
            }
            (_, v) => v.unwrap_or(Verdict::Refused),
        };
        out.push(Attack {
            id,
            name,
            family: raw.family.clone(),
            file: file.to_owned(),
            kind,
            expect: Expect {
                verdict,
                status: e.status,
                reason: e.reason,
                audited: e.audited,
                backend,
            },
        });
    }
    Ok(out)
}

/// What the attacker does: a request (the default) or a named procedure.
fn kind_of(a: &RawAttack, span: Range<usize>) -> Result<Kind, (Range<usize>, String)> {
    let kind_name = a
        .kind
        .as_ref()
        .map_or_else(|| "request".to_owned(), |k| k.get_ref().clone());
    let kind_span = a.kind.as_ref().map_or(span, |k| k.span());
    Ok(match kind_name.as_str() {
        "request" => Kind::Request(request_of(a)),
        "self-approval" => Kind::SelfApproval,
        "replay-approval" => Kind::ReplayApproval,
        "decide-without-credentials" => Kind::DecideWithoutCredentials,
        "stated-requester" => Kind::StatedRequester,
        "check-without-client-certificate" => Kind::CheckWithoutClientCertificate,
        other => match (Procedure::from_kind(other), KeysAttack::from_kind(other)) {
            (Some(procedure), _) => Kind::Requests(procedure),
            (None, Some(attack)) => Kind::Keys(attack),
            (None, None) => return Err((kind_span, super::requests::unknown_kind(other))),
        },
    })
}

/// The request's bytes and framing: the body after its template, BOM and padding.
fn request_of(a: &RawAttack) -> Request {
    let mut body = Vec::new();
    if a.bom {
        body.extend_from_slice("\u{feff}".as_bytes());
    }
    body.extend(std::iter::repeat_n(b' ', a.pad_before));
    body.extend_from_slice(
        a.body
            .as_deref()
            .unwrap_or("{{call}}")
            .replace("{{call}}", CALL)
            .as_bytes(),
    );
    body.extend(std::iter::repeat_n(b' ', a.pad_after));
    body.extend_from_slice(a.trailing.as_bytes());
    Request {
        to: a.to.unwrap_or(To::Gateway),
        method: a.method.clone().unwrap_or_else(|| "POST".into()),
        path: a
            .path
            .clone()
            .unwrap_or_else(|| hitl_wire::mockdb::paths::PRIVILEGED_MCP.into()),
        body,
        headers: a.headers.clone().into_iter().collect(),
        identity: a.identity.unwrap_or(Identity::Token),
        framing: a.framing.unwrap_or(Framing::Length),
        approval: a.approval.unwrap_or(ApprovalToken::None),
    }
}

/// `untouched` (the default) or `refused:<check>`.
fn backend_of(backend: Option<Spanned<String>>) -> Result<Backend, (Range<usize>, String)> {
    let Some(b) = backend else {
        return Ok(Backend::Untouched);
    };
    let span = b.span();
    match b.into_inner().as_str() {
        "untouched" => Ok(Backend::Untouched),
        other => match other.strip_prefix("refused:") {
            Some(check) if !check.is_empty() => Ok(Backend::Refused(check.to_owned())),
            _ => Err((
                span,
                format!(
                    "backend `{other}`: use `untouched` or `refused:<check>` (e.g. refused:missing)"
                ),
            )),
        },
    }
}

/// The catalogue's directory: `<workspace>/scenarios/attacks`.
pub fn default_dir() -> PathBuf {
    crate::scene::parse::default_dir().join("attacks")
}

/// Every attack in `dir/*.toml`, files in name order; duplicate ids are an error.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<Attack>> {
    let mut all: Vec<Attack> = Vec::new();
    for (name, text) in crate::scene::parse::toml_files(dir, "the attack catalogue")? {
        for attack in parse(&name, &text)? {
            if let Some(other) = all.iter().find(|a| a.id == attack.id) {
                anyhow::bail!(
                    "{name}: attack id `{}` is also used in {}",
                    attack.id,
                    other.file
                );
            }
            all.push(attack);
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_catalogue_parses() {
        let attacks = load_dir(&default_dir()).unwrap();
        assert!(attacks.len() >= 20, "{}", attacks.len());
    }

    #[test]
    fn templates_padding_and_bom_make_the_body() {
        let text = r#"
family = "body"
[[attack]]
id = "padded"
name = "padded"
bom = true
pad_after = 3
trailing = "x"
expect = { verdict = "refused", reason = "BOM" }
"#;
        let attack = parse("t.toml", text).unwrap().remove(0);
        let Kind::Request(request) = attack.kind else {
            panic!()
        };
        assert_eq!(request.body, format!("\u{feff}{CALL}   x").into_bytes());
        assert_eq!(request.path, "/privileged/mcp");
        assert_eq!(attack.expect.backend, Backend::Untouched);
    }

    #[test]
    fn errors_point_at_the_line() {
        let text =
            "family = \"x\"\n[[attack]]\nid = \"a\"\nname = \"a\"\nkind = \"guess\"\nexpect = {}\n";
        let err = parse("t.toml", text).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:5:8: unknown kind `guess`"), "{err}");
        let text = "family = \"x\"\n[[attack]]\nid = \"a\"\nname = \"a\"\nexpect = { backend = \"gone\", verdict = \"refused\" }\n";
        let err = parse("t.toml", text).unwrap_err().to_string();
        assert!(
            err.contains("t.toml:5:") && err.contains("refused:<check>"),
            "{err}"
        );
        let text = "family = \"x\"\n[[attack]]\nid = \"a\"\nname = \"a\"\nexpect = { verdict = \"maybe\" }\n";
        let err = parse("t.toml", text).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:5:"), "{err}");
    }
}
