//! What clients did to each key and what they saw, and the checks against
//! it. A key belongs to one client, which runs one operation at a time, so
//! a key's writes are ordered; a write whose outcome the client never
//! learned (it gave up) may have landed or not. A read is judged against
//! the writes as they stood when it was sent: a write acknowledged while
//! the read was in flight may or may not be seen by it.

use std::fmt::Write as _;

/// How a write ended for its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still being tried.
    Pending,
    /// Acknowledged: PUT answered 0, REMOVE answered 0 or 1.
    Acked,
    /// The client gave up: it may have landed or not.
    Unknown,
    /// Refused (OUT_OF_SPACE): it must not be visible.
    Refused,
}

#[derive(Clone, Debug)]
struct Write {
    /// The value it leaves, or `None` for a delete (or a WIPEOUT).
    effect: Option<Vec<u8>>,
    outcome: Outcome,
    /// When the client heard it acknowledged (us).
    acked_at_us: Option<u64>,
    /// The stamp it was stored with, as its coordinator held it when it
    /// answered (unknown when something else was stored there by then).
    stamp: Option<u64>,
}

/// A read measured against the writes before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadClass {
    /// The last acknowledged value, or a write that may have landed since.
    Fresh,
    /// An older value, or a deleted key come back.
    Stale,
    /// Not found, though a value was acknowledged.
    Missing,
    /// A value this key never had: corruption, always a failure.
    Foreign,
    /// An older write's value (or delete), kept because its stamp outranks
    /// every write acknowledged after it: last writer wins by stamp, which
    /// orders writes by real time only where clocks agree.
    Outranked,
}

#[derive(Default)]
struct KeyHistory {
    key: Vec<u8>,
    writes: Vec<Write>,
    /// Client-side events, for the trace of a failing key.
    events: Vec<(u64, String)>,
}

/// Read classes counted, and reads that broke a promise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadCounts {
    pub fresh: u64,
    pub stale: u64,
    pub missing: u64,
    /// Stale by real time, right by stamp (see [`ReadClass::Outranked`]).
    pub outranked: u64,
}

#[derive(Default)]
pub struct History {
    keys: Vec<KeyHistory>,
    pub reads: ReadCounts,
}

impl History {
    /// Registers a key; returns its index.
    pub fn add_key(&mut self, key: Vec<u8>) -> usize {
        self.keys.push(KeyHistory {
            key,
            ..KeyHistory::default()
        });
        self.keys.len() - 1
    }

    pub fn key(&self, index: usize) -> &[u8] {
        &self.keys[index].key
    }

    /// Whether `value` was ever written to the key named `key` (None: a
    /// delete); false for a key no client has.
    pub fn was_written(&self, key: &[u8], value: Option<&[u8]>) -> bool {
        let Some(history) = self.keys.iter().find(|k| k.key == key) else {
            return false;
        };
        value.is_none() || history.writes.iter().any(|w| w.effect.as_deref() == value)
    }

    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    pub fn note(&mut self, key: usize, at_us: u64, event: String) {
        self.keys[key].events.push((at_us, event));
    }

    /// A write issued; returns its index among the key's writes.
    pub fn begin_write(&mut self, key: usize, effect: Option<Vec<u8>>) -> usize {
        let writes = &mut self.keys[key].writes;
        writes.push(Write {
            effect,
            outcome: Outcome::Pending,
            acked_at_us: None,
            stamp: None,
        });
        writes.len() - 1
    }

    /// The stamp a write was stored with (see [`Write::stamp`]).
    pub fn stamped(&mut self, key: usize, write: usize, stamp: u64) {
        self.keys[key].writes[write].stamp = Some(stamp);
    }

    pub fn end_write(&mut self, key: usize, write: usize, outcome: Outcome, at_us: u64) {
        let write = &mut self.keys[key].writes[write];
        write.outcome = outcome;
        write.acked_at_us = (outcome == Outcome::Acked).then_some(at_us);
    }

    /// Every node was wiped: every key is gone, as if deleted.
    pub fn wiped(&mut self, at_us: u64) {
        for key in &mut self.keys {
            key.writes.push(Write {
                effect: None,
                outcome: Outcome::Acked,
                acked_at_us: Some(at_us),
                stamp: None,
            });
            key.events.push((at_us, "every node wiped".into()));
        }
    }

