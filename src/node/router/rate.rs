//! The request rate a receiving loop reports (`requests_per_s` in STATS):
//! datagrams counted over windows of about a second.

/// A window shorter than this is not measured yet.
const WINDOW_MS: u64 = 1_000;

/// Datagrams per second over the last whole window.
pub(super) struct RateMeter {
    since_ms: u64,
    count_then: u64,
    per_second: u64,
}

impl RateMeter {
    /// Starts a window at `now_ms`, with the datagram counter at `count`.
    pub(super) fn new(now_ms: u64, count: u64) -> RateMeter {
        RateMeter {
            since_ms: now_ms,
            count_then: count,
            per_second: 0,
        }
    }

    /// Closes the window if it is a second old. `count` is a counter that
    /// only grows; a smaller one (never expected) counts as no datagrams.
    pub(super) fn measure(&mut self, now_ms: u64, count: u64) {
        let elapsed_ms = now_ms.saturating_sub(self.since_ms);
        if elapsed_ms >= WINDOW_MS {
            self.per_second = count.saturating_sub(self.count_then) * 1_000 / elapsed_ms;
            self.count_then = count;
            self.since_ms = now_ms;
        }
    }

    pub(super) fn per_second(&self) -> u64 {
        self.per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_that_of_the_last_whole_window() {
        let mut meter = RateMeter::new(10_000, 500);
        meter.measure(10_400, 900);
        assert_eq!(meter.per_second(), 0, "no whole window yet");
        meter.measure(11_000, 1_500);
        assert_eq!(meter.per_second(), 1_000);
        meter.measure(13_000, 2_500);
        assert_eq!(meter.per_second(), 500, "1,000 datagrams over 2 s");
        meter.measure(14_000, 2_000);
        assert_eq!(meter.per_second(), 0, "a counter that went back counts nothing");
    }
}
