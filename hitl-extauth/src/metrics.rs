//! Prometheus metrics: how many calls are parked, how parks ended, how long they waited, and
//! what the classifier decided.

use hitl_wire::extauth::Outcome;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Upper bounds (seconds) of the wait-time histogram: a quick click to a long coffee break.
const WAIT_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// A notification's fate: `sent`, `failed` (after every retry) or `dropped` (queue full).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabel {
    verdict: &'static str,
}

/// What the classifier did with one `Check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckVerdict {
    Pass,
    Deny,
    Park,
}

impl CheckVerdict {
    /// In the order of their discriminants.
    const ALL: [Self; 3] = [Self::Pass, Self::Deny, Self::Park];

    fn as_str(self) -> &'static str {
        match self {
            CheckVerdict::Pass => "pass",
            CheckVerdict::Deny => "deny",
            CheckVerdict::Park => "park",
        }
    }
}

/// The gate's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    parked: Gauge,
    decisions: Family<OutcomeLabel, Counter>,
    wait: Histogram,
    /// The `checks` series by verdict (pass, deny, park), looked up once: counting a Check
    /// is one atomic add, not a family lookup.
    checked: [Counter; 3],
    notifications: Family<ResultLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hitl_extauth");
        let parked = Gauge::default();
        let decisions = Family::<OutcomeLabel, Counter>::default();
        let wait = Histogram::new(WAIT_BUCKETS);
        let checks = Family::<VerdictLabel, Counter>::default();
        registry.register("parked", "Calls waiting for a decision now", parked.clone());
        registry.register(
            "decisions",
            "Parked calls ended, by outcome (approved, rejected, expired, abandoned, lost, denied)",
            decisions.clone(),
        );
        registry.register(
            "park_wait_seconds",
            "Time from park to end of parked calls",
            wait.clone(),
        );
        registry.register(
            "checks",
            "Check requests by classifier verdict (pass, deny, park)",
            checks.clone(),
        );
        let notifications = Family::<ResultLabel, Counter>::default();
        registry.register(
            "notifications",
            "Notifications to webhook receivers, by result (sent, failed, dropped)",
            notifications.clone(),
        );
        for result in ["sent", "failed", "dropped"] {
            let _ = notifications.get_or_create(&ResultLabel { result });
        }
        // Every series exists from the start, so dashboards and tests see zeros, not gaps.
        for outcome in Outcome::ALL {
            let _ = decisions.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        let checked = CheckVerdict::ALL.map(|verdict| {
            checks
                .get_or_create(&VerdictLabel {
                    verdict: verdict.as_str(),
                })
                .clone()
        });
        Self {
            registry,
            parked,
            decisions,
            wait,
            checked,
            notifications,
        }
    }

    /// The notifications' counters, for the notifier to count into.
    pub fn notifications(&self) -> Family<ResultLabel, Counter> {
        self.notifications.clone()
    }

    pub fn checked(&self, verdict: CheckVerdict) {
        self.checked[verdict as usize].inc();
    }

    pub fn parked(&self) {
        self.parked.inc();
    }

    /// A parked call ended after `waited_ms`.
    pub fn ended(&self, outcome: Outcome, waited_ms: u64) {
        self.parked.dec();
        self.closed(outcome, 1);
        self.wait.observe(waited_ms as f64 / 1000.0);
    }

    /// Count `n` calls closed with `outcome` (without a wait sample: used for `lost`).
    pub fn closed(&self, outcome: Outcome, n: u64) {
        self.decisions
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc_by(n);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String can't fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series() {
        let m = Metrics::new();
        m.checked(CheckVerdict::Park);
        m.parked();
        m.parked();
        m.ended(Outcome::Approved, 1200);
        m.closed(Outcome::Lost, 3);
        let text = m.render();
        for line in [
            "hitl_extauth_parked 1",
            r#"hitl_extauth_decisions_total{outcome="approved"} 1"#,
            r#"hitl_extauth_decisions_total{outcome="lost"} 3"#,
            r#"hitl_extauth_decisions_total{outcome="expired"} 0"#,
            r#"hitl_extauth_checks_total{verdict="park"} 1"#,
            "hitl_extauth_park_wait_seconds_count 1",
            r#"hitl_extauth_park_wait_seconds_bucket{le="2.5"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
