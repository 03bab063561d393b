//! Step 6: the gate as two replicas on one PostgreSQL store (issue #27). One PostgreSQL
//! server and two hitl-extauth replicas of the bench's own ([`fleet`]); the Checks go straight
//! to the replicas' gRPC ports — no gateway, no mock-db-mcp: these rows measure the gate and
//! its store. Four rows, one module each: [`handoff`] (a decision on B releases the call held
//! on A), [`parks`] (parks per second on PostgreSQL), [`race`] (fifty decisions racing over
//! both replicas), [`open`] (many open requests with no caller held: the replicas' memory),
//! run in that order; [`open`] on a fresh PostgreSQL and fresh replicas, so that its memory
//! figures start from a gate that has held nothing yet.

mod fleet;
mod handoff;
mod open;
mod parks;
mod race;

use std::{fmt::Write as _, path::Path};

use serde::Serialize;

use super::{Sizes, Target, stats::Summary};
use fleet::{Fleet, NAMES};

/// Decision on one replica → release on the other, p99.
pub const HANDOFF_P99_TARGET_MS: f64 = 20.0;
/// Parks per second on PostgreSQL.
pub const PARKS_PER_S_TARGET: f64 = 1_000.0;
/// Resident memory of each replica with every open request of step 6c, MiB.
pub const RSS_TARGET_MIB: f64 = 50.0;

/// Step 6's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Replicas {
    /// The store, and how the Checks reached the replicas.
    pub setup: String,
    pub handoff: handoff::Handoff,
    pub parks: parks::Parks,
    pub open: open::Open,
    pub race: race::Race,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Replicas {
    pub fn targets(&self) -> Vec<Target> {
        let (p, o, r) = (&self.parks, &self.open, &self.race);
        let mut targets = vec![
            Target::below(
                "6a decision on B → release on A: p99",
                "ms",
                self.handoff.decision_to_release.p99_ms,
                HANDOFF_P99_TARGET_MS,
            ),
            Target::at_least(
                format!("6b parks/s on PostgreSQL ({} at once)", p.calls),
                "/s",
                p.parks_per_s,
                PARKS_PER_S_TARGET,
            ),
            Target::at_most(
                format!("6b held calls not released after approval ({})", p.calls),
                "",
                (p.calls - p.released.min(p.calls)) as f64,
                0.0,
            ),
        ];
        for (i, name) in NAMES.iter().enumerate() {
            targets.push(Target::below(
                format!(
                    "6c replica {name} RSS, {} open requests, no caller",
                    o.requests
                ),
                "MiB",
                mib(o.rss_after_kib[i]),
                RSS_TARGET_MIB,
            ));
        }
        targets.push(Target::at_most(
            "6c open requests still listed with a caller waiting",
            "",
            o.listed_waiting.iter().sum::<usize>() as f64,
            0.0,
        ));
        targets.push(Target::at_most(
            format!(
                "6d rounds of {} racing decisions without exactly one winner (of {})",
                r.deciders, r.rounds
            ),
            "",
            (r.rounds - r.one_winner_rounds) as f64,
            0.0,
        ));
        targets.push(Target::at_most(
            format!(
                "6d rounds whose held call did not get the winner's decision (of {})",
                r.rounds
            ),
            "",
            (r.rounds - r.held_got_winner_rounds) as f64,
            0.0,
        ));
        targets
    }

    /// Step 6's lines of the report.
    pub fn render(&self, w: &mut String) {
        let _ = writeln!(w, "6 replicas: {}", self.setup);
        let row = |w: &mut String, label: &str, s: &Summary| {
            let _ = writeln!(
                w,
                "{label:<58} {:>7} {:>9.3} {:>9.3} {:>9.3}",
                s.n, s.median_ms, s.p99_ms, s.max_ms
            );
        };
        let _ = writeln!(
            w,
            "{:<58} {:>7} {:>9} {:>9} {:>9}",
            "latency (ms)", "n", "median", "p99", "max"
        );
        row(
            w,
            "6a decision on B → release on A (POST /decide → answer)",
            &self.handoff.decision_to_release,
        );
        row(
            w,
            "  (POST /decide on B round trip alone)",
            &self.handoff.decide_round_trip,
        );
        let p = &self.parks;
        let _ = writeln!(
            w,
            "6b {} Checks at once to A: all held in {:.2} s = {:.0} parks/s; all shown on B's \
             /events after {:.2} s; approved on A and B, drained in {:.2} s, {} released",
            p.calls, p.park_all_s, p.parks_per_s, p.seen_on_b_s, p.drain_s, p.released
        );
        for problem in &p.problems {
            let _ = writeln!(w, "    ! {problem}");
        }
        let o = &self.open;
        let _ = writeln!(
            w,
            "6c {} open requests, no caller held (opened and cancelled in {:.1} s, fresh replicas): \
             RSS A {:.1} → {:.1} MiB ({:.2} KiB per request), B {:.1} → {:.1} MiB ({:.2} KiB); \
             listed on A {} ({} waiting), on B {} ({} waiting)",
            o.requests,
            o.open_all_s,
            mib(o.rss_before_kib[0]),
            mib(o.rss_after_kib[0]),
            o.kib_per_request(0),
            mib(o.rss_before_kib[1]),
            mib(o.rss_after_kib[1]),
            o.kib_per_request(1),
            o.listed[0],
            o.listed_waiting[0],
            o.listed[1],
            o.listed_waiting[1]
        );
        let r = &self.race;
        let _ = writeln!(
            w,
            "6d {} decisions at once over A and B, {} rounds: exactly one winner in {}, the held \
             call answered with its decision in {} (won on A {}, on B {}); 200 × {}, 409 × {}, \
             other × {}",
            r.deciders,
            r.rounds,
            r.one_winner_rounds,
            r.held_got_winner_rounds,
            r.won_on[0],
            r.won_on[1],
            r.ok,
            r.conflict,
            r.other
        );
        for problem in &r.problems {
            let _ = writeln!(w, "    ! {problem}");
        }
    }
}

