//! Latency in microseconds, recorded in an HDR histogram (the `hdrhistogram`
//! crate, three significant digits: under 0.1 % error), mergeable across
//! client threads and seconds.

/// Latencies above a minute are recorded as a minute.
const HIGHEST_US: u64 = 60_000_000;

#[derive(Clone)]
pub struct Histogram(hdrhistogram::Histogram<u64>);

impl Default for Histogram {
    fn default() -> Self {
        // Constant bounds the crate accepts (1 <= low, high >= 2 * low, 3 digits).
        Histogram(hdrhistogram::Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("constant bounds are valid"))
    }
}

impl Histogram {
    pub fn record(&mut self, us: u64) {
        self.0.saturating_record(us.clamp(1, HIGHEST_US));
    }

    pub fn merge(&mut self, other: &Histogram) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn max_us(&self) -> u64 {
        self.0.max()
    }

    /// The value at quantile `q` (0..=1); 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        self.0.value_at_quantile(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_uniform_run() {
        let mut h = Histogram::default();
        for us in 1..=10_000u64 {
            h.record(us);
        }
        let p50 = h.quantile_us(0.5);
        let p99 = h.quantile_us(0.99);
        assert!((4_995..=5_005).contains(&p50), "{p50}");
        assert!((9_890..=9_910).contains(&p99), "{p99}");
        assert!((9_995..=10_007).contains(&h.max_us()), "{}", h.max_us());
        assert_eq!(Histogram::default().quantile_us(0.99), 0);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        b.record(1_000);
        b.record(1_000);
        a.merge(&b);
        assert_eq!((a.0.len(), a.quantile_us(0.5), a.max_us()), (3, 1_000, 1_000));
    }
}
