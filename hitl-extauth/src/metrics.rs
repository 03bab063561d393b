//! Prometheus metrics: the build, how many calls are parked, what was decided about them, how
//! long they waited, what the classifier did, and how long a Check took to answer.
//!
//! `decisions_total{outcome}` counts decisions, each once: a reviewer's approval or rejection
//! of a request, on the replica that committed it (however many held attempts it releases,
//! and never again when another replica learns of it or a re-send meets the same rejection),
//! and a parked attempt ended without one (`expired`, `abandoned`, `lost`). A denial without
//! review is no decision: it is `checks_total{verdict="deny"}`.
//!
//! `check_duration_seconds` is the time from a Check's arrival to its answer, parked calls
//! included (so its upper buckets are reviewers' minutes; `park_wait_seconds` is the parked
//! part alone). A Check the gateway cancels before its answer is not observed.

use hitl_wire::extauth::Outcome;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Upper bounds (seconds) of the Check latency histogram: a pass or a denial takes
/// microseconds, a parked call as long as its reviewer (up to the park timeout).
const CHECK_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 1.0, 10.0, 60.0,
    300.0, 900.0, 3600.0,
];

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
struct BuildLabel {
    version: &'static str,
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
    check_duration: Histogram,
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
        let build = Family::<BuildLabel, Gauge>::default();
        build
            .get_or_create(&BuildLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "build_info",
            "This build of hitl-extauth: always 1, its version as a label",
            build,
        );
        registry.register("parked", "Calls waiting for a decision now", parked.clone());
        registry.register(
            "decisions",
            "Decisions, each counted once: a reviewer's (approved, rejected) on the replica \
             that committed it, or a parked attempt ended without one (expired, abandoned, \
             lost); denials are not decisions",
            decisions.clone(),
        );
        let check_duration = Histogram::new(CHECK_BUCKETS);
        registry.register(
            "check_duration_seconds",
            "Time from a Check's arrival to its answer, parked calls included",
            check_duration.clone(),
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
        for outcome in Outcome::ALL.into_iter().filter(|o| *o != Outcome::Denied) {
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
            check_duration,
        }
    }

    /// A Check was answered `elapsed` after it arrived.
    pub fn answered(&self, elapsed: std::time::Duration) {
        self.check_duration.observe(elapsed.as_secs_f64());
    }

    /// A reviewer's decision was committed here: counted once, whatever it releases.
    pub fn decided(&self, outcome: Outcome) {
        self.count(outcome, 1);
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

    /// A parked call ended after `waited_ms`. Only an end nobody decided (expired,
    /// abandoned, lost) is a decision of its own; approvals and rejections were counted when
    /// they were committed ([`Metrics::decided`]), denials never are.
    pub fn ended(&self, outcome: Outcome, waited_ms: u64) {
        self.parked.dec();
        if matches!(
            outcome,
            Outcome::Expired | Outcome::Abandoned | Outcome::Lost
        ) {
            self.count(outcome, 1);
        }
        self.wait.observe(waited_ms as f64 / 1000.0);
    }

    /// `n` calls left pending by the previous run, closed as lost at start.
    pub fn lost(&self, n: u64) {
        self.count(Outcome::Lost, n);
    }

    fn count(&self, outcome: Outcome, n: u64) {
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
        m.parked();
        m.decided(Outcome::Approved);
        m.ended(Outcome::Approved, 1200);
        m.ended(Outcome::Approved, 1300);
        m.lost(3);
        m.answered(std::time::Duration::from_micros(30));
        let text = m.render();
        for line in [
            "hitl_extauth_parked 1",
            r#"hitl_extauth_decisions_total{outcome="approved"} 1"#,
            r#"hitl_extauth_decisions_total{outcome="lost"} 3"#,
            r#"hitl_extauth_decisions_total{outcome="expired"} 0"#,
            r#"hitl_extauth_checks_total{verdict="park"} 1"#,
            "hitl_extauth_park_wait_seconds_count 2",
            r#"hitl_extauth_check_duration_seconds_bucket{le="0.00005"} 1"#,
            r#"hitl_extauth_park_wait_seconds_bucket{le="2.5"} 2"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(!text.contains(r#"outcome="denied""#), "{text}");
        let build = format!(
            r#"hitl_extauth_build_info{{version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        );
        assert!(
            text.lines().any(|l| l == build),
            "{build} missing from\n{text}"
        );
    }
}
