//! The on-disk form of a store's changes: self-checking records, the same
//! in log segments and in snapshots, and the header that starts each file.
//! Pure encoding and decoding; files and their order belong to
//! [`super::journal`].
//!
//! A record is a 12-byte header, its payload, and a checksum:
//!
//! ```text
//! len u32 | bucket u16 | kind u8 | 0 u8 | crc32(first 8 bytes) u32 | payload (len bytes) | crc32(first 8 bytes, payload) u32
//! ```
//!
//! The header has a checksum of its own, so a record whose payload is
//! damaged still says how long it is and which bucket it belongs to: it
//! is skipped and its bucket repaired from the replicas, and the records
//! after it are read. A damaged header says nothing that can be trusted:
//! the rest of the file is lost (and every bucket is repaired). All-zero
//! bytes where a header should be are the end of what was written (a file
//! reserved ahead of its writes reads as zeros past them), and a record
//! cut short by the file's end is a torn write: the end too.

pub use crate::cluster::secret::CLUSTER_ID_BYTES;
use crate::protocol::wire::{STORED_KEY_BYTES_MAX, VALUE_BYTES_MAX};
use crate::storage::hash::{BUCKETS, BucketId};
use crate::storage::stamp::Stamp;

/// Header: length, bucket, kind, a zero byte, the header's checksum.
pub const HEADER_BYTES: usize = 12;
/// The payload checksum after the payload.
const TRAILER_BYTES: usize = 4;
/// Stamp, version, key length: before a PUT's key and value.
const PUT_FIXED_BYTES: usize = 8 + 4 + 1;
/// The largest payload a record may have (a PUT of the largest key and value).
pub const PAYLOAD_BYTES_MAX: usize = PUT_FIXED_BYTES + STORED_KEY_BYTES_MAX + VALUE_BYTES_MAX;
/// The largest record.
pub const RECORD_BYTES_MAX: usize = HEADER_BYTES + PAYLOAD_BYTES_MAX + TRAILER_BYTES;
/// The bucket field of records that are about no one bucket.
const NO_BUCKET: u16 = u16::MAX;
/// What every file of a data directory starts with, in its header record.
const MAGIC: &[u8; 8] = b"DYNAKV01";

const _: () = assert!(BUCKETS < NO_BUCKET as usize);
const _: () = assert!(PAYLOAD_BYTES_MAX <= u32::MAX as usize);

/// What kind of file a header starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FileKind {
    /// A log segment: records in the order they happened.
    Log = 1,
    /// A snapshot: the store's records when it was taken, then [`Change::End`].
    Snapshot = 2,
}

/// The first record of every file: what the file is and whose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    pub kind: FileKind,
    /// The shard that wrote it, of how many the node had then.
    pub shard: u16,
    pub shards: u16,
    /// A log segment's number; for a snapshot, the first segment it does
    /// not cover (recovery replays that segment and the later ones on it).
    pub seq: u64,
    /// Whose cluster: a hash of the cluster secret.
    pub cluster: [u8; CLUSTER_ID_BYTES],
}

/// One change to a store, as the journal holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change<'a> {
    /// A value stored.
    Put {
        key: &'a [u8],
        value: &'a [u8],
        version: i32,
        stamp: Stamp,
    },
    /// A delete, as a tombstone.
    Tombstone { key: &'a [u8], stamp: Stamp },
    /// A key removed with no tombstone (a cluster of one replica).
    Forget { key: &'a [u8] },
    /// Every record of a bucket dropped (this node no longer replicates it).
    DropBucket { bucket: BucketId },
    /// The bucket's tombstones stamped before `cutoff` collected.
    Collect { bucket: BucketId, cutoff: Stamp },
    /// WIPEOUT: everything before it gone, and nothing stamped before
    /// `floor` taken in again.
    Wipe { floor: Stamp },
    /// A snapshot's last record: it holds `records` records (a snapshot
    /// without it was cut short and does not count).
    End { records: u64 },
    /// The first record of a file.
    Header(FileHeader),
}

/// The kind byte of each change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Put = 1,
    Tombstone = 2,
    Forget = 3,
    DropBucket = 4,
    Collect = 5,
    Wipe = 6,
    End = 7,
    Header = 8,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Put,
        Kind::Tombstone,
        Kind::Forget,
        Kind::DropBucket,
        Kind::Collect,
        Kind::Wipe,
        Kind::End,
        Kind::Header,
    ];

    fn from_byte(byte: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|&kind| kind as u8 == byte)
    }
}

