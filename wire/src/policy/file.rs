//! Reading the policy file: TOML into rules and groups, every mistake named with its line and
//! column (a gate never starts on a policy it half understands).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{ANYONE, MAX_APPROVALS, Policy, PolicyError, Rule, RuleView};
use crate::identity::Identity;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    groups: BTreeMap<Spanned<String>, RawGroup>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    members: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    #[serde(default)]
    route: Option<String>,
    tool: Spanned<String>,
    #[serde(default)]
    args: BTreeMap<String, toml::Value>,
    groups: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    approvals: Option<Spanned<u32>>,
    #[serde(default)]
    reason_to_approve: bool,
    #[serde(default)]
    reason_to_reject: bool,
    #[serde(default)]
    max_ttl: Option<Spanned<String>>,
}

/// Where byte `at` of `text` is: 1-based line and column.
fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |n| before.len() - n - 1)
        + 1;
    (line, column)
}

pub(super) fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
    let error = |at: usize, message: String| {
        let (line, column) = position(text, at);
        PolicyError {
            origin: origin.to_owned(),
            line,
            column,
            message,
        }
    };
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        error(at, e.message().trim().to_owned())
    })?;
    let mut groups = BTreeMap::new();
    for (name, group) in raw.groups {
        let at = name.span().start;
        let name = name.into_inner();
        if name.is_empty() || name == ANYONE || name.chars().any(char::is_whitespace) {
            return Err(error(
                at,
                format!("{name:?} cannot name a group (`*` means every reviewer; no spaces)"),
            ));
        }
        let mut members = Vec::new();
        for member in group.members {
            let at = member.span().start;
            let id = Identity::parse(member.get_ref())
                .map_err(|e| error(at, format!("member {:?}: {e}", member.get_ref())))?;
            members.push(id.as_str().to_owned());
        }
        groups.insert(name, members);
    }
    let mut rules: Vec<Rule> = Vec::new();
    for raw in raw.rule {
        let rule = rule(raw, &groups, &rules, &error)?;
        rules.push(rule);
    }
    if rules.is_empty() {
        return Err(error(
            0,
            "the policy has no [[rule]]: every gated call would be denied; \
             add one (e.g. tool = \"*\", groups = [\"*\"])"
                .to_owned(),
        ));
    }
    Ok(Policy { groups, rules })
}

fn rule(
    raw: RawRule,
    groups: &BTreeMap<String, Vec<String>>,
    earlier: &[Rule],
    error: &impl Fn(usize, String) -> PolicyError,
) -> Result<Rule, PolicyError> {
    let name = raw.name.get_ref().trim().to_owned();
    if name.is_empty() {
        return Err(error(
            raw.name.span().start,
            "a rule needs a name".to_owned(),
        ));
    }
    if earlier.iter().any(|r| r.view.name == name) {
        return Err(error(
            raw.name.span().start,
            format!("a second rule is named {name:?}"),
        ));
    }
    if raw.tool.get_ref().trim().is_empty() {
        return Err(error(
            raw.tool.span().start,
            format!("rule {name:?}: `tool` is empty (use \"*\" for every tool)"),
        ));
    }
    if raw.groups.get_ref().is_empty() {
        return Err(error(
            raw.groups.span().start,
            format!("rule {name:?} names no group: nobody could approve"),
        ));
    }
    let mut names = Vec::new();
    for group in raw.groups.into_inner() {
        let at = group.span().start;
        let group = group.into_inner();
        if group != ANYONE && !groups.contains_key(&group) {
            let known: Vec<&str> = groups.keys().map(String::as_str).collect();
            return Err(error(
                at,
                format!(
                    "rule {name:?} names the unknown group {group:?} (groups: {}; or \"*\")",
                    known.join(", ")
                ),
            ));
        }
        names.push(group);
    }
    let approvals = match raw.approvals {
        None => 1,
        Some(k) if (1..=MAX_APPROVALS).contains(k.get_ref()) => *k.get_ref(),
        Some(k) => {
            return Err(error(
                k.span().start,
                format!("rule {name:?}: approvals must be 1 to {MAX_APPROVALS}"),
            ));
        }
    };
    let max_ttl = match raw.max_ttl {
        None => None,
        Some(ttl) => match humantime::parse_duration(ttl.get_ref()) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => return Err(error(ttl.span().start, "max_ttl is zero".to_owned())),
            Err(e) => {
                return Err(error(
                    ttl.span().start,
                    format!("max_ttl {:?}: {e} (e.g. \"30m\", \"2h\")", ttl.get_ref()),
                ));
            }
        },
    };
    let args = raw
        .args
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
            )
        })
        .collect();
    Ok(Rule {
        view: RuleView {
            name,
            groups: names,
            approvals,
            reason_to_approve: raw.reason_to_approve,
            reason_to_reject: raw.reason_to_reject,
        },
        route: raw.route,
        tool: raw.tool.into_inner(),
        args,
        max_ttl,
    })
}