    /// Every node lost power at `at_us`: writes acknowledged within
    /// `window_us` before it may be gone from every copy (they were synced
    /// nowhere yet), as if their clients had never heard back.
    pub fn power_lost(&mut self, at_us: u64, window_us: u64) {
        for key in &mut self.keys {
            let mut lost = false;
            for write in &mut key.writes {
                if write.outcome == Outcome::Acked && write.acked_at_us.is_some_and(|t| t + window_us > at_us) {
                    write.outcome = Outcome::Unknown;
                    write.acked_at_us = None;
                    lost = true;
                }
            }
            if lost {
                key.events.push((
                    at_us,
                    "power lost everywhere: writes of the last sync interval may be gone".into(),
                ));
            }
        }
    }

    /// What a read sent at `invoked_us` may return: the last effect
    /// acknowledged before then (absent if none), and the effects of later
    /// writes that may have landed: not acknowledged, or acknowledged only
    /// while the read was in flight.
    fn allowed(&self, key: usize, invoked_us: u64) -> Vec<Option<&[u8]>> {
        let writes = &self.keys[key].writes;
        let acked_before = |w: &Write| w.acked_at_us.is_some_and(|at| at < invoked_us);
        let last_acked = writes.iter().rposition(acked_before);
        let mut allowed = vec![last_acked.and_then(|i| writes[i].effect.as_deref())];
        let after = last_acked.map_or(0, |i| i + 1);
        for write in &writes[after..] {
            if matches!(write.outcome, Outcome::Unknown | Outcome::Pending | Outcome::Acked) {
                allowed.push(write.effect.as_deref());
            }
        }
        allowed
    }

    /// Classifies a read of `key` sent at `invoked_us` that returned
    /// `value` (`None`: not found).
    pub fn classify(&self, key: usize, invoked_us: u64, value: Option<&[u8]>) -> ReadClass {
        if self.allowed(key, invoked_us).contains(&value) {
            return ReadClass::Fresh;
        }
        if self.outranks_later_writes(key, invoked_us, value) {
            return ReadClass::Outranked;
        }
        match value {
            None => ReadClass::Missing,
            Some(v) if self.keys[key].writes.iter().any(|w| w.effect.as_deref() == Some(v)) => ReadClass::Stale,
            Some(_) => ReadClass::Foreign,
        }
    }

    /// Whether `value` is the effect of an acknowledged write whose stamp
    /// is known and greater than that of every write acknowledged after it
    /// and before `invoked_us` (all of them known).
    fn outranks_later_writes(&self, key: usize, invoked_us: u64, value: Option<&[u8]>) -> bool {
        let writes = &self.keys[key].writes;
        let acked_before = |w: &Write| w.acked_at_us.is_some_and(|at| at < invoked_us);
        writes.iter().enumerate().any(|(i, candidate)| {
            let Some(stamp) = candidate.stamp else {
                return false;
            };
            let later: Vec<&Write> = writes[i + 1..].iter().filter(|w| acked_before(w)).collect();
            candidate.effect.as_deref() == value
                && acked_before(candidate)
                && !later.is_empty()
                && later.iter().all(|w| w.stamp.is_some_and(|s| s < stamp))
        })
    }

    /// Counts a read sent at `invoked_us`; returns its class.
    pub fn read(&mut self, key: usize, invoked_us: u64, value: Option<&[u8]>) -> ReadClass {
        let class = self.classify(key, invoked_us, value);
        match class {
            ReadClass::Fresh => self.reads.fresh += 1,
            ReadClass::Stale | ReadClass::Foreign => self.reads.stale += 1,
            ReadClass::Outranked => self.reads.outranked += 1,
            ReadClass::Missing => self.reads.missing += 1,
        }
        class
    }

    /// What a read of `key` sent at `invoked_us` should have returned, for
    /// a report.
    pub fn describe_allowed(&self, key: usize, invoked_us: u64) -> String {
        let mut text = String::new();
        for (i, effect) in self.allowed(key, invoked_us).iter().enumerate() {
            let _ = write!(text, "{}{}", if i > 0 { " or " } else { "" }, show(*effect));
        }
        text
    }

    /// The client-side events of one key, with their times (us).
    pub fn events(&self, key: usize) -> &[(u64, String)] {
        &self.keys[key].events
    }
}

