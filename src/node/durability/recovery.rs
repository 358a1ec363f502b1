//! Reading a data directory back into a node's stores at start, before it
//! joins: for each shard layout the files were written in, the newest
//! snapshot and then every segment from the one it does not cover, in
//! order, each change handed to the shard of its bucket ([`Replay`]).
//! Layouts other than the node's own (it ran with another `--workers`)
//! are replayed first, oldest first.
//!
//! Every record is checked ([`crate::node::durability::log_format::next`]): a damaged
//! one is dropped, counted, and its bucket marked for repair from the
//! replicas; a damaged header ends its file (its later files are still
//! read); a record cut short at a file's end is a write torn by a power
//! loss, never acknowledged: the end. A file of another cluster is
//! refused. No file content can make recovery panic
//! (`fuzz/fuzz_targets/recovery.rs`).

use crate::node::durability::disk::NodeDisk;
use crate::node::durability::journal::{LiveFiles, parse_name, snapshot_name};
use crate::node::durability::log_format::{self, CLUSTER_ID_BYTES, Change, FileKind, Next, RECORD_BYTES_MAX};
use crate::storage::hash::{BUCKETS, BucketId};
use std::collections::BTreeMap;
use std::io;

/// Bytes read from a file at a time.
const READ_PIECE_BYTES: usize = 256 << 10;
const _: () = assert!(READ_PIECE_BYTES >= RECORD_BYTES_MAX);

/// Where recovered changes go: the node's shards.
pub trait Replay {
    /// One change, from a file written by shard `shard` of `shards`.
    fn change(&mut self, change: &Change<'_>, shard: u16, shards: u16);
}

/// The files of one shard of one layout.
#[derive(Debug, Default)]
struct ShardFiles {
    /// Segment and snapshot numbers with their bytes.
    segments: BTreeMap<u64, u64>,
    snapshots: BTreeMap<u64, u64>,
}

/// What recovery found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Records replayed, and records dropped as damaged.
    pub records: u64,
    pub damaged: u64,
    /// Files whose last record was cut short (a torn write).
    pub torn: u64,
    /// Per bucket: something of it may be missing; pull it whole.
    pub suspect: Vec<bool>,
    /// The number every shard's next segment takes.
    pub next_seq: u64,
    /// Per shard of the node's own layout: its live segments and snapshot
    /// (number, bytes), for its journal.
    pub kept: Vec<LiveFiles>,
    /// Files of other layouts, replayed: once every shard has a snapshot
    /// of its own, they are removed.
    pub other_layouts: Vec<String>,
    /// Bytes of journal read.
    pub bytes: u64,
}

/// What reading one file found.
struct FileRead {
    records: u64,
    complete_snapshot: bool,
    header_read: bool,
}

/// Recovers the stores of a node with `shards` shards of cluster `cluster`
/// from `disk`, removing what a crash left half done (partial snapshots)
/// and what the newest snapshots cover.
pub fn recover(
    disk: &dyn NodeDisk,
    cluster: [u8; CLUSTER_ID_BYTES],
    shards: u16,
    replay: &mut dyn Replay,
    ctx: &crate::node::context::NodeContext,
) -> Result<Recovered, String> {
    let reader = if crate::planted!(ctx, recovery_ignores_checksums) {
        unchecked
    } else {
        log_format::next
    };
    let mut recovered = Recovered {
        suspect: vec![false; BUCKETS],
        next_seq: 1,
        kept: (0..shards).map(|_| Default::default()).collect(),
        ..Recovered::default()
    };
    let layouts = list(disk, &mut recovered).map_err(|e| format!("cannot list the data directory: {e}"))?;
    let mut order: Vec<_> = layouts.iter().collect();
    // Other layouts first, oldest first; the node's own last.
    order.sort_by_key(|((_, n), files)| (*n == shards, newest(files)));
    for (&(_, n), files) in order {
        for (&shard, files) in files {
            let target = Target {
                disk,
                cluster,
                reader,
                replay: &mut *replay,
            };
            replay_shard(target, (shard, n), files, shards, &mut recovered)?;
        }
    }
    Ok(recovered)
}

