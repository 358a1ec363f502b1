//! Seeded randomness for reproducible key, value and choice streams:
//! `rand`'s ChaCha8 generator (its output is documented to stay the same
//! across versions and platforms, so a run replays on any machine) and
//! `rand_distr`'s Zipf distribution for skewed key choice.

/// The generator every part of the harness uses.
pub type Rng = rand_chacha::ChaCha8Rng;

/// A generator seeded with `seed`.
pub fn seeded(seed: u64) -> Rng {
    rand::SeedableRng::seed_from_u64(seed)
}

/// Zipf(s) over the ranks `0..n`.
pub struct Zipf(rand_distr::Zipf<f64>);

impl Zipf {
    /// `None` when `n` is 0 or `s` is negative or not a number.
    pub fn new(n: usize, s: f64) -> Option<Zipf> {
        rand_distr::Zipf::new(n as f64, s).ok().map(Zipf)
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        use rand_distr::Distribution;
        // The distribution yields ranks 1..=n.
        (self.0.sample(rng) as usize).saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_favours_low_ranks() {
        let zipf = Zipf::new(100, 1.0).unwrap();
        let mut rng = seeded(1);
        let mut counts = [0u32; 100];
        for _ in 0..100_000 {
            counts[zipf.sample(&mut rng)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[99]);
        assert!(counts[0] > 15_000, "rank 1 of Zipf(1) over 100 is ~19%: {}", counts[0]);
        assert!(Zipf::new(0, 1.0).is_none() && Zipf::new(10, -1.0).is_none());
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        use rand::RngCore;
        let (mut a, mut b) = (seeded(7), seeded(7));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(a.next_u64(), seeded(8).next_u64());
    }
}
