//! Whether a reviewer may take a decision (issue #28): who they are and in which groups,
//! believed only from what the gate checks ([`crate::reviewer`]), against the rule the
//! request was opened under ([`hitl_wire::policy::may_decide`]); and what their approval does
//! — the k-th distinct one approves, an earlier one is counted and the request stays open.

use hitl_wire::policy::{self, ANYONE, ApprovalView, RuleView};

use super::*;
use crate::reviewer::Reviewer;

impl Gate {
    /// The reviewer a decision names, as recorded and signed, with their groups' source. An
    /// `idToken` is verified and names them; without one, the name is trusted because only
    /// the admin token's holder (hitl-ui, which asserts its signed-in reviewer) can decide —
    /// unless the admin API is open. Open, a decision that names nobody (the seed's UI sends
    /// no name) is applied as [`UNNAMED_REVIEWER`], with a warning each time.
    pub(super) fn reviewer(
        &self,
        id: &str,
        request: &DecideRequest,
    ) -> Result<Reviewer, DecideError> {
        if let Some(token) = request.id_token.as_deref() {
            let Some(tokens) = self.settings.reviewers.as_ref() else {
                return Err(DecideError::Invalid(format!(
                    "the decision carries an ID token, but this gate verifies none ({} is \
                     unset); nothing was decided",
                    hitl_wire::env::extauth::REVIEWER_JWKS_FILE
                )));
            };
            let reviewer = tokens
                .verify(token)
                .map_err(|e| DecideError::Forbidden(format!("{e}; nothing was decided")))?;
            if let Some(named) = request.reviewer.as_deref().filter(|n| !n.trim().is_empty())
                && !hitl_wire::identity::same_person(named, &reviewer.name)
            {
                return Err(DecideError::Invalid(format!(
                    "the decision names {named:?} but its ID token names {:?}; nothing was \
                     decided",
                    reviewer.name
                )));
            }
            return Ok(reviewer);
        }
        let name = request
            .reviewer
            .as_deref()
            .map(str::trim)
            .unwrap_or_default();
        if name.is_empty() && !self.settings.reviewer_verified {
            tracing::warn!(
                %id,
                reviewer = UNNAMED_REVIEWER,
                "INSECURE: a decision that names no reviewer, applied because the admin API is \
                 open ({}); recorded and signed as {UNNAMED_REVIEWER}",
                hitl_wire::env::extauth::INSECURE_OPEN_ADMIN
            );
            return Ok(Reviewer {
                name: UNNAMED_REVIEWER.to_owned(),
                identity: None,
                token_groups: None,
            });
        }
        if name.is_empty() {
            return Err(DecideError::Invalid(
                "a decision must name its reviewer (\"reviewer\": \"…\"); nothing was decided"
                    .into(),
            ));
        }
        if name.len() > MAX_REVIEWER_BYTES || name.chars().any(char::is_control) {
            return Err(DecideError::Invalid(format!(
                "reviewer must be at most {MAX_REVIEWER_BYTES} bytes without control \
                 characters; nothing was decided"
            )));
        }
        if !self.settings.reviewer_verified {
            return Ok(Reviewer {
                name: format!("{name}{UNVERIFIED_SUFFIX}"),
                identity: None,
                token_groups: None,
            });
        }
        let identity = hitl_wire::identity::Identity::parse(name).map_err(|e| {
            DecideError::Invalid(format!("reviewer {name:?}: {e}; nothing was decided"))
        })?;
        Ok(Reviewer {
            name: name.to_owned(),
            identity: Some(identity),
            token_groups: None,
        })
    }

    /// Whether `reviewer` may take `request`'s decision on the request behind `card`, and if
    /// so what it does: the verdict, and the approvers before and after it (an approval).
    pub(super) fn judge(
        &self,
        card: &ParkedCall,
        reviewer: &Reviewer,
        request: &DecideRequest,
        now: OffsetDateTime,
    ) -> Result<(requests::Verdict, Option<requests::Count>), DecideError> {
        let view = card.request.as_ref();
        let rule = match view.and_then(|v| v.rule.clone()) {
            Some(rule) => rule,
            // Opened before this gate had a rule on its cards (an older version's row, or an
            // older replica's): judged by the policy in force, never waved through.
            None => self.rule(card).map(|r| r.view.clone()).ok_or_else(|| {
                DecideError::Forbidden(format!(
                    "no rule of the approval policy covers {} on {}: nobody may decide \
                         it; nothing was decided",
                    card.tool_name, card.path
                ))
            })?,
        };
        let before: Vec<ApprovalView> = view.map(|v| v.approvals.clone()).unwrap_or_default();
        self.eligible(&rule, &before, card, reviewer, request)?;
        if !request.approved {
            return Ok((requests::Verdict::Reject, None));
        }
        let mut after = before.clone();
        after.push(ApprovalView {
            reviewer: reviewer.name.clone(),
            at: now,
            reason: request.reason.clone(),
        });
        let verdict = if after.len() >= usize::try_from(rule.approvals).unwrap_or(1) {
            requests::Verdict::Approve
        } else {
            requests::Verdict::Count
        };
        Ok((verdict, Some(requests::Count { before, after })))
    }

    /// [`policy::may_decide`] for `reviewer`, their groups being their ID token's, or (for a
    /// name the admin token's holder vouches for, without a token) those the policy file lists
    /// them in.
    fn eligible(
        &self,
        rule: &RuleView,
        before: &[ApprovalView],
        card: &ParkedCall,
        reviewer: &Reviewer,
        request: &DecideRequest,
    ) -> Result<(), DecideError> {
        let refuse = |why: String| {
            DecideError::Forbidden(format!(
                "{} may not decide: {why}; nothing was decided",
                reviewer.name
            ))
        };
        let Some(identity) = reviewer.identity.as_ref() else {
            // Nobody vouches for the name (open admin API): only a rule open to anyone.
            if rule.groups.iter().any(|g| g == ANYONE) && rule.approvals <= 1 {
                return Ok(());
            }
            return Err(refuse(format!(
                "rule {:?} needs a reviewer the gate can verify, and the admin API is open",
                rule.name
            )));
        };
        // A signed-in reviewer's groups are their identity provider's word, never added to
        // from the static list: its members are sign-in names of the no-setup list, and a
        // provider may let anyone take a name like one of them (as hitl-ui judges it).
        let groups = match &reviewer.token_groups {
            Some(groups) => groups.clone(),
            None => self.settings.policy.static_groups(identity),
        };
        policy::may_decide(
            rule,
            before,
            card.requester.as_deref(),
            identity,
            &groups,
            request.approved,
            &request.reason,
        )
        .map_err(|e| refuse(e.to_string()))
    }
}
