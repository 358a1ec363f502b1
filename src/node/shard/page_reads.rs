//! Strongly consistent pages of a bucket: a DynamoDB Query or Scan with
//! ConsistentRead. The coordinator asks the bucket's home replicas (its
//! items' acceptors, see [`super::rounds`]) for their records of the page
//! and merges the answers of a majority: within the part of the page every
//! answer covers, each item's record with the greatest stamp.
//!
//! A record that a majority of the home replicas hold with the same stamp
//! was accepted by a majority: it is chosen, and no write acknowledged
//! before the read began is newer (that write's majority meets the one
//! that answered, so an answer would have shown it). Any other record (a
//! copy of an accept still under way, a copy a repair has not reached) is
//! marked unconfirmed, and the reader reads that item in a round of its
//! own. An item in no answer is absent or deleted at a majority.
//!
//! The answer is a bucket read's page ([`item_key::entries`]) whose last
//! entry is a bitmap: bit `i` set, entry `i` is unconfirmed (see
//! [`item_key::confirmed_entries`]).
//!
//! A pure state machine: answers and ticks in, what to send or answer out.

use crate::cluster::internal::{Entry, Internal};
use crate::protocol::wire::{ErrorCode, Reply, VALUE_BYTES_MAX};
use crate::storage::item_key;
use std::collections::BTreeMap;
use std::collections::btree_map;
use std::net::SocketAddr;

/// Consistent page reads one shard may have under way; beyond, OVERLOAD.
pub(super) const PAGE_READS_MAX: usize = 256;
/// Bytes of answers a shard's reads may hold while they wait for a
/// majority (an answer is up to about 35 KB); beyond, OVERLOAD.
const HELD_BYTES_MAX: usize = 1 << 20;
/// A read's ask is sent again to home replicas silent this long.
const RESEND_MS: u64 = 100;
/// A read with no majority after this long is dropped unanswered (its
/// reader has given up by then).
const GIVE_UP_MS: u64 = 10_000;

/// A consistent page read, as its reader (a node's executor) asked it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PageAsk {
    pub(super) client: SocketAddr,
    pub(super) message_id: Vec<u8>,
    /// A key of the bucket, and the read ([`item_key::BucketRead`]) encoded.
    pub(super) key: Vec<u8>,
    pub(super) read: Vec<u8>,
    pub(super) backward: bool,
}

/// One home replica's answer: its records of the page, and whether more
/// are left after them.
type Page = (Vec<Entry>, bool);

struct PageRead {
    ask: PageAsk,
    /// The test fault of `--fault-one-copy-pages`.
    one_copy: bool,
    acceptors: Vec<usize>,
    /// Home replicas that answered, and the pages of those that may vote.
    heard: Vec<usize>,
    pages: Vec<Page>,
    resend_at_ms: u64,
    give_up_at_ms: u64,
}

impl PageRead {
    fn majority(&self) -> usize {
        if self.one_copy {
            return 1;
        }
        self.acceptors.len() / 2 + 1
    }

    fn message(&self, id: u64) -> Internal {
        Internal::PageAsk {
            round: id,
            key: self.ask.key.clone(),
            read: self.ask.read.clone(),
        }
    }
}

/// A shard's consistent page reads under way.
#[derive(Default)]
pub(super) struct PageReads {
    by_id: BTreeMap<u64, PageRead>,
    next_id: u64,
    /// Bytes of the answers held, [`page_bytes`] each.
    held_bytes: usize,
    one_copy: bool,
}

/// What a home replica's answer takes held.
fn page_bytes((entries, _): &Page) -> usize {
    entries.iter().map(|e| 32 + e.key.len() + e.value.len()).sum()
}