fn crc(parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize()
}

impl Change<'_> {
    fn kind(&self) -> Kind {
        match self {
            Change::Put { .. } => Kind::Put,
            Change::Tombstone { .. } => Kind::Tombstone,
            Change::Forget { .. } => Kind::Forget,
            Change::DropBucket { .. } => Kind::DropBucket,
            Change::Collect { .. } => Kind::Collect,
            Change::Wipe { .. } => Kind::Wipe,
            Change::End { .. } => Kind::End,
            Change::Header(_) => Kind::Header,
        }
    }

    /// The bucket the change is about, if one.
    pub fn bucket(&self) -> Option<BucketId> {
        match self {
            Change::Put { key, .. } | Change::Tombstone { key, .. } | Change::Forget { key } => {
                Some(crate::storage::hash::bucket_of_key(key))
            }
            Change::DropBucket { bucket } | Change::Collect { bucket, .. } => Some(*bucket),
            Change::Wipe { .. } | Change::End { .. } | Change::Header(_) => None,
        }
    }

    /// Bytes the record takes encoded.
    pub fn record_bytes(&self) -> usize {
        HEADER_BYTES + self.payload_bytes() + TRAILER_BYTES
    }

    fn payload_bytes(&self) -> usize {
        match self {
            Change::Put { key, value, .. } => PUT_FIXED_BYTES + key.len() + value.len(),
            Change::Tombstone { key, .. } => 8 + 1 + key.len(),
            Change::Forget { key } => 1 + key.len(),
            Change::DropBucket { .. } => 0,
            Change::Collect { .. } | Change::Wipe { .. } | Change::End { .. } => 8,
            Change::Header(_) => MAGIC.len() + 1 + 2 + 2 + 8 + CLUSTER_ID_BYTES,
        }
    }

    /// Appends the record to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let len = self.payload_bytes() as u32;
        let bucket = self.bucket().unwrap_or(NO_BUCKET);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&bucket.to_le_bytes());
        out.push(self.kind() as u8);
        out.push(0);
        let header_crc = crc(&[&out[start..start + 8]]);
        out.extend_from_slice(&header_crc.to_le_bytes());
        let payload_start = out.len();
        self.write_payload(out);
        crate::invariant!(
            out.len() - payload_start == len as usize,
            "a {:?} record wrote {} payload bytes, said {len}",
            self.kind(),
            out.len() - payload_start
        );
        let payload_crc = crc(&[&out[start..start + 8], &out[payload_start..]]);
        out.extend_from_slice(&payload_crc.to_le_bytes());
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        match *self {
            Change::Put {
                key,
                value,
                version,
                stamp,
            } => {
                out.extend_from_slice(&stamp.0.to_le_bytes());
                out.extend_from_slice(&version.to_le_bytes());
                out.push(key.len() as u8);
                out.extend_from_slice(key);
                out.extend_from_slice(value);
            }
            Change::Tombstone { key, stamp } => {
                out.extend_from_slice(&stamp.0.to_le_bytes());
                out.push(key.len() as u8);
                out.extend_from_slice(key);
            }
            Change::Forget { key } => {
                out.push(key.len() as u8);
                out.extend_from_slice(key);
            }
            Change::DropBucket { .. } => {}
            Change::Collect { cutoff: stamp, .. } | Change::Wipe { floor: stamp } => {
                out.extend_from_slice(&stamp.0.to_le_bytes())
            }
            Change::End { records } => out.extend_from_slice(&records.to_le_bytes()),
            Change::Header(header) => {
                out.extend_from_slice(MAGIC);
                out.push(header.kind as u8);
                out.extend_from_slice(&header.shard.to_le_bytes());
                out.extend_from_slice(&header.shards.to_le_bytes());
                out.extend_from_slice(&header.seq.to_le_bytes());
                out.extend_from_slice(&header.cluster);
            }
        }
    }
}

/// What the bytes at the start of a buffer hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// A whole record that checks, and its length.
    Record(Change<'a>, usize),
    /// A record whose header checks but whose payload does not: skip
    /// `bytes`, and repair `bucket` (None: it was about no one bucket).
    Damaged { bucket: Option<BucketId>, bytes: usize },
    /// A header that does not check: nothing after it can be trusted.
    Garbage,
    /// The end of what was written: no bytes, zeros, or a record cut short
    /// (`complete` false: more bytes may still come, if the caller has them).
    End { complete: bool },
}

