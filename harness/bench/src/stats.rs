//! Percentiles of latency samples: nearest-rank, no interpolation, no stats crate.
//!
//! Nearest-rank means every figure reported is a sample that was actually observed (the p99
//! of 100 samples is the 99th smallest; the median of an even count is the lower middle).

use std::time::Duration;

use serde::Serialize;

/// The `p`-th percentile (0 ≤ `p` ≤ 100) of `sorted` (ascending), by nearest rank; `None`
/// for no samples. `p` outside 0..=100 is clamped.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let p = if p.is_nan() {
        100.0
    } else {
        p.clamp(0.0, 100.0)
    };
    // Rank in 1..=n: the smallest sample with at least p% of the samples at or below it.
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// What the bench reports for one series of latencies (milliseconds, for people and JSON).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub median_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub min_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    /// Summarise `samples` (any order); `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let total: Duration = sorted.iter().sum();
        Some(Self {
            n: sorted.len(),
            median_ms: ms(percentile(&sorted, 50.0)?),
            p99_ms: ms(percentile(&sorted, 99.0)?),
            max_ms: ms(*sorted.last()?),
            min_ms: ms(*sorted.first()?),
            mean_ms: ms(total) / sorted.len() as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn no_samples_no_percentile() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let one = ms([7]);
        for p in [0.0, 1.0, 50.0, 99.0, 100.0] {
            assert_eq!(percentile(&one, p), Some(Duration::from_millis(7)));
        }
    }

    #[test]
    fn nearest_rank_on_one_to_a_hundred() {
        let sorted = ms(1..=100);
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&sorted, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&sorted, 99.5), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&sorted, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&sorted, 0.0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn small_counts_round_up_to_a_real_sample() {
        // p99 of 10 samples is the largest; the median of an even count the lower middle.
        let sorted = ms(1..=10);
        assert_eq!(percentile(&sorted, 99.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(5)));
        assert_eq!(
            percentile(&ms([1, 2, 3]), 50.0),
            Some(Duration::from_millis(2))
        );
    }

    #[test]
    fn out_of_range_p_is_clamped() {
        let sorted = ms([1, 2, 3]);
        assert_eq!(percentile(&sorted, -5.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&sorted, 250.0), Some(Duration::from_millis(3)));
        assert_eq!(
            percentile(&sorted, f64::NAN),
            Some(Duration::from_millis(3))
        );
    }

    #[test]
    fn summary_sorts_its_input() {
        let summary = Summary::of(&ms([30, 10, 20, 40])).unwrap();
        assert_eq!(summary.n, 4);
        assert_eq!(summary.median_ms, 20.0);
        assert_eq!(summary.p99_ms, 40.0);
        assert_eq!(summary.max_ms, 40.0);
        assert_eq!(summary.min_ms, 10.0);
        assert_eq!(summary.mean_ms, 25.0);
    }
}