impl PageReads {
    /// The test fault of `--fault-one-copy-pages`: the first answer is the
    /// page, every record of it confirmed.
    pub(super) fn take_one_copy(&mut self) {
        self.one_copy = true;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether a new read must wait: too many under way, or their held
    /// answers take too much memory.
    pub(super) fn full(&self) -> bool {
        self.by_id.len() >= PAGE_READS_MAX || self.held_bytes >= HELD_BYTES_MAX
    }

    /// Starts a read among `acceptors`: the ask to send them; nothing for
    /// a resend of a read under way (its answer is coming).
    pub(super) fn start(&mut self, ask: PageAsk, acceptors: Vec<usize>, now_ms: u64) -> Option<(Internal, Vec<usize>)> {
        let asked = |read: &PageRead| read.ask.message_id == ask.message_id && read.ask.client == ask.client;
        if self.by_id.values().any(asked) {
            return None;
        }
        self.next_id += 1;
        let read = PageRead {
            ask,
            one_copy: self.one_copy,
            acceptors,
            heard: Vec::new(),
            pages: Vec::new(),
            resend_at_ms: now_ms + RESEND_MS,
            give_up_at_ms: now_ms + GIVE_UP_MS,
        };
        let send = (read.message(self.next_id), read.acceptors.clone());
        self.by_id.insert(self.next_id, read);
        Some(send)
    }

    /// Home replica `from`'s answer to read `id`: the read's ask and its
    /// answer, once a majority answered (or refused).
    pub(super) fn answer(&mut self, id: u64, from: usize, ok: bool, page: Page) -> Option<(PageAsk, Reply)> {
        let read = self.by_id.get_mut(&id)?;
        if read.heard.contains(&from) || !read.acceptors.contains(&from) {
            return None;
        }
        read.heard.push(from);
        if ok {
            self.held_bytes += page_bytes(&page);
            read.pages.push(page);
        }
        let refused = read.heard.len() - read.pages.len();
        let reply = if read.pages.len() >= read.majority() {
            let (value, more) = merge(&read.pages, read.majority(), read.ask.backward);
            Reply::Value {
                value,
                version: i32::from(more),
            }
        } else if refused > read.acceptors.len() - read.majority() {
            // Too many lost what they held: no majority can answer now.
            Reply::Code(ErrorCode::InternalFailure)
        } else {
            return None;
        };
        self.finish(id).map(|ask| (ask, reply))
    }

    fn finish(&mut self, id: u64) -> Option<PageAsk> {
        let read = self.by_id.remove(&id)?;
        self.held_bytes -= read.pages.iter().map(page_bytes).sum::<usize>();
        Some(read.ask)
    }

    /// The reads' timers: asks to send again to silent home replicas;
    /// reads past their bound are dropped.
    pub(super) fn tick(&mut self, now_ms: u64) -> Vec<(Internal, Vec<usize>)> {
        let over: Vec<u64> = (self.by_id.iter())
            .filter(|(_, read)| read.give_up_at_ms <= now_ms)
            .map(|(&id, _)| id)
            .collect();
        for id in over {
            self.finish(id);
        }
        let mut resend = Vec::new();
        for (&id, read) in self.by_id.iter_mut().filter(|(_, read)| read.resend_at_ms <= now_ms) {
            read.resend_at_ms = now_ms + RESEND_MS;
            let silent: Vec<usize> = (read.acceptors.iter())
                .copied()
                .filter(|n| !read.heard.contains(n))
                .collect();
            resend.push((read.message(id), silent));
        }
        resend
    }
}

/// The records a merge takes, by order and key: the one with the greatest
/// stamp, and how many answers hold it.
type Merged<'a> = BTreeMap<(&'a [u8], &'a [u8]), (&'a Entry, usize)>;

/// The order bytes of a record (empty if it carries none).
fn order_of(entry: &Entry) -> &[u8] {
    item_key::split_record_value(&entry.value).map_or(&[], |(order, _)| order)
}

