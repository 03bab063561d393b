//! What the gate tells the notification receivers ([`crate::notify`]): a request opened, was
//! decided, or expired — said once, by the replica where it happened (the others only hear
//! of it).

use hitl_wire::notify::{Kind, Notification};

use super::*;

impl Gate {
    /// Request `card` (its first attempt's call, with its view) opened, was decided
    /// (`decided`: the decision's record) or expired.
    pub(super) fn notice(&self, kind: Kind, card: &ParkedCall, decided: Option<&DecidedCall>) {
        let request_id = card.request.as_ref().map_or(&card.id, |r| &r.id).clone();
        let arguments = card
            .request
            .as_ref()
            .map(|r| r.canonical_args.clone())
            .unwrap_or_else(|| card.tool_args.to_string());
        self.notifier.send(Notification {
            kind,
            link: self.notifier.link(&request_id),
            request_id,
            tool: card.tool_name.clone(),
            arguments,
            requester: card.requester.clone(),
            outcome: decided.map(|d| d.outcome.as_str().to_owned()),
            reviewer: decided.and_then(|d| d.reviewer.clone()),
            reason: decided.map(|d| d.reason.clone()),
            at: decided.map_or_else(OffsetDateTime::now_utc, |d| d.decided_at),
            rule: card.request.as_ref().and_then(|r| r.rule.clone()),
        });
    }
}
