//! `cargo bench --bench costs`: what a node's hot paths cost on their own,
//! away from sockets and scheduling noise, printed as nanoseconds.
//!
//! - **Checksums and MACs per datagram**: the client protocol's CRC-32, and
//!   sealing and verifying node messages with the keyed BLAKE3 MAC, at the
//!   sizes node traffic has (a lone ack, a replicated write, a full batch).
//! - **Lookups by store size**: a shard's partition holding 10k to 1.2M keys
//!   of 32 bytes with 8-byte values (the `perf.sh` fill), read at random:
//!   the index's cost whatever the store's size, and the bytes each key
//!   takes.
//! - **The at-most-once cache**: looking up a new message id (every PUT and
//!   REMOVE does) while the cache holds 5 s of mutations at a given rate.
//!
//! Each figure is the median of several rounds; `ROUNDS=n` changes how many.

use dynakv::cluster::internal::{self, Bounds, Entry, Envelope, Internal};
use dynakv::cluster::secret::Secret;
use dynakv::protocol::codec::checksum;
use dynakv::storage::hash::{BUCKETS, SplitMix64};
use dynakv::storage::memory::{MIB, MemoryBudget};
use dynakv::storage::reply_cache::{RETENTION_MS_MIN, ReplyCache};
use dynakv::storage::stamp::Stamp;
use dynakv::storage::store::{Applied, Store, Write};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let rounds = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(7);
    per_datagram(rounds);
    lookups_by_store_size(rounds);
    reply_cache_lookups(rounds);
}

/// Median nanoseconds per call of `op`, over `rounds` rounds of `calls`.
fn median_ns(rounds: usize, calls: usize, mut op: impl FnMut(usize)) -> f64 {
    let mut per_call: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let start = Instant::now();
            for i in 0..calls {
                op(i);
            }
            start.elapsed().as_nanos() as f64 / calls as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[per_call.len() / 2]
}

fn envelope() -> Envelope {
    Envelope {
        sender: 1,
        to: 2,
        incarnation: 1_800_000_000_000,
        seq: 42,
        sent_unix_ms: 1_800_000_000_000,
    }
}

fn replicate(seq: u64, value_bytes: usize) -> Internal {
    Internal::Replicate {
        seq,
        entry: Entry {
            key: vec![7; 32],
            value: vec![9; value_bytes],
            version: 1,
            stamp: Stamp(1 << 40),
            tombstone: false,
        },
    }
}

/// A batch of replicated writes filling about `bytes` on the wire (with
/// room left for one more write on its own). Every write adds the same
/// bytes to a batch, so their number is computed, not searched for.
fn batch_of(bytes: usize) -> Internal {
    let empty = Internal::Batch(Vec::new()).encoded_bytes();
    let per_message = Internal::Batch(vec![replicate(0, 8)]).encoded_bytes() - empty;
    let messages = (bytes - empty - replicate(0, 8).encoded_bytes()) / per_message + 1;
    Internal::Batch((0..messages as u64).map(|seq| replicate(seq, 8)).collect())
}

fn per_datagram(rounds: usize) {
    let secret = Secret::from_bytes(b"a benchmark's cluster secret");
    let bounds = Bounds {
        now_unix_ms: 1_800_000_000_000,
    };
    println!("## Per datagram (ns, median of {rounds} rounds)");
    println!("| datagram | bytes | CRC-32 | seal (encode + MAC) | verify + decode | MAC alone |");
    println!("|---|---|---|---|---|---|");
    let cases = [
        (
            "replicate ack",
            Internal::ReplicateAck {
                seq: 9,
                bucket: 3,
                full: false,
                refused: false,
            },
        ),
        ("replicated write, 8-byte value", replicate(9, 8)),
        ("replicated write, 1,000-byte value", replicate(9, 1_000)),
        ("batch to a remote peer", batch_of(1_472)),
        ("batch over loopback", batch_of(16 * 1_024)),
    ];
    for (label, message) in cases {
        let datagram = internal::encode(&secret, &envelope(), &message);
        let calls = (2_000_000 / datagram.len()).max(1_000);
        let crc = median_ns(rounds, calls, |_| {
            black_box(checksum(&datagram[..16], &datagram[16..]));
        });
        let seal = median_ns(rounds, calls, |_| {
            black_box(internal::encode(&secret, &envelope(), black_box(&message)));
        });
        let verify = median_ns(rounds, calls, |_| {
            let decoded = internal::decode(&secret, 2, &bounds, black_box(&datagram));
            assert!(decoded.is_ok(), "the benchmark's own datagram verifies");
        });
        let mac = median_ns(rounds, calls, |_| {
            black_box(blake3::keyed_hash(&secret.0, black_box(&datagram)));
        });
        println!(
            "| {label} | {} | {crc:.0} | {seal:.0} | {verify:.0} | {mac:.0} |",
            datagram.len()
        );
    }
}

