//! The approval request's state machine, whole: its five states and every transition.
//!
//! ```text
//!  count ┐
//!        ▼   approve              use (one tools/call)
//!   open ─────────────► approved ───────────────────► used
//!    │  │                  │
//!    │  │ reject           │ APPROVAL_WINDOW passes
//!    │  └──────► rejected  ▼
//!    └──────────────────► expired   (open: APPROVAL_TTL passes)
//! ```
//!
//! `count` is an approval that is not yet the rule's k-th: the request stays open with one
//! more approver (conditional on the approvers it had, so two at once count once each).
//! `rejected`, `expired` and `used` are final. Each transition is one committed, conditional
//! write (`UPDATE … WHERE id = ? AND state = <from>`, [`super::rows`]), so of two racers
//! (two reviewers, a reviewer and the clock, two retries) exactly one wins.

pub use hitl_wire::extauth::RequestState as State;

/// What moves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A reviewer approved it, and with them the rule's k distinct reviewers have.
    Approve,
    /// A reviewer approved it, and fewer than the rule's k have: it stays open.
    Count,
    /// A reviewer rejected it.
    Reject,
    /// A `tools/call` of the action spent the approval.
    Use,
    /// Its clock ran out: `APPROVAL_TTL` while open, `APPROVAL_WINDOW` once approved.
    Expire,
}

/// Where `step` takes a request that is `from`; `None`: that transition does not exist.
pub fn next(from: State, step: Step) -> Option<State> {
    match (from, step) {
        (State::Open, Step::Approve) => Some(State::Approved),
        (State::Open, Step::Count) => Some(State::Open),
        (State::Open, Step::Reject) => Some(State::Rejected),
        (State::Open | State::Approved, Step::Expire) => Some(State::Expired),
        (State::Approved, Step::Use) => Some(State::Used),
        _ => None,
    }
}

/// `text` as a state (the store's spelling).
pub fn parse(text: &str) -> Option<State> {
    State::ALL.into_iter().find(|s| s.as_str() == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: [Step; 5] = [
        Step::Approve,
        Step::Count,
        Step::Reject,
        Step::Use,
        Step::Expire,
    ];

    #[test]
    fn every_transition_there_is() {
        let mut all = Vec::new();
        for from in State::ALL {
            for step in STEPS {
                if let Some(to) = next(from, step) {
                    all.push((from, step, to));
                }
            }
        }
        assert_eq!(
            all,
            [
                (State::Open, Step::Approve, State::Approved),
                (State::Open, Step::Count, State::Open),
                (State::Open, Step::Reject, State::Rejected),
                (State::Open, Step::Expire, State::Expired),
                (State::Approved, Step::Use, State::Used),
                (State::Approved, Step::Expire, State::Expired),
            ]
        );
    }

    #[test]
    fn nothing_leaves_a_final_state_and_states_read_back() {
        for from in [State::Rejected, State::Expired, State::Used] {
            assert!(STEPS.iter().all(|step| next(from, *step).is_none()));
        }
        for state in State::ALL {
            assert_eq!(parse(state.as_str()), Some(state));
        }
        assert_eq!(parse("pending"), None);
    }
}