/// The newest file number of a layout.
fn newest(files: &BTreeMap<u16, ShardFiles>) -> u64 {
    (files.values())
        .flat_map(|f| f.segments.keys().chain(f.snapshots.keys()))
        .max()
        .copied()
        .unwrap_or(0)
}

/// The journal files by layout and shard; partial snapshots removed.
fn list(disk: &dyn NodeDisk, recovered: &mut Recovered) -> io::Result<BTreeMap<(u16, u16), BTreeMap<u16, ShardFiles>>> {
    let mut layouts: BTreeMap<(u16, u16), BTreeMap<u16, ShardFiles>> = BTreeMap::new();
    for name in disk.list()? {
        let Some((kind, shard, shards, seq, partial)) = parse_name(&name) else {
            continue;
        };
        recovered.next_seq = recovered.next_seq.max(seq + 1);
        if partial {
            // A snapshot a crash cut short: the files it was to replace are all still there.
            disk.remove(&name)?;
            continue;
        }
        let files = layouts.entry((shard, shards)).or_default().entry(shard).or_default();
        let bytes = file_bytes(disk, &name)?;
        match kind {
            FileKind::Log => files.segments.insert(seq, bytes),
            FileKind::Snapshot => files.snapshots.insert(seq, bytes),
        };
    }
    Ok(layouts)
}

fn file_bytes(disk: &dyn NodeDisk, name: &str) -> io::Result<u64> {
    let mut total = 0u64;
    let mut buf = vec![0u8; READ_PIECE_BYTES];
    loop {
        let n = disk.read_at(name, total, &mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// Where recovery reads from and replays into.
struct Target<'a> {
    disk: &'a dyn NodeDisk,
    cluster: [u8; CLUSTER_ID_BYTES],
    /// [`log_format::next`]; another reader only in the simulator's planted bug.
    reader: fn(&[u8]) -> Next<'_>,
    replay: &'a mut dyn Replay,
}

#[cfg(feature = "planted-bugs")]
fn unchecked(bytes: &[u8]) -> Next<'_> {
    log_format::next_unchecked(bytes)
}

#[cfg(not(feature = "planted-bugs"))]
fn unchecked(bytes: &[u8]) -> Next<'_> {
    log_format::next(bytes)
}

/// One shard's files of one layout: the newest snapshot, then the
/// segments from the one it does not cover, in order. Covered files are
/// removed; for the node's own layout the rest are kept for its journal.
fn replay_shard(
    mut target: Target<'_>,
    (shard, shards): (u16, u16),
    files: &ShardFiles,
    own_shards: u16,
    recovered: &mut Recovered,
) -> Result<(), String> {
    let snapshot = files.snapshots.last_key_value().map(|(&seq, &bytes)| (seq, bytes));
    let from = snapshot.map_or(0, |(seq, _)| seq);
    let mut names = Vec::new();
    if let Some((seq, _)) = snapshot {
        let name = snapshot_name(shard, shards, seq);
        let read = replay_file(&mut target, &name, (shard, shards), recovered)?;
        if !read.complete_snapshot {
            // Without its last record it may miss any bucket of the shard.
            mark_all(recovered, shard, shards);
        }
        names.push(name);
    }
    let live: Vec<(u64, u64)> = files.segments.range(from..).map(|(&s, &b)| (s, b)).collect();
    for (i, &(seq, _)) in live.iter().enumerate() {
        if i > 0 && seq != live[i - 1].0 + 1 {
            // A segment is missing: what it held may be missing anywhere.
            mark_all(recovered, shard, shards);
        }
        let name = crate::node::durability::journal::log_name(shard, shards, seq);
        replay_file(&mut target, &name, (shard, shards), recovered)?;
        names.push(name);
    }
    remove_covered(target.disk, files, from, (shard, shards))
        .map_err(|e| format!("cannot remove covered journal files: {e}"))?;
    if shards == own_shards && usize::from(shard) < recovered.kept.len() {
        recovered.kept[usize::from(shard)] = (live.into_iter().collect(), snapshot);
    } else {
        recovered.other_layouts.extend(names);
    }
    Ok(())
}

