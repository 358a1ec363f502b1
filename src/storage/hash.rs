//! Stable hashing of keys and message ids, and the bucket a key falls in.
//!
//! Every node of a cluster must agree on a key's bucket, so this hash is fixed
//! forever (no per-process seed). It is FNV-1a for speed on short keys,
//! followed by MurmurHash3's 64-bit finalizer so that every output bit depends
//! on every input bit (FNV alone mixes the high bits poorly on 4-byte keys).

use crate::protocol::wire::STORED_KEY_BYTES_MAX;

/// The hash space is cut into this many buckets, fixed for the life of a
/// cluster: the unit of ownership, transfer, anti-entropy and accounting.
/// 4096 gives 150 nodes x 3 replicas about 80 buckets each (even spread) while
/// keeping per-bucket bookkeeping (digests, sync state) small. Changing it
/// changes every key's placement: only for a new cluster.
pub const BUCKETS: usize = 4096;
const BUCKET_BITS: u32 = BUCKETS.trailing_zeros();
const _: () = assert!(BUCKETS.is_power_of_two());

/// A bucket number, `0..BUCKETS`.
pub type BucketId = u16;

/// MurmurHash3's fmix64: a bijective avalanche of a 64-bit word.
pub fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A small seeded generator (SplitMix64: a counter stepped by the golden
/// ratio, mixed by [`fmix64`]): gossip target choice, fault injection and
/// test inputs. Not for secrets.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        fmix64(self.0)
    }

    /// Uniform in `0..n` (0 when `n` is 0), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed;
    for &byte in bytes {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The first byte of a key that names its bucket: an item's (see
/// [`crate::storage::item_key`]). A client's key is never that long.
pub const ITEM_NAMESPACE: u8 = 0xD1;

/// The bucket a key names (bytes 1-2 of an item key); `None` for every
/// other key.
pub fn named_bucket(key: &[u8]) -> Option<BucketId> {
    if key.len() != STORED_KEY_BYTES_MAX || key[0] != ITEM_NAMESPACE {
        return None;
    }
    let bucket = u16::from_be_bytes([key[1], key[2]]);
    Some(bucket & (BUCKETS as u16 - 1))
}

/// The stable 64-bit hash of a key. Its top bits are the key's bucket
/// ([`bucket_of`]): for a key that names its bucket (an item's, see
/// [`crate::storage::item_key`]), that bucket, the rest hashed.
pub fn key_hash(key: &[u8]) -> u64 {
    let hash = fmix64(fnv1a(FNV_OFFSET, key) ^ key.len() as u64);
    match named_bucket(key) {
        Some(bucket) => (u64::from(bucket) << (64 - BUCKET_BITS)) | (hash >> BUCKET_BITS),
        None => hash,
    }
}

/// The bucket of a key: the one place a key's placement is decided.
pub fn bucket_of_key(key: &[u8]) -> BucketId {
    bucket_of(key_hash(key))
}

/// The bucket of a key hash: its top bits.
pub fn bucket_of(hash: u64) -> BucketId {
    (hash >> (64 - BUCKET_BITS)) as BucketId
}

/// A 64-bit hash of a message id, the at-most-once cache's key. Ids are
/// opaque bytes (16 random-ish bytes in practice); two lanes of FNV-1a with
/// the length mixed in make an accidental collision among the ~10^5 ids a
/// shard caches at once about 1 in 10^9.
pub fn message_id_hash(id: &[u8]) -> u64 {
    let len = id.len() as u64;
    let low = fmix64(fnv1a(FNV_OFFSET, id) ^ len);
    let high = fmix64(fnv1a(FNV_OFFSET ^ 0x9e37_79b9_7f4a_7c15, id).wrapping_add(len));
    low ^ high.rotate_left(29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_pinned() {
        // Placement depends on these exact values: a change here moves every
        // key of every existing cluster, so it must be deliberate.
        assert_eq!(key_hash(b"k"), 0x1169_5943_e4e1_9f5f);
        assert_eq!(key_hash(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(key_hash(b"hello"), 0x3aff_9cfc_ce47_7975);
        assert_eq!(bucket_of_key(b"hello"), 943);
    }

    #[test]
    fn four_byte_counter_keys_spread_evenly_over_buckets() {
        let mut counts = vec![0u32; BUCKETS];
        let keys = 400_000u32;
        for i in 0..keys {
            counts[usize::from(bucket_of_key(&i.to_be_bytes()))] += 1;
        }
        let mean = f64::from(keys) / BUCKETS as f64;
        let max = f64::from(*counts.iter().max().unwrap());
        let min = f64::from(*counts.iter().min().unwrap());
        // Poisson with mean ~98: a max above 1.5x or min below 0.5x means bad mixing.
        assert!(max < mean * 1.5 && min > mean * 0.5, "min {min} max {max} mean {mean}");
    }

    #[test]
    fn message_id_hash_distinguishes_lengths_and_bytes() {
        assert_ne!(message_id_hash(&[0; 15]), message_id_hash(&[0; 16]));
        assert_ne!(message_id_hash(&[]), message_id_hash(&[0]));
        let a: Vec<u8> = (0..16).collect();
        let mut b = a.clone();
        b[15] ^= 1;
        assert_ne!(message_id_hash(&a), message_id_hash(&b));
    }
}