/// Start PostgreSQL and two replicas (logs in `<log_dir>/replicas/`), run the four rows.
pub async fn measure(log_dir: &Path, sizes: &Sizes) -> anyhow::Result<Replicas> {
    eprintln!("==> [6/6] replicas: starting PostgreSQL and two hitl-extauth replicas on it");
    let fleet = Fleet::start(log_dir, "replicas", super::PARK_TIMEOUT).await?;
    eprintln!(
        "==> [6a/6] decision on replica B → release on replica A ({} calls, one at a time)",
        sizes.replica_handoff_samples
    );
    let handoff =
        handoff::measure(&fleet, sizes.replica_handoff_samples, sizes.release_warmup).await?;
    eprintln!(
        "==> [6b/6] {} Checks at once to replica A: parks per second on PostgreSQL",
        sizes.capacity_calls
    );
    let parks = parks::measure(&fleet, sizes.capacity_calls).await?;
    eprintln!(
        "==> [6d/6] {} decisions at once over both replicas, {} rounds",
        race::DECIDERS,
        sizes.replica_race_rounds
    );
    let race = race::measure(&fleet, sizes.replica_race_rounds).await?;
    let setup = format!(
        "2 hitl-extauth on one PostgreSQL ({}), Checks sent straight to their gRPC ports (no \
         gateway: the gate and its store); logs in {} and replicas-open",
        postgres_version(),
        fleet.dir.display()
    );
    drop(fleet);
    eprintln!(
        "==> [6c/6] {} open requests with no caller held (batches of {}), on a fresh \
         PostgreSQL and fresh replicas",
        sizes.replica_open_requests,
        open::BATCH
    );
    let fresh = Fleet::start(log_dir, "replicas-open", super::PARK_TIMEOUT).await?;
    let open = open::measure(&fresh, sizes.replica_open_requests).await?;
    Ok(Replicas {
        setup,
        handoff,
        parks,
        open,
        race,
    })
}

/// What `postgres --version` says, or where it is.
fn postgres_version() -> String {
    let Ok(bin) = hitl_lab::postgres::bin_dir() else {
        return "version unknown".into();
    };
    std::process::Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| bin.display().to_string())
}