/// A value (or absence) for a report.
pub fn show(value: Option<&[u8]>) -> String {
    match value {
        None => "not found".into(),
        // The full mix pads values with dots: shown as their length.
        Some(v) => match v.iter().position(|&b| b == b'.') {
            Some(at) if v.len() > 32 => format!("{:?}+{}", String::from_utf8_lossy(&v[..at]), v.len() - at),
            _ => format!("{:?}", String::from_utf8_lossy(v)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_may_see_the_last_acknowledged_write_or_a_later_unknown_one() {
        let mut h = History::default();
        let k = h.add_key(b"k".to_vec());
        let late = 1_000;
        assert_eq!(h.classify(k, late, None), ReadClass::Fresh, "never written");
        let w1 = h.begin_write(k, Some(b"1".to_vec()));
        h.end_write(k, w1, Outcome::Acked, 10);
        let w2 = h.begin_write(k, Some(b"2".to_vec()));
        h.end_write(k, w2, Outcome::Unknown, 20);
        assert_eq!(h.classify(k, late, Some(b"1")), ReadClass::Fresh);
        assert_eq!(h.classify(k, late, Some(b"2")), ReadClass::Fresh, "may have landed");
        let w3 = h.begin_write(k, None);
        h.end_write(k, w3, Outcome::Acked, 30);
        assert_eq!(h.classify(k, late, None), ReadClass::Fresh);
        assert_eq!(h.classify(k, late, Some(b"1")), ReadClass::Stale, "a deleted key back");
        assert_eq!(h.classify(k, late, Some(b"2")), ReadClass::Stale);
        assert_eq!(h.classify(k, late, Some(b"x")), ReadClass::Foreign);
        let w4 = h.begin_write(k, Some(b"4".to_vec()));
        h.end_write(k, w4, Outcome::Refused, 40);
        assert_eq!(
            h.classify(k, late, Some(b"4")),
            ReadClass::Stale,
            "a refused write must not show"
        );
        h.wiped(50);
        assert_eq!(h.classify(k, late, None), ReadClass::Fresh);
        let w5 = h.begin_write(k, Some(b"5".to_vec()));
        h.end_write(k, w5, Outcome::Acked, 60);
        assert_eq!(h.classify(k, late, None), ReadClass::Missing);
    }

    #[test]
    fn an_older_write_whose_stamp_outranks_the_later_ones_is_told_apart() {
        let mut h = History::default();
        let k = h.add_key(b"k".to_vec());
        let w1 = h.begin_write(k, Some(b"1".to_vec()));
        h.end_write(k, w1, Outcome::Acked, 10);
        h.stamped(k, w1, 500);
        let w2 = h.begin_write(k, None);
        h.end_write(k, w2, Outcome::Acked, 20);
        h.stamped(k, w2, 400);
        assert_eq!(
            h.classify(k, 30, Some(b"1")),
            ReadClass::Outranked,
            "the delete's clock was behind"
        );
        h.stamped(k, w2, 600);
        assert_eq!(
            h.classify(k, 30, Some(b"1")),
            ReadClass::Stale,
            "the delete won by stamp"
        );
        let w3 = h.begin_write(k, Some(b"3".to_vec()));
        h.end_write(k, w3, Outcome::Acked, 40);
        assert_eq!(h.classify(k, 50, Some(b"1")), ReadClass::Stale, "a later stamp unknown");
    }

    #[test]
    fn a_read_in_flight_while_a_write_is_acknowledged_may_see_either() {
        let mut h = History::default();
        let k = h.add_key(b"k".to_vec());
        let w1 = h.begin_write(k, Some(b"1".to_vec()));
        h.end_write(k, w1, Outcome::Acked, 100);
        let w2 = h.begin_write(k, None);
        h.end_write(k, w2, Outcome::Acked, 300);
        // Sent at 200, before the delete was acknowledged at 300.
        assert_eq!(h.classify(k, 200, Some(b"1")), ReadClass::Fresh);
        assert_eq!(h.classify(k, 200, None), ReadClass::Fresh);
        // Sent after it: the value is gone.
        assert_eq!(h.classify(k, 301, Some(b"1")), ReadClass::Stale);
        // Sent before the first write was acknowledged: either.
        assert_eq!(h.classify(k, 50, None), ReadClass::Fresh);
        assert_eq!(h.classify(k, 50, Some(b"1")), ReadClass::Fresh);
    }
}
