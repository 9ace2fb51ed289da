//! A duration histogram with fixed buckets, updated with atomic adds only: observing never
//! takes a lock and never allocates, so it can sit on the request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ai_session_protocol::stats::DurationSummary;

/// Upper bounds of the buckets, in seconds: from 100 µs (a socket round trip) to 5 minutes
/// (a long exec's hard timeout). A value equal to a bound falls in that bucket (`le`).
pub(crate) const BOUNDS: [f64; 20] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Counts per bucket (not cumulative; the last one is `+Inf`) and the sum in nanoseconds.
pub(crate) struct Histogram {
    counts: [AtomicU64; BOUNDS.len() + 1],
    sum_ns: AtomicU64,
}

/// A histogram read at one moment.
pub(crate) struct Snapshot {
    /// Cumulative counts per bound, then `+Inf` (which equals `count`).
    pub cumulative: [u64; BOUNDS.len() + 1],
    pub count: u64,
    pub sum_secs: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let bucket = BOUNDS.partition_point(|b| *b < secs);
        if let Some(c) = self.counts.get(bucket) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// The counts as they are now. The count is the sum of the buckets read, so `+Inf` always
    /// equals it even while other threads observe (the sum may then be a value ahead).
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut cumulative = [0u64; BOUNDS.len() + 1];
        let mut total = 0u64;
        for (slot, c) in cumulative.iter_mut().zip(&self.counts) {
            total += c.load(Ordering::Relaxed);
            *slot = total;
        }
        Snapshot {
            cumulative,
            count: total,
            sum_secs: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

impl Snapshot {
    /// The `q` quantile in seconds, interpolated linearly inside its bucket as Prometheus'
    /// `histogram_quantile` does; the highest finite bound when it falls in `+Inf`.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = q * self.count as f64;
        let i = self.cumulative.iter().position(|c| *c as f64 >= rank)?;
        let Some(upper) = BOUNDS.get(i) else {
            return BOUNDS.last().copied();
        };
        let (lower, below) = match i {
            0 => (0.0, 0),
            _ => (BOUNDS[i - 1], self.cumulative[i - 1]),
        };
        let in_bucket = (self.cumulative[i] - below) as f64;
        if in_bucket == 0.0 {
            return Some(*upper);
        }
        Some(lower + (upper - lower) * (rank - below as f64) / in_bucket)
    }

    /// For people: count, sum and p50/p90/p99 in milliseconds.
    pub(crate) fn summary(&self) -> DurationSummary {
        let ms = |q: f64| self.quantile(q).map(|s| (s * 1e6).round() / 1e3);
        DurationSummary {
            count: self.count,
            sum_ms: (self.sum_secs * 1e6).round() / 1e3,
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(100)); // exactly the first bound
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(1000)); // past every bound
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.cumulative[0], 1);
        assert_eq!(
            s.cumulative[BOUNDS.iter().position(|b| *b == 0.005).unwrap()],
            2
        );
        assert_eq!(s.cumulative[BOUNDS.len() - 1], 2);
        assert_eq!(s.cumulative[BOUNDS.len()], 3);
        assert!((s.sum_secs - 1000.0031).abs() < 1e-9);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let h = Histogram::default();
        assert!(h.snapshot().quantile(0.5).is_none());
        for _ in 0..100 {
            h.observe(Duration::from_micros(700)); // the (0.5 ms, 1 ms] bucket
        }
        let s = h.snapshot();
        let p50 = s.quantile(0.5).unwrap();
        assert!((p50 - 0.00075).abs() < 1e-12, "{p50}");
        assert_eq!(s.quantile(1.0).unwrap(), 0.001);
        let h = Histogram::default();
        h.observe(Duration::from_secs(900));
        assert_eq!(h.snapshot().quantile(0.5), Some(300.0));
    }
}