/// Segments before the snapshot in force, and older snapshots: what a
/// crash left behind after the newest snapshot was complete.
fn remove_covered(disk: &dyn NodeDisk, files: &ShardFiles, from: u64, (shard, shards): (u16, u16)) -> io::Result<()> {
    for &seq in files.segments.range(..from).map(|(s, _)| s) {
        disk.remove(&crate::node::durability::journal::log_name(shard, shards, seq))?;
    }
    for &seq in files.snapshots.range(..from).map(|(s, _)| s) {
        disk.remove(&snapshot_name(shard, shards, seq))?;
    }
    Ok(())
}

fn mark_all(recovered: &mut Recovered, shard: u16, shards: u16) {
    for bucket in (0..BUCKETS).filter(|&b| written_by(b as BucketId, shard, shards)) {
        recovered.suspect[bucket] = true;
    }
}

/// Replays one file, a piece at a time.
fn replay_file(
    target: &mut Target<'_>,
    name: &str,
    layout: (u16, u16),
    recovered: &mut Recovered,
) -> Result<FileRead, String> {
    let mut file = FileRead {
        records: 0,
        complete_snapshot: false,
        header_read: false,
    };
    let mut buffer: Vec<u8> = Vec::with_capacity(2 * READ_PIECE_BYTES);
    let mut offset = 0u64;
    loop {
        let kept = buffer.len();
        buffer.resize(kept + READ_PIECE_BYTES, 0);
        let got =
            (target.disk.read_at(name, offset, &mut buffer[kept..])).map_err(|e| format!("cannot read {name}: {e}"))?;
        buffer.truncate(kept + got);
        offset += got as u64;
        recovered.bytes += got as u64;
        let at_end = got == 0;
        let (used, stop) = replay_records(target, &buffer, at_end, name, layout, &mut file, recovered)?;
        buffer.drain(..used);
        if stop || at_end {
            return Ok(file);
        }
    }
}

/// Replays the whole records at the start of `bytes`; returns the bytes
/// used and whether the file ends here.
fn replay_records(
    target: &mut Target<'_>,
    bytes: &[u8],
    at_end: bool,
    name: &str,
    (shard, shards): (u16, u16),
    file: &mut FileRead,
    recovered: &mut Recovered,
) -> Result<(usize, bool), String> {
    let mut at = 0;
    loop {
        match (target.reader)(&bytes[at..]) {
            Next::Record(change, len) => {
                at += len;
                if !std::mem::replace(&mut file.header_read, true) {
                    if !own_header(&change, target.cluster, name, (shard, shards))? {
                        recovered.damaged += 1;
                        mark_all(recovered, shard, shards);
                        return Ok((at, true));
                    }
                    continue;
                }
                if let Change::End { records } = change {
                    file.complete_snapshot = records == file.records;
                    return Ok((at, true));
                }
                file.records += 1;
                recovered.records += 1;
                target.replay.change(&change, shard, shards);
            }
            Next::Damaged { bucket, bytes } => {
                at += bytes;
                recovered.damaged += 1;
                let first = !std::mem::replace(&mut file.header_read, true);
                match bucket {
                    Some(bucket) if !first => recovered.suspect[usize::from(bucket)] = true,
                    _ => mark_all(recovered, shard, shards),
                }
                if first {
                    // A damaged file header: what the file holds is not
                    // known to be this node's; skipped.
                    return Ok((at, true));
                }
            }
            Next::Garbage => {
                recovered.damaged += 1;
                mark_all(recovered, shard, shards);
                return Ok((at, true));
            }
            Next::End { complete } => {
                if at_end && !complete {
                    recovered.torn += 1;
                }
                return Ok((at, at_end || complete && bytes.len() - at >= log_format::HEADER_BYTES));
            }
        }
    }
}