/// The page a majority's answers make (see the module's doc), and
/// whether more may be left after it.
pub(super) fn merge(pages: &[Page], majority: usize, backward: bool) -> (Vec<u8>, bool) {
    // Whether order `a` comes before order `b` in the read's direction.
    let before = |a: &[u8], b: &[u8]| if backward { a > b } else { a < b };
    // Every answer covers the page up to the nearest last record of an
    // answer that has more after it.
    let mut cutoff: Option<&[u8]> = None;
    for (entries, _) in pages.iter().filter(|(_, more)| *more) {
        if let Some(last) = entries.last().map(order_of)
            && cutoff.is_none_or(|c| before(last, c))
        {
            cutoff = Some(last);
        }
    }
    let mut items: Merged<'_> = BTreeMap::new();
    let covered = pages.iter().flat_map(|(entries, _)| entries);
    for entry in covered.filter(|e| cutoff.is_none_or(|c| !before(c, order_of(e)))) {
        match items.entry((order_of(entry), &entry.key)) {
            btree_map::Entry::Vacant(slot) => {
                slot.insert((entry, 1));
            }
            btree_map::Entry::Occupied(mut slot) => {
                let (best, count) = slot.get_mut();
                if entry.stamp > best.stamp {
                    (*best, *count) = (entry, 1);
                } else if entry.stamp == best.stamp {
                    *count += 1;
                }
            }
        }
    }
    let mut ordered: Vec<(&Entry, usize)> = items.into_values().collect();
    if backward {
        ordered.reverse();
    }
    let mut out = Vec::new();
    let mut unconfirmed = Vec::new();
    let mut full = false;
    for (at, (entry, count)) in ordered.into_iter().enumerate() {
        let bitmap_bytes = 4 + (at + 1).div_ceil(8);
        if out.len() + 4 + entry.value.len() + bitmap_bytes > VALUE_BYTES_MAX {
            full = true;
            break;
        }
        item_key::push_entry(&mut out, &entry.value);
        if unconfirmed.len() < (at + 1).div_ceil(8) {
            unconfirmed.push(0u8);
        }
        if count < majority {
            unconfirmed[at / 8] |= 1 << (at % 8);
        }
    }
    item_key::push_entry(&mut out, &unconfirmed);
    (out, full || pages.iter().any(|(_, more)| *more))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::stamp::Stamp;

    const A: [usize; 3] = [0, 1, 2];

    fn record(order: &str, payload: &str, stamp: u64) -> Entry {
        Entry {
            key: format!("key-{order}").into_bytes(),
            value: item_key::record_value(order.as_bytes(), payload.as_bytes()).unwrap(),
            version: 0,
            stamp: Stamp(stamp),
            tombstone: false,
        }
    }

    /// A merged page as (order, payload, confirmed), and its more flag.
    fn read(page: (Vec<u8>, bool)) -> (Vec<(String, String, bool)>, bool) {
        let entries = item_key::confirmed_entries(&page.0).unwrap();
        let items = entries
            .into_iter()
            .map(|(value, confirmed)| {
                let (order, payload) = item_key::split_record_value(value).unwrap();
                let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
                (text(order), text(payload), confirmed)
            })
            .collect();
        (items, page.1)
    }

    fn item(order: &str, payload: &str, confirmed: bool) -> (String, String, bool) {
        (order.to_string(), payload.to_string(), confirmed)
    }

    #[test]
    fn records_a_majority_holds_with_one_stamp_are_confirmed() {
        let page = vec![record("a", "1", 5), record("b", "2", 6)];
        let merged = merge(&[(page.clone(), false), (page, false)], 2, false);
        assert_eq!(read(merged), (vec![item("a", "1", true), item("b", "2", true)], false));
    }

    #[test]
    fn a_newer_or_lone_record_is_taken_but_unconfirmed() {
        let one = vec![record("a", "old", 5), record("b", "2", 6)];
        // An accept under way reached one copy; another item one copy only.
        let other = vec![record("a", "new", 9), record("b", "2", 6), record("c", "3", 7)];
        let merged = merge(&[(one, false), (other, false)], 2, false);
        assert_eq!(
            read(merged),
            (
                vec![item("a", "new", false), item("b", "2", true), item("c", "3", false)],
                false
            )
        );
    }

    #[test]
    fn the_page_ends_where_an_answer_with_more_after_it_ends() {
        let short = vec![record("a", "1", 5), record("b", "2", 5)];
        let long = vec![record("a", "1", 5), record("b", "2", 5), record("c", "3", 5)];
        let merged = merge(&[(long.clone(), false), (short, true)], 2, false);
        assert_eq!(read(merged), (vec![item("a", "1", true), item("b", "2", true)], true));
        // Backward: the answers run c, b, a.
        let back_short = vec![record("c", "3", 5), record("b", "2", 5)];
        let back_long: Vec<Entry> = long.into_iter().rev().collect();
        let merged = merge(&[(back_long, false), (back_short, true)], 2, true);
        assert_eq!(read(merged), (vec![item("c", "3", true), item("b", "2", true)], true));
    }

    #[test]
    fn a_merged_page_fits_one_reply_with_its_bitmap() {
        let big = "x".repeat(item_key::ITEM_RECORD_BYTES_MAX - 3);
        let page = vec![record("a", &big, 5), record("b", &big, 5)];
        let (bytes, more) = merge(&[(page.clone(), false), (page, false)], 2, false);
        assert!(bytes.len() <= VALUE_BYTES_MAX);
        assert_eq!(read((bytes, more)), (vec![item("a", &big, true)], true));
        // Nine small items: a bitmap of two bytes.
        let nine: Vec<Entry> = (0..9).map(|i| record(&i.to_string(), "v", 5)).collect();
        let lone = merge(&[(nine, false), (Vec::new(), false)], 2, false);
        let (items, _) = read(lone);
        assert_eq!(items.len(), 9);
        assert!(items.iter().all(|(_, _, confirmed)| !confirmed));
    }

    fn ask() -> PageAsk {
        PageAsk {
            client: "127.0.0.1:9".parse().unwrap(),
            message_id: vec![1; 16],
            key: vec![2; 33],
            read: vec![0, 8],
            backward: false,
        }
    }

    #[test]
    fn a_read_answers_once_a_majority_of_its_home_replicas_did() {
        let mut reads = PageReads::default();
        let (message, to) = reads.start(ask(), A.to_vec(), 0).unwrap();
        assert_eq!(to, A.to_vec());
        assert_eq!(reads.start(ask(), A.to_vec(), 5), None, "a resend joins its read");
        let Internal::PageAsk { round, .. } = message else {
            panic!("{message:?}");
        };
        let page = (vec![record("a", "1", 5)], false);
        assert_eq!(reads.answer(round, 7, true, page.clone()), None, "not a home replica");
        assert_eq!(reads.answer(round, 0, true, page.clone()), None);
        assert_eq!(reads.answer(round, 0, true, page.clone()), None, "twice the same");
        let (asked, reply) = reads.answer(round, 2, true, page.clone()).unwrap();
        assert_eq!(asked, ask());
        let Reply::Value { value, version } = reply else {
            panic!("{reply:?}");
        };
        assert_eq!(read((value, version != 0)), (vec![item("a", "1", true)], false));
        assert!(reads.is_empty());
        assert_eq!(reads.answer(round, 1, true, page), None, "over");
    }

    #[test]
    fn a_read_most_home_replicas_refuse_fails() {
        let mut reads = PageReads::default();
        let Some((Internal::PageAsk { round, .. }, _)) = reads.start(ask(), A.to_vec(), 0) else {
            panic!("not an ask");
        };
        assert_eq!(reads.answer(round, 0, false, (Vec::new(), false)), None);
        let (_, reply) = reads.answer(round, 1, false, (Vec::new(), false)).unwrap();
        assert_eq!(reply, Reply::Code(ErrorCode::InternalFailure));
    }

    #[test]
    fn silent_home_replicas_are_asked_again_until_the_read_gives_up() {
        let mut reads = PageReads::default();
        let Some((Internal::PageAsk { round, .. }, _)) = reads.start(ask(), A.to_vec(), 0) else {
            panic!("not an ask");
        };
        assert!(reads.tick(RESEND_MS - 1).is_empty());
        reads.answer(round, 1, true, (Vec::new(), false));
        let resend = reads.tick(RESEND_MS);
        assert!(matches!(&resend[..], [(Internal::PageAsk { round: r, .. }, to)] if *r == round && to == &vec![0, 2]));
        assert!(reads.tick(RESEND_MS + 1).is_empty(), "not again at once");
        assert_eq!(reads.by_id.len(), 1);
        reads.tick(GIVE_UP_MS);
        assert!(reads.is_empty());
        assert_eq!(reads.held_bytes, 0, "its held answer let go");
    }

    #[test]
    fn answers_held_past_their_bound_fill_the_reads() {
        let mut reads = PageReads::default();
        let big = "x".repeat(9_000);
        let page: Vec<Entry> = (0..3).map(|i| record(&i.to_string(), &big, 5)).collect();
        let mut rounds = Vec::new();
        while !reads.full() {
            let mut asked = ask();
            asked.message_id = rounds.len().to_le_bytes().to_vec();
            let Some((Internal::PageAsk { round, .. }, _)) = reads.start(asked, A.to_vec(), 0) else {
                panic!("not an ask");
            };
            reads.answer(round, 0, true, (page.clone(), false));
            rounds.push(round);
        }
        assert!(rounds.len() < PAGE_READS_MAX, "full by bytes first: {}", rounds.len());
        reads.answer(rounds[0], 1, true, (page, false)).unwrap();
        assert!(!reads.full(), "an answered read lets its held answer go");
    }

    #[test]
    fn malformed_consistent_pages_are_refused() {
        assert_eq!(item_key::confirmed_entries(&[]), None, "no bitmap");
        let mut page = Vec::new();
        item_key::push_entry(&mut page, b"x");
        item_key::push_entry(&mut page, &[0, 0]);
        assert_eq!(item_key::confirmed_entries(&page), None, "a bitmap of the wrong size");
    }
}
