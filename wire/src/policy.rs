//! Who may approve what (issue #28): the approval policy's file, the rule a gated call falls
//! under, and the one eligibility check — the gate enforces it on every decision, hitl-ui
//! shows its answer on every card.
//!
//! The file is TOML (in `manifests/` a ConfigMap; hitl-extauth reads it from
//! `APPROVAL_POLICY_FILE`):
//!
//! ```toml
//! [groups.platform]
//! members = ["reviewer"]          # static sign-in names; OIDC reviewers bring their groups
//!
//! [[rule]]
//! name = "migration-down-to-v1"
//! tool = "run_migration"
//! args = { version = "v1" }       # optional: these arguments, exactly (JSON equality)
//! groups = ["dba", "sre"]
//! approvals = 2                   # k distinct eligible approvers
//! reason_to_reject = true
//! max_ttl = "1h"                  # the request expires sooner than APPROVAL_TTL
//! ```
//!
//! The first rule that matches a call decides who may approve it; **no rule: denied**. A rule
//! may name the group [`ANYONE`] (every signed-in reviewer). A file that does not parse, or a
//! rule that names an unknown group, is refused with `file:line:column`.

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::identity::{Identity, same_person};

/// The group every signed-in reviewer is in.
pub const ANYONE: &str = "*";
/// Most approvals a rule may ask for.
pub const MAX_APPROVALS: u32 = 10;

/// A rule as a card carries it ([`crate::extauth::RequestView::rule`]) and the approval token
/// names it: what a reviewer must be to decide, and how many must approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    pub name: String,
    /// Groups whose members may decide ([`ANYONE`]: every signed-in reviewer).
    pub groups: Vec<String>,
    /// Distinct approvals that release the call (k).
    pub approvals: u32,
    #[serde(default)]
    pub reason_to_approve: bool,
    #[serde(default)]
    pub reason_to_reject: bool,
}

/// One reviewer's approval of a request that needs more than one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApprovalView {
    pub reviewer: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default)]
    pub reason: String,
}

/// Why a reviewer may not take a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotEligible {
    /// Not in any group the rule names.
    NotInGroups { rule: String, groups: Vec<String> },
    /// The reviewer asked for the call.
    IsRequester,
    /// The reviewer has already approved this request.
    AlreadyApproved,
    /// The rule needs a reason for this decision.
    ReasonRequired { approve: bool },
}

impl fmt::Display for NotEligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotEligible::NotInGroups { rule, groups } => write!(
                f,
                "rule {rule:?} lets only {} decide, and you are in none of them",
                groups.join(", ")
            ),
            NotEligible::IsRequester => write!(f, "you asked for this call: someone else decides"),
            NotEligible::AlreadyApproved => write!(
                f,
                "you have already approved this request: another reviewer must"
            ),
            NotEligible::ReasonRequired { approve } => write!(
                f,
                "rule requires a reason to {}",
                if *approve { "approve" } else { "reject" }
            ),
        }
    }
}

/// Whether `reviewer`, in `groups`, may take the decision `approve` (with `reason`) on a
/// request under `rule` that `requester` asked for and `approvals` already approved.
pub fn may_decide(
    rule: &RuleView,
    approvals: &[ApprovalView],
    requester: Option<&str>,
    reviewer: &Identity,
    groups: &[String],
    approve: bool,
    reason: &str,
) -> Result<(), NotEligible> {
    let member = rule
        .groups
        .iter()
        .any(|g| g == ANYONE || groups.iter().any(|mine| mine == g));
    if !member {
        return Err(NotEligible::NotInGroups {
            rule: rule.name.clone(),
            groups: rule.groups.clone(),
        });
    }
    if requester.is_some_and(|r| same_person(r, reviewer.as_str())) {
        return Err(NotEligible::IsRequester);
    }
    if approve
        && approvals
            .iter()
            .any(|a| same_person(&a.reviewer, reviewer.as_str()))
    {
        return Err(NotEligible::AlreadyApproved);
    }
    let needed = if approve {
        rule.reason_to_approve
    } else {
        rule.reason_to_reject
    };
    if needed && reason.trim().is_empty() {
        return Err(NotEligible::ReasonRequired { approve });
    }
    Ok(())
}