/// Reads the record at the start of `bytes`.
pub fn next(bytes: &[u8]) -> Next<'_> {
    read(bytes, true)
}

/// [`next`] without the payload's checksum: the simulator's planted bug
/// (`recovery-ignores-checksums`) that shows the checksum matters.
#[cfg(feature = "planted-bugs")]
pub fn next_unchecked(bytes: &[u8]) -> Next<'_> {
    read(bytes, false)
}

fn read(bytes: &[u8], check_payload: bool) -> Next<'_> {
    if bytes.len() < HEADER_BYTES {
        return Next::End {
            complete: bytes.iter().all(|&b| b == 0),
        };
    }
    let header = &bytes[..HEADER_BYTES];
    let stated = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if crc(&[&header[..8]]) != stated || header[7] != 0 {
        if header.iter().all(|&b| b == 0) {
            return Next::End { complete: true };
        }
        return Next::Garbage;
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let bucket = u16::from_le_bytes([header[4], header[5]]);
    let total = HEADER_BYTES + len + TRAILER_BYTES;
    if len > PAYLOAD_BYTES_MAX {
        return Next::Garbage;
    }
    if bytes.len() < total {
        return Next::End { complete: false };
    }
    let payload = &bytes[HEADER_BYTES..HEADER_BYTES + len];
    let trailer = &bytes[HEADER_BYTES + len..total];
    let stated = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let damaged = || Next::Damaged {
        bucket: (usize::from(bucket) < BUCKETS).then_some(bucket),
        bytes: total,
    };
    if check_payload && crc(&[&header[..8], payload]) != stated {
        return damaged();
    }
    match Kind::from_byte(header[6]).and_then(|kind| read_payload(kind, bucket, payload)) {
        Some(change) if change.bucket().unwrap_or(NO_BUCKET) == bucket => Next::Record(change, total),
        // Checks but does not parse: written by something else.
        _ => damaged(),
    }
}

/// The change a payload of `kind` holds, every field range-checked.
fn read_payload(kind: Kind, bucket: u16, payload: &[u8]) -> Option<Change<'_>> {
    let u64_at = |at: usize| {
        payload
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let key_at = |at: usize| {
        let len = usize::from(*payload.get(at)?);
        let key = payload.get(at + 1..at + 1 + len)?;
        (1..=STORED_KEY_BYTES_MAX).contains(&len).then_some((key, at + 1 + len))
    };
    Some(match kind {
        Kind::Put => {
            let stamp = Stamp(u64_at(0)?);
            let version = i32::from_le_bytes(payload.get(8..12)?.try_into().ok()?);
            let (key, end) = key_at(12)?;
            let value = &payload[end..];
            if value.len() > VALUE_BYTES_MAX {
                return None;
            }
            Change::Put {
                key,
                value,
                version,
                stamp,
            }
        }
        Kind::Tombstone => {
            let stamp = Stamp(u64_at(0)?);
            let (key, end) = key_at(8)?;
            (end == payload.len()).then_some(Change::Tombstone { key, stamp })?
        }
        Kind::Forget => {
            let (key, end) = key_at(0)?;
            (end == payload.len()).then_some(Change::Forget { key })?
        }
        Kind::DropBucket => payload.is_empty().then_some(Change::DropBucket { bucket })?,
        Kind::Collect => Change::Collect {
            bucket,
            cutoff: Stamp(exactly_u64(payload)?),
        },
        Kind::Wipe => Change::Wipe {
            floor: Stamp(exactly_u64(payload)?),
        },
        Kind::End => Change::End {
            records: exactly_u64(payload)?,
        },
        Kind::Header => Change::Header(read_header(payload)?),
    })
}

fn exactly_u64(payload: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(payload.try_into().ok()?))
}