/// Whether a file's first record is its header, as its name says: false
/// (skip the file) if it is not; an error if it belongs to another cluster.
fn own_header(
    change: &Change<'_>,
    cluster: [u8; CLUSTER_ID_BYTES],
    name: &str,
    (shard, shards): (u16, u16),
) -> Result<bool, String> {
    let Change::Header(header) = change else {
        return Ok(false);
    };
    if header.cluster != cluster {
        return Err(format!(
            "{name} belongs to another cluster (it was written under another cluster secret): refusing to start on it"
        ));
    }
    Ok((header.shard, header.shards) == (shard, shards))
}

/// A bucket written by shard `shard` of `shards` (a WIPEOUT in that
/// shard's journal covers exactly these).
pub fn written_by(bucket: BucketId, shard: u16, shards: u16) -> bool {
    usize::from(bucket) % usize::from(shards.max(1)) == usize::from(shard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::context::NodeContext;
    use crate::node::durability::disk::MemoryDisk;
    use crate::node::durability::journal::log_name;
    use crate::node::durability::log_format::FileHeader;
    use crate::storage::hash::bucket_of_key;
    use crate::storage::stamp::Stamp;

    const CLUSTER: [u8; CLUSTER_ID_BYTES] = [7; CLUSTER_ID_BYTES];

    /// What was replayed: (shard, key) of each Put, in order.
    #[derive(Default)]
    struct Replayed(Vec<(u16, Vec<u8>)>);

    impl Replay for Replayed {
        fn change(&mut self, change: &Change<'_>, shard: u16, _: u16) {
            if let Change::Put { key, .. } = change {
                self.0.push((shard, key.to_vec()));
            }
        }
    }

    fn header(kind: FileKind, shard: u16, shards: u16, seq: u64, cluster: [u8; CLUSTER_ID_BYTES]) -> Vec<u8> {
        let mut out = Vec::new();
        let header = FileHeader {
            kind,
            shard,
            shards,
            seq,
            cluster,
        };
        Change::Header(header).encode_into(&mut out);
        out
    }

    /// A file of `kind` holding a Put of each key, with the offset at
    /// which each record starts.
    fn file(kind: FileKind, (shard, shards): (u16, u16), seq: u64, keys: &[&str]) -> (Vec<u8>, Vec<usize>) {
        let mut out = header(kind, shard, shards, seq, CLUSTER);
        let mut starts = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            starts.push(out.len());
            let change = Change::Put {
                key: key.as_bytes(),
                value: b"value",
                version: 0,
                stamp: Stamp::from_millis(1 + i as u64),
            };
            change.encode_into(&mut out);
        }
        if kind == FileKind::Snapshot {
            Change::End {
                records: keys.len() as u64,
            }
            .encode_into(&mut out);
        }
        (out, starts)
    }

    fn recover_from(disk: &MemoryDisk, shards: u16) -> (Result<Recovered, String>, Vec<String>) {
        let ctx = NodeContext::alone();
        let mut replayed = Replayed::default();
        let result = recover(disk, CLUSTER, shards, &mut replayed, &ctx);
        let keys = replayed
            .0
            .into_iter()
            .map(|(_, k)| String::from_utf8(k).unwrap())
            .collect();
        (result, keys)
    }

    fn suspects(recovered: &Recovered) -> usize {
        recovered.suspect.iter().filter(|s| **s).count()
    }

    #[test]
    fn segments_replay_in_order_and_the_next_one_is_numbered_after_them() {
        let disk = MemoryDisk::default();
        disk.put(&log_name(0, 1, 2), file(FileKind::Log, (0, 1), 2, &["c", "d"]).0);
        disk.put(&log_name(0, 1, 1), file(FileKind::Log, (0, 1), 1, &["a", "b"]).0);
        let (recovered, keys) = recover_from(&disk, 1);
        let recovered = recovered.unwrap();
        assert_eq!(keys, ["a", "b", "c", "d"]);
        assert_eq!((recovered.records, recovered.damaged, recovered.torn), (4, 0, 0));
        assert_eq!(recovered.next_seq, 3);
        assert_eq!(suspects(&recovered), 0);
        assert_eq!(recovered.kept[0].0.keys().copied().collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn a_record_cut_short_by_the_end_of_its_file_is_a_torn_write_not_damage() {
        let disk = MemoryDisk::default();
        let (mut bytes, starts) = file(FileKind::Log, (0, 1), 1, &["a", "b", "c"]);
        bytes.truncate(starts[2] + 7);
        disk.put(&log_name(0, 1, 1), bytes);
        let (recovered, keys) = recover_from(&disk, 1);
        let recovered = recovered.unwrap();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!((recovered.torn, recovered.damaged), (1, 0));
        assert_eq!(suspects(&recovered), 0, "a torn write was never acknowledged");
    }

    #[test]
    fn a_flipped_bit_in_a_payload_drops_that_record_and_marks_only_its_bucket() {
        let disk = MemoryDisk::default();
        let (mut bytes, starts) = file(FileKind::Log, (0, 1), 1, &["a", "b", "c"]);
        bytes[starts[1] + log_format::HEADER_BYTES + 2] ^= 0x10;
        disk.put(&log_name(0, 1, 1), bytes);
        let (recovered, keys) = recover_from(&disk, 1);
        let recovered = recovered.unwrap();
        assert_eq!(keys, ["a", "c"], "the records after the damaged one are still read");
        assert_eq!(recovered.damaged, 1);
        assert_eq!(suspects(&recovered), 1);
        assert!(recovered.suspect[usize::from(bucket_of_key(b"b"))]);
    }

    #[test]
    fn a_flipped_bit_in_a_record_header_ends_its_file_and_marks_the_shard_but_later_files_are_read() {
        let disk = MemoryDisk::default();
        let (mut bytes, starts) = file(FileKind::Log, (0, 2), 1, &["a", "b", "c"]);
        bytes[starts[1] + 1] ^= 0x01;
        disk.put(&log_name(0, 2, 1), bytes);
        disk.put(&log_name(0, 2, 2), file(FileKind::Log, (0, 2), 2, &["d"]).0);
        let (recovered, keys) = recover_from(&disk, 2);
        let recovered = recovered.unwrap();
        assert_eq!(keys, ["a", "d"]);
        assert_eq!(recovered.damaged, 1);
        // Every bucket shard 0 of 2 writes, and none of shard 1's.
        assert_eq!(suspects(&recovered), BUCKETS / 2);
        assert!((0..BUCKETS).all(|b| recovered.suspect[b] == written_by(b as BucketId, 0, 2)));
    }

    #[test]
    fn a_missing_segment_marks_every_bucket_of_its_shard() {
        let disk = MemoryDisk::default();
        disk.put(&log_name(0, 1, 1), file(FileKind::Log, (0, 1), 1, &["a"]).0);
        disk.put(&log_name(0, 1, 3), file(FileKind::Log, (0, 1), 3, &["c"]).0);
        let (recovered, keys) = recover_from(&disk, 1);
        let recovered = recovered.unwrap();
        assert_eq!(keys, ["a", "c"]);
        assert_eq!(suspects(&recovered), BUCKETS);
    }

    #[test]
    fn a_file_whose_header_names_another_shard_or_kind_is_skipped_and_its_shard_marked() {
        let disk = MemoryDisk::default();
        // Segment 1's name, segment 1 of shard 1's bytes: moved or reordered.
        disk.put(&log_name(0, 2, 1), file(FileKind::Log, (1, 2), 1, &["a"]).0);
        disk.put(&log_name(0, 2, 2), file(FileKind::Log, (0, 2), 2, &["b"]).0);
        let (recovered, keys) = recover_from(&disk, 2);
        let recovered = recovered.unwrap();
        assert_eq!(keys, ["b"]);
        assert_eq!(recovered.damaged, 1);
        assert!((0..BUCKETS).all(|b| recovered.suspect[b] == written_by(b as BucketId, 0, 2)));
    }

    #[test]
    fn a_file_of_another_cluster_refuses_the_start_and_names_it() {
        let disk = MemoryDisk::default();
        let mut bytes = header(FileKind::Log, 0, 1, 1, [9; CLUSTER_ID_BYTES]);
        Change::Forget { key: b"a" }.encode_into(&mut bytes);
        disk.put(&log_name(0, 1, 1), bytes);
        let (recovered, _) = recover_from(&disk, 1);
        let error = recovered.unwrap_err();
        assert!(
            error.contains(&log_name(0, 1, 1)) && error.contains("another cluster"),
            "{error}"
        );
    }

    #[test]
    fn garbage_where_a_file_should_start_is_skipped_and_its_shard_marked() {
        let disk = MemoryDisk::default();
        disk.put(&log_name(0, 1, 1), b"not a journal file at all, just bytes".to_vec());
        disk.put(&log_name(0, 1, 2), file(FileKind::Log, (0, 1), 2, &["b"]).0);
        let (recovered, keys) = recover_from(&disk, 1);
        let recovered = recovered.unwrap();
        assert_eq!(keys, ["b"]);
        assert!(recovered.damaged >= 1);
        assert_eq!(suspects(&recovered), BUCKETS);
    }

    #[test]
    fn a_complete_snapshot_replaces_the_segments_it_covers_and_they_are_removed() {
        let disk = MemoryDisk::default();
        disk.put(&log_name(0, 1, 1), file(FileKind::Log, (0, 1), 1, &["old"]).0);
        disk.put(
            &snapshot_name(0, 1, 2),
            file(FileKind::Snapshot, (0, 1), 2, &["a", "b"]).0,
        );
        disk.put(&log_name(0, 1, 2), file(FileKind::Log, (0, 1), 2, &["c"]).0);
        let (recovered, keys) = recover_from(&disk, 1);
        let recovered = recovered.unwrap();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(suspects(&recovered), 0);
        assert_eq!(disk.names(), [log_name(0, 1, 2), snapshot_name(0, 1, 2)]);
    }

    #[test]
    fn a_snapshot_without_its_end_record_marks_its_shard() {
        let disk = MemoryDisk::default();
        let (mut bytes, starts) = file(FileKind::Snapshot, (0, 1), 2, &["a", "b"]);
        bytes.truncate(starts[1]);
        disk.put(&snapshot_name(0, 1, 2), bytes);
        let (recovered, keys) = recover_from(&disk, 1);
        let recovered = recovered.unwrap();
        assert_eq!(keys, ["a"]);
        assert_eq!(suspects(&recovered), BUCKETS);
    }

    #[test]
    fn a_snapshot_a_crash_cut_short_is_removed_and_the_segments_it_was_to_replace_replayed() {
        let disk = MemoryDisk::default();
        disk.put(&log_name(0, 1, 1), file(FileKind::Log, (0, 1), 1, &["a"]).0);
        let partial = format!(
            "{}{}",
            snapshot_name(0, 1, 2),
            crate::node::durability::journal::PARTIAL_SUFFIX
        );
        disk.put(&partial, file(FileKind::Snapshot, (0, 1), 2, &["a"]).0);
        let (recovered, keys) = recover_from(&disk, 1);
        let recovered = recovered.unwrap();
        assert_eq!(keys, ["a"]);
        assert_eq!(suspects(&recovered), 0);
        assert_eq!(disk.names(), [log_name(0, 1, 1)]);
    }

    #[test]
    fn another_layouts_files_replay_first_and_are_handed_over_for_removal() {
        let disk = MemoryDisk::default();
        disk.put(&log_name(0, 2, 1), file(FileKind::Log, (0, 2), 1, &["old layout"]).0);
        disk.put(&log_name(0, 1, 2), file(FileKind::Log, (0, 1), 2, &["own layout"]).0);
        let (recovered, keys) = recover_from(&disk, 1);
        let recovered = recovered.unwrap();
        assert_eq!(keys, ["old layout", "own layout"]);
        assert_eq!(recovered.other_layouts, [log_name(0, 2, 1)]);
    }
}