/// A policy file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {message}")]
pub struct PolicyError {
    pub origin: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One rule, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub view: RuleView,
    /// The request path the call must have (exact, its query string aside), if any.
    pub route: Option<String>,
    /// The tool (exact), or [`ANYONE`] for every tool.
    pub tool: String,
    /// Arguments the call must carry, each equal (JSON equality).
    pub args: BTreeMap<String, serde_json::Value>,
    /// The longest an open request under this rule lives (caps `APPROVAL_TTL`).
    pub max_ttl: Option<Duration>,
}

impl Rule {
    /// Whether this rule covers a `tools/call` of `tool` with `args` on `route`.
    pub fn matches(&self, route: &str, tool: &str, args: &serde_json::Value) -> bool {
        // `?…` reaches the same endpoint: it must not slip past a rule for that path to a
        // weaker one after it.
        let path = route.split(['?', '#']).next().unwrap_or(route);
        self.route.as_deref().is_none_or(|r| r == path)
            && (self.tool == ANYONE || self.tool == tool)
            && self
                .args
                .iter()
                .all(|(k, want)| args.get(k).is_some_and(|got| got == want))
    }
}

/// The approval policy, checked: groups with their static members, rules in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Group → static members (sign-in names of the no-setup reviewer list).
    pub groups: BTreeMap<String, Vec<String>>,
    pub rules: Vec<Rule>,
}

impl Policy {
    /// The policy of a gate given no file: every gated call needs one approval from any
    /// signed-in reviewer (the seed's behaviour).
    pub fn anyone_once() -> Self {
        Self {
            groups: BTreeMap::new(),
            rules: vec![Rule {
                view: RuleView {
                    name: "default".to_owned(),
                    groups: vec![ANYONE.to_owned()],
                    approvals: 1,
                    reason_to_approve: false,
                    reason_to_reject: false,
                },
                route: None,
                tool: ANYONE.to_owned(),
                args: BTreeMap::new(),
                max_ttl: None,
            }],
        }
    }

    /// Parse and check `text`; `origin` (the file's path) names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, PolicyError> {
        file::parse(text, origin)
    }

    /// The first rule that covers the call; `None`: no rule does, and the call is denied.
    pub fn rule_for(&self, route: &str, tool: &str, args: &serde_json::Value) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(route, tool, args))
    }

    /// The groups that list `reviewer` as a static member.
    pub fn static_groups(&self, reviewer: &Identity) -> Vec<String> {
        groups_listing(&self.groups, reviewer)
    }

    /// What `GET /policy` serves.
    pub fn view(&self) -> PolicyView {
        PolicyView {
            groups: self.groups.clone(),
            rules: self.rules.iter().map(|r| r.view.clone()).collect(),
        }
    }
}

/// `GET /policy`: the rules (in order) and the static members of each group, for hitl-ui to
/// show why a reviewer may or may not decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    pub groups: BTreeMap<String, Vec<String>>,
    pub rules: Vec<RuleView>,
}

impl PolicyView {
    /// The groups that list `reviewer` as a static member.
    pub fn static_groups(&self, reviewer: &Identity) -> Vec<String> {
        groups_listing(&self.groups, reviewer)
    }
}

/// The groups of `groups` (name → static members) that list `reviewer`.
fn groups_listing(groups: &BTreeMap<String, Vec<String>>, reviewer: &Identity) -> Vec<String> {
    groups
        .iter()
        .filter(|(_, members)| members.iter().any(|m| same_person(m, reviewer.as_str())))
        .map(|(g, _)| g.clone())
        .collect()
}

mod file;

#[cfg(test)]
mod tests;