fn read_header(payload: &[u8]) -> Option<FileHeader> {
    if payload.len() != MAGIC.len() + 1 + 2 + 2 + 8 + CLUSTER_ID_BYTES || !payload.starts_with(MAGIC) {
        return None;
    }
    let rest = &payload[MAGIC.len()..];
    let kind = match rest[0] {
        1 => FileKind::Log,
        2 => FileKind::Snapshot,
        _ => return None,
    };
    Some(FileHeader {
        kind,
        shard: u16::from_le_bytes([rest[1], rest[2]]),
        shards: u16::from_le_bytes([rest[3], rest[4]]),
        seq: u64::from_le_bytes(rest[5..13].try_into().ok()?),
        cluster: rest[13..13 + CLUSTER_ID_BYTES].try_into().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Change<'static>> {
        vec![
            Change::Put {
                key: b"key",
                value: &[7; 500],
                version: -4,
                stamp: Stamp(99),
            },
            Change::Put {
                key: &[1; 32],
                value: &[2; 10_000],
                version: 0,
                stamp: Stamp(u64::MAX),
            },
            Change::Tombstone {
                key: b"k",
                stamp: Stamp(5),
            },
            Change::Forget { key: b"gone" },
            Change::DropBucket { bucket: 4095 },
            Change::Collect {
                bucket: 3,
                cutoff: Stamp(1 << 40),
            },
            Change::Wipe { floor: Stamp(77) },
            Change::End { records: 12 },
            Change::Header(FileHeader {
                kind: FileKind::Snapshot,
                shard: 1,
                shards: 3,
                seq: 9,
                cluster: [5; CLUSTER_ID_BYTES],
            }),
        ]
    }

    #[test]
    fn every_kind_round_trips_and_says_its_own_length() {
        let mut file = Vec::new();
        for change in every_kind() {
            let before = file.len();
            change.encode_into(&mut file);
            assert_eq!(file.len() - before, change.record_bytes(), "{change:?}");
        }
        let mut at = 0;
        for change in every_kind() {
            match next(&file[at..]) {
                Next::Record(read, bytes) => {
                    assert_eq!(read, change);
                    at += bytes;
                }
                other => panic!("{change:?}: {other:?}"),
            }
        }
        assert_eq!(next(&file[at..]), Next::End { complete: true });
        assert!(every_kind()[1].record_bytes() <= RECORD_BYTES_MAX);
    }

    #[test]
    fn a_damaged_payload_is_skipped_and_names_its_bucket() {
        let put = Change::Put {
            key: b"key",
            value: b"value",
            version: 1,
            stamp: Stamp(3),
        };
        let mut file = Vec::new();
        put.encode_into(&mut file);
        Change::Forget { key: b"other" }.encode_into(&mut file);
        let first = put.record_bytes();
        for at in HEADER_BYTES..first {
            let mut damaged = file.clone();
            damaged[at] ^= 0x10;
            assert_eq!(
                next(&damaged),
                Next::Damaged {
                    bucket: put.bucket(),
                    bytes: first
                },
                "byte {at}"
            );
            assert!(matches!(
                next(&damaged[first..]),
                Next::Record(Change::Forget { .. }, _)
            ));
        }
    }

    #[test]
    fn a_damaged_header_zeros_and_a_torn_record_end_what_can_be_read() {
        let mut file = Vec::new();
        Change::Wipe { floor: Stamp(1) }.encode_into(&mut file);
        for at in 0..HEADER_BYTES {
            let mut damaged = file.clone();
            damaged[at] ^= 1;
            assert_eq!(next(&damaged), Next::Garbage, "byte {at}");
        }
        assert_eq!(next(&[0; 64]), Next::End { complete: true }, "reserved, never written");
        assert_eq!(next(&[]), Next::End { complete: true });
        for cut in 1..file.len() {
            assert!(matches!(next(&file[..cut]), Next::End { .. }), "cut at {cut}");
        }
        assert_eq!(next(&file[..file.len() - 1]), Next::End { complete: false });
    }

    #[test]
    fn a_record_that_checks_but_does_not_parse_is_damaged_not_trusted() {
        // A valid frame around a PUT whose key length is 0.
        let mut body = vec![0u8; 8 + 4 + 1];
        body.extend_from_slice(b"v");
        let mut file = Vec::new();
        file.extend_from_slice(&(body.len() as u32).to_le_bytes());
        file.extend_from_slice(&7u16.to_le_bytes());
        file.push(Kind::Put as u8);
        file.push(0);
        let header_crc = crc(&[&file[..8]]);
        file.extend_from_slice(&header_crc.to_le_bytes());
        file.extend_from_slice(&body);
        let payload_crc = crc(&[&file[..8], &body]);
        file.extend_from_slice(&payload_crc.to_le_bytes());
        assert_eq!(
            next(&file),
            Next::Damaged {
                bucket: Some(7),
                bytes: file.len()
            }
        );
    }
}