/// The `i`th key of the fill: 32 bytes, computed, so reading keys at random
/// costs no cache miss of its own.
fn key_of(i: u64) -> [u8; 32] {
    let mut rng = SplitMix64::new(i);
    let mut key = [0u8; 32];
    for word in key.chunks_exact_mut(8) {
        word.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    key
}

fn lookups_by_store_size(rounds: usize) {
    println!();
    println!("## Lookups by store size (32-byte keys, 8-byte values; ns, median of {rounds} rounds)");
    println!("| keys | per bucket | GET, present | GET, absent | overwrite | bytes per key |");
    println!("|---|---|---|---|---|---|");
    for keys in [10_000u64, 100_000, 1_200_000] {
        let budget = Arc::new(MemoryBudget::new(4096 * MIB));
        let mut store = Store::new(budget);
        for i in 0..keys {
            let applied = store.apply(
                &key_of(i),
                Write::Value {
                    value: &[1; 8],
                    version: 0,
                },
                Stamp(1 << 40),
            );
            assert_eq!(applied, Applied::Stored);
        }
        let calls = 1_000_000;
        let mut rng = SplitMix64::new(keys);
        let present = median_ns(rounds, calls, |_| {
            let key = key_of(rng.below(keys));
            assert!(black_box(&store).get(&key).is_some());
        });
        let absent = median_ns(rounds, calls, |_| {
            let key = key_of(keys + rng.below(keys));
            assert!(black_box(&store).get(&key).is_none());
        });
        let mut stamp = 2 << 40;
        let overwrite = median_ns(rounds, calls / 4, |_| {
            stamp += 1;
            let key = key_of(rng.below(keys));
            let write = Write::Value {
                value: &[2; 8],
                version: 1,
            };
            assert_eq!(store.apply(&key, write, Stamp(stamp)), Applied::Stored);
        });
        let key_cost = median_ns(rounds, calls, |i| {
            black_box(key_of(i as u64));
        });
        println!(
            "| {keys} | {} | {:.0} | {:.0} | {:.0} | {:.1} |",
            keys / BUCKETS as u64,
            present - key_cost,
            absent - key_cost,
            overwrite - key_cost,
            store.accounted_bytes() as f64 / keys as f64,
        );
    }
    println!("(the cost of computing a key, timed alone, is taken off each figure)");
}

fn reply_cache_lookups(rounds: usize) {
    println!();
    println!("## At-most-once cache: a new id looked up (ns, median of {rounds} rounds)");
    println!(
        "| mutations/s | 1 s after a cold start: segments, lookup | after 15 s: entries, segments, lookup, cache bytes |"
    );
    println!("|---|---|---|");
    for rate in [10_000u64, 30_000, 100_000] {
        let budget = Arc::new(MemoryBudget::new(4096 * MIB));
        let mut cache = ReplyCache::new(RETENTION_MS_MIN, 0, budget);
        let mut rng = SplitMix64::new(rate);
        let mut lookup = |cache: &ReplyCache| {
            median_ns(rounds, 1_000_000, |_| {
                black_box(cache.get(rng.next_u64()));
            })
        };
        // One id every 1/rate s, from a cold start.
        let mut inserted = 0;
        let mut run_until_s = |cache: &mut ReplyCache, seconds: u64| {
            let mut ids = SplitMix64::new(!rate);
            while inserted < rate * seconds {
                cache.insert(ids.next_u64(), 0, inserted * 1_000 / rate);
                inserted += 1;
            }
        };
        run_until_s(&mut cache, 1);
        let (cold_segments, cold) = (cache.segments(), lookup(&cache));
        run_until_s(&mut cache, 15);
        println!(
            "| {rate} | {cold_segments}, {cold:.0} | {}, {}, {:.0}, {} |",
            cache.len(),
            cache.segments(),
            lookup(&cache),
            cache.heap_bytes()
        );
    }
}
