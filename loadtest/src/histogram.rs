//! A log-linear latency histogram in microseconds: 64 sub-buckets per power
//! of two (under 1.6 % error), fixed size, mergeable.

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const SLOTS: usize = 64 * SUB;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; SLOTS],
            total: 0,
            max_us: 0,
        }
    }
}

fn index(us: u64) -> usize {
    if us < SUB as u64 {
        return us as usize;
    }
    let msb = 63 - us.leading_zeros();
    let shift = msb - SUB_BITS;
    let mantissa = (us >> shift) as usize;
    ((shift as usize + 1) << SUB_BITS) + (mantissa - SUB)
}

/// The smallest value that falls in slot `i`.
fn lower_bound(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = (i >> SUB_BITS) - 1;
    (((i & (SUB - 1)) + SUB) as u64) << shift
}

impl Histogram {
    pub fn record(&mut self, us: u64) {
        self.counts[index(us).min(SLOTS - 1)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max_us = self.max_us.max(other.max_us);
    }

    pub fn max_us(&self) -> u64 {
        self.max_us
    }

    /// The value at quantile `q` (0..=1): the lower bound of the slot holding
    /// the ceil(q * n)-th smallest sample; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return lower_bound(i).min(self.max_us);
            }
        }
        self.max_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cover_values_in_order_with_small_error() {
        for us in [0u64, 1, 63, 64, 65, 127, 128, 1000, 123_456, 9_999_999] {
            let i = index(us);
            assert!(lower_bound(i) <= us && us - lower_bound(i) <= us / 60, "{us}");
            assert!(lower_bound(i + 1) > us, "{us}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_run() {
        let mut h = Histogram::default();
        for us in 1..=10_000u64 {
            h.record(us);
        }
        let p50 = h.quantile_us(0.5);
        let p99 = h.quantile_us(0.99);
        assert!((4_900..=5_000).contains(&p50), "{p50}");
        assert!((9_750..=9_900).contains(&p99), "{p99}");
        assert_eq!(
            h.quantile_us(1.0),
            9_984.min(h.max_us()).max(lower_bound(index(10_000)))
        );
        assert_eq!(h.max_us(), 10_000);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        b.record(1_000);
        b.record(1_000);
        a.merge(&b);
        assert_eq!((a.total, a.quantile_us(0.5), a.max_us()), (3, 1_000, 1_000));
    }
}
