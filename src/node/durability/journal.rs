//! A shard's journal: every change to its store, appended to log segments
//! before anything that depends on it leaves the node, and from time to
//! time a snapshot that lets the log be cut. Memory stays the primary
//! copy; the journal is read only at start ([`crate::node::durability::recovery`]).
//!
//! - **Group commit.** The changes of a drain are gathered in one buffer
//!   and written with one append at its end ([`Journal::commit`]); with
//!   [`Fsync::Always`] a sync follows before the drain's replies and acks
//!   leave. [`Fsync::Periodic`] syncs on a timer instead, [`Fsync::Never`]
//!   leaves it to the kernel.
//! - **Room first.** Space is reserved ahead of the writes, a step at a
//!   time ([`NodeDisk::reserve`]); a change that finds no room is refused
//!   before it is made ([`Journal::admit`]), so a full disk answers like a
//!   full store and nothing unlogged is acknowledged.
//! - **Compaction.** Once the log since the last snapshot is as large as
//!   that snapshot (and at least [`COMPACT_MIN_BYTES`]), a new segment
//!   starts and the store is written, a few buckets per step, to a new
//!   snapshot; writes go on meanwhile, into the new segment. The snapshot
//!   counts once it is complete and synced, renamed and its directory
//!   synced; only then are the old snapshot and segments removed. Replay
//!   is positional (snapshot, then segments in order), so a bucket copied
//!   after some of the new segment's changes replays them again harmlessly:
//!   newest stamp wins, and a drop or a wipe in the segment clears what was
//!   copied before it. Disk use stays under about three times the live
//!   data plus a segment: the old snapshot, the log as large as it, the
//!   new snapshot, and what is written meanwhile.

use crate::node::context::NodeContext;
use crate::node::durability::disk::NodeDisk;
use crate::node::durability::log_format::{CLUSTER_ID_BYTES, Change, FileHeader, FileKind};
use crate::storage::hash::{BUCKETS, BucketId};
use crate::storage::record::Record;
use crate::storage::stamp::Stamp;
use crate::storage::store::Store;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A segment is closed and a new one started past this size (the default
/// of [`JournalSettings::segment_bytes`]).
pub const SEGMENT_BYTES: u64 = 16 << 20;
/// Room is reserved this much at a time.
const RESERVE_STEP_BYTES: u64 = 1 << 20;
/// What a segment holds before any change: its header, and some.
const HEADER_ROOM_BYTES: u64 = 128;
/// Compaction waits for at least this much log (the default of
/// [`JournalSettings::compact_min_bytes`]).
pub const COMPACT_MIN_BYTES: u64 = 8 << 20;
/// Bytes of snapshot one compaction step writes, at most (one bucket more).
const SNAPSHOT_STEP_BYTES: usize = 256 << 10;
/// A step of compaction at most this often, so that a busy shard spends
/// most of its time on requests.
const SNAPSHOT_STEP_EVERY_MS: u64 = 5;
/// Bytes a snapshot buffer holds before they are appended.
const SNAPSHOT_BUFFER_BYTES: usize = 64 << 10;
/// After the disk refused room or a write, asking again this often.
const RETRY_MS: u64 = 250;
/// After a snapshot failed, trying again this much later.
const COMPACT_RETRY_MS: u64 = 5_000;

/// When what a shard writes is made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Before any reply or ack that depends on it leaves: one sync per drain.
    Always,
    /// Every `interval_ms`; a reply leaves once its records are written.
    Periodic { interval_ms: u64 },
    /// When the kernel writes back; a reply leaves once its records are written.
    Never,
}

/// The default of `--fsync`: what it costs and what it risks are in
/// `docs/benchmarks.md` ("Durability").
pub const FSYNC_DEFAULT: Fsync = Fsync::Periodic { interval_ms: 1_000 };

/// What a shard's journal needs to know.
#[derive(Clone, Copy, Debug)]
pub struct JournalSettings {
    pub fsync: Fsync,
    /// The cluster the files belong to (see [`crate::node::durability::log_format::FileHeader`]).
    pub cluster: [u8; CLUSTER_ID_BYTES],
    pub shard: u16,
    pub shards: u16,
    /// A segment is closed past this size.
    pub segment_bytes: u64,
    /// Compaction waits for at least this much log.
    pub compact_min_bytes: u64,
}

/// Why a commit failed: nothing of the drain may be called stored.
#[derive(Debug)]
pub struct CommitFailed(pub io::Error);

/// Why log segments may go: what they hold is elsewhere.
#[derive(Clone, Copy, Debug)]
enum Covered {
    BySnapshot,
    ByWipe,
}

/// The name of a log segment of shard `shard` of `shards`.
pub fn log_name(shard: u16, shards: u16, seq: u64) -> String {
    format!("log-{shard}of{shards}-{seq:016}.wal")
}

/// The name of a snapshot (covering the segments before `seq`).
pub fn snapshot_name(shard: u16, shards: u16, seq: u64) -> String {
    format!("snap-{shard}of{shards}-{seq:016}.snap")
}

/// A snapshot being written is named so until it is complete.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// What a journal file's name says: its kind, shard, shard count, number,
/// and whether it is a snapshot still being written.
pub fn parse_name(name: &str) -> Option<(FileKind, u16, u16, u64, bool)> {
    let (name, partial) = match name.strip_suffix(PARTIAL_SUFFIX) {
        Some(name) => (name, true),
        None => (name, false),
    };
    let (kind, rest) = if let Some(rest) = name.strip_prefix("log-").and_then(|r| r.strip_suffix(".wal")) {
        (FileKind::Log, rest)
    } else {
        let rest = name.strip_prefix("snap-")?.strip_suffix(".snap")?;
        (FileKind::Snapshot, rest)
    };
    let (layout, seq) = rest.split_once('-')?;
    let (shard, shards) = layout.split_once("of")?;
    let (shard, shards, seq) = (shard.parse().ok()?, shards.parse().ok()?, seq.parse().ok()?);
    (shard < shards && seq > 0 && (kind == FileKind::Snapshot || !partial))
        .then_some((kind, shard, shards, seq, partial))
}

/// A shard's live journal files: its segments (number, bytes) and its
/// snapshot in force (number, bytes).
pub type LiveFiles = (std::collections::BTreeMap<u64, u64>, Option<(u64, u64)>);

/// The segment being appended to.
struct Segment {
    seq: u64,
    name: String,
    /// Bytes written, and bytes reserved for it.
    written: u64,
    reserved: u64,
}

/// A snapshot being written, step by step.
struct Compaction {
    /// The first segment it does not cover.
    seq: u64,
    name: String,
    next_bucket: usize,
    records: u64,
    bytes: u64,
    buffer: Vec<u8>,
    next_step_ms: u64,
}

pub struct Journal {
    disk: Arc<dyn NodeDisk>,
    settings: JournalSettings,
    ctx: Arc<NodeContext>,
    segment: Segment,
    /// The drain's changes, written at its end.
    group: Vec<u8>,
    /// Since when (monotonic ms) written records wait for a sync; None: none.
    unsynced_since_ms: Option<u64>,
    last_sync_ms: u64,
    /// Until then the disk is not asked for room again (it refused).
    refuse_until_ms: u64,
    /// A write failed: writes are refused until the disk takes one again.
    failing: bool,
    /// The live segments (by number) and the snapshot in force, with their bytes.
    segments: std::collections::BTreeMap<u64, u64>,
    snapshot: Option<(u64, u64)>,
    compaction: Option<Compaction>,
    /// A snapshot that failed is not tried again before this.
    compact_after_ms: u64,
}

/// How closing a segment and starting the next failed.
enum Rolled {
    /// The closed segment's write or sync failed: a failed commit.
    Failed(io::Error),
    /// The next segment could not be started: the closed one stays current.
    NoRoom(io::Error),
}

impl Journal {
    /// Opens the journal of a shard whose files `existing` (number and
    /// bytes of its segments, and its snapshot) survived recovery: a new
    /// segment `seq` starts.
    pub fn open(
        disk: Arc<dyn NodeDisk>,
        settings: JournalSettings,
        ctx: Arc<NodeContext>,
        seq: u64,
        existing: LiveFiles,
    ) -> io::Result<Journal> {
        let (segments, snapshot) = existing;
        let name = log_name(settings.shard, settings.shards, seq);
        let mut journal = Journal {
            disk,
            settings,
            ctx,
            segment: Segment {
                seq,
                name,
                written: 0,
                reserved: 0,
            },
            group: Vec::new(),
            unsynced_since_ms: None,
            last_sync_ms: 0,
            refuse_until_ms: 0,
            failing: false,
            segments,
            snapshot,
            compaction: None,
            compact_after_ms: 0,
        };
        let bytes: u64 = journal.segments.values().sum::<u64>() + journal.snapshot.map_or(0, |(_, b)| b);
        journal.count_files(
            journal.segments.len() as i64 + i64::from(journal.snapshot.is_some()),
            bytes as i64,
        );
        journal.start_segment(seq)?;
        Ok(journal)
    }

    fn header(&self, kind: FileKind, seq: u64) -> Change<'static> {
        Change::Header(FileHeader {
            kind,
            shard: self.settings.shard,
            shards: self.settings.shards,
            seq,
            cluster: self.settings.cluster,
        })
    }

    /// Creates segment `seq` with its header, synced with its directory
    /// entry, and makes it the one appended to.
    fn start_segment(&mut self, seq: u64) -> io::Result<()> {
        let name = log_name(self.settings.shard, self.settings.shards, seq);
        let mut first = Vec::new();
        self.header(FileKind::Log, seq).encode_into(&mut first);
        self.disk.create(&name)?;
        self.disk.reserve(&name, self.reserve_step())?;
        self.disk.append(&name, &first)?;
        self.disk.sync(&name)?;
        self.disk.sync_dir()?;
        self.segment = Segment {
            seq,
            name,
            written: first.len() as u64,
            reserved: self.reserve_step(),
        };
        self.segments.insert(seq, first.len() as u64);
        self.count_files(1, first.len() as i64);
        Ok(())
    }

    fn count_files(&self, files: i64, bytes: i64) {
        let c = &self.ctx.counters;
        c.disk_files.fetch_add(files as u64, Ordering::Relaxed);
        c.disk_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Whether a change of `bytes` may be made now: there is room for it in
    /// the journal. False when the disk refused room (full) or a write
    /// failed and has not been retried yet: the change is refused, like one
    /// a full store has no room for.
    pub fn admit(&mut self, bytes: usize, now_ms: u64) -> bool {
        if self.failing || now_ms < self.refuse_until_ms {
            self.ctx.counters.disk_refusals.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let written = self.segment.written + self.group.len() as u64;
        // A segment past its size is closed, unless it holds no more than
        // its header (a change larger than a segment goes in one alone).
        let rolls = written + bytes as u64 > self.settings.segment_bytes && written > HEADER_ROOM_BYTES;
        let result = if rolls { self.roll(now_ms) } else { Ok(()) };
        let result = result.and_then(|()| self.reserve_for(bytes));
        match result {
            Ok(()) => true,
            Err(Rolled::NoRoom(error)) => {
                self.refused(&error, now_ms);
                false
            }
            Err(Rolled::Failed(error)) => {
                self.failed(error);
                false
            }
        }
    }

    /// Reserves room in the segment for `bytes` more beside the group.
    fn reserve_for(&mut self, bytes: usize) -> Result<(), Rolled> {
        let wanted = self.segment.written + self.group.len() as u64 + bytes as u64;
        if wanted <= self.segment.reserved {
            return Ok(());
        }
        let step = self.reserve_step();
        let reserved = wanted.div_ceil(step) * step;
        let reservation = self.disk.reserve(&self.segment.name, reserved);
        reservation
            .map(|()| self.segment.reserved = reserved)
            .map_err(Rolled::NoRoom)
    }

    /// Room is reserved this much at a time (never more than a segment).
    fn reserve_step(&self) -> u64 {
        RESERVE_STEP_BYTES.min(self.settings.segment_bytes).max(1)
    }

    fn refused(&mut self, error: &io::Error, now_ms: u64) {
        self.refuse_until_ms = now_ms + RETRY_MS;
        self.ctx.counters.disk_refusals.fetch_add(1, Ordering::Relaxed);
        crate::log!("disk_full", "the data directory refused room for the journal: {error}");
    }

    /// Adds a change to the drain's group (after [`Journal::admit`]).
    pub fn record(&mut self, change: &Change<'_>) {
        change.encode_into(&mut self.group);
    }

    /// Whether the drain has changes not yet written.
    pub fn has_group(&self) -> bool {
        !self.group.is_empty()
    }

    /// Writes the drain's changes, synced with [`Fsync::Always`]. On an
    /// error the shard must answer its writes as failed: the journal may
    /// hold them or not.
    pub fn commit(&mut self, now_ms: u64) -> Result<(), CommitFailed> {
        if self.group.is_empty() {
            return Ok(());
        }
        let group = std::mem::take(&mut self.group);
        let written = self.disk.append(&self.segment.name, &group);
        let result = written.and_then(|()| {
            self.wrote(group.len() as u64, now_ms);
            match self.settings.fsync {
                Fsync::Always if !crate::planted!(self.ctx, ack_before_sync) => self.sync(now_ms),
                _ => Ok(()),
            }
        });
        crate::invariant!(
            result.is_err()
                || self.settings.fsync != Fsync::Always
                || crate::planted!(self.ctx, ack_before_sync)
                || self.unsynced_since_ms.is_none(),
            "a group committed under --fsync always is not synced"
        );
        self.group = group;
        self.group.clear();
        result.map_err(|error| self.failed(error))
    }

    fn wrote(&mut self, bytes: u64, now_ms: u64) {
        self.segment.written += bytes;
        let counted = self.segments.entry(self.segment.seq).or_default();
        *counted += bytes;
        crate::invariant!(
            *counted == self.segment.written,
            "segment {} counted at {counted} bytes, {} written",
            self.segment.seq,
            self.segment.written
        );
        // Room is reserved before a change is taken: a full disk refuses
        // the change, it never fails the write of one acknowledged later.
        crate::invariant!(
            self.segment.written <= self.segment.reserved,
            "{} bytes written to segment {}, {} reserved",
            self.segment.written,
            self.segment.seq,
            self.segment.reserved
        );
        self.count_files(0, bytes as i64);
        self.unsynced_since_ms.get_or_insert(now_ms);
    }

    fn failed(&mut self, error: io::Error) -> CommitFailed {
        self.failing = true;
        self.refuse_until_ms = 0;
        self.ctx.counters.disk_errors.fetch_add(1, Ordering::Relaxed);
        crate::log!(
            "disk_error",
            "a journal write failed ({error}): writes refused until the disk takes them again"
        );
        CommitFailed(error)
    }

    /// Makes the segment durable.
    fn sync(&mut self, now_ms: u64) -> io::Result<()> {
        let started = Instant::now();
        self.disk.sync(&self.segment.name)?;
        let micros = started.elapsed().as_micros() as u64;
        let c = &self.ctx.counters;
        c.disk_syncs.fetch_add(1, Ordering::Relaxed);
        c.disk_sync_us.fetch_add(micros, Ordering::Relaxed);
        c.disk_sync_us_max.fetch_max(micros, Ordering::Relaxed);
        self.unsynced_since_ms = None;
        self.last_sync_ms = now_ms;
        Ok(())
    }

    /// Whether a write failed and writes are refused until the disk takes
    /// one again.
    pub fn failing(&self) -> bool {
        self.failing
    }

    /// Since when written records wait for a sync (monotonic ms).
    pub fn unsynced_since_ms(&self) -> Option<u64> {
        self.unsynced_since_ms
    }

    /// When [`Journal::tick`] is next due, if it has work on a timer: a
    /// periodic sync, a compaction step, a retry of a failed disk.
    pub fn tick_in_ms(&self, now_ms: u64) -> Option<u64> {
        let sync = match (self.settings.fsync, self.unsynced_since_ms) {
            (Fsync::Periodic { interval_ms }, Some(_)) => {
                Some((self.last_sync_ms + interval_ms).saturating_sub(now_ms))
            }
            _ => None,
        };
        let compaction = self.compaction.as_ref().map(|c| c.next_step_ms.saturating_sub(now_ms));
        let retry = self.failing.then(|| self.refuse_until_ms.saturating_sub(now_ms).max(1));
        [sync, compaction, retry].into_iter().flatten().min()
    }

    /// On the shard's timer: a periodic sync when due, a retry of a failed
    /// disk, and compaction (started when due, one step when due).
    pub fn tick(&mut self, now_ms: u64, store: &Store, floor: Stamp) {
        if let Fsync::Periodic { interval_ms } = self.settings.fsync
            && self.unsynced_since_ms.is_some()
            && now_ms >= self.last_sync_ms + interval_ms
            && let Err(error) = self.sync(now_ms)
        {
            self.failed(error);
        }
        if self.failing && now_ms >= self.refuse_until_ms {
            self.retry(now_ms);
        }
        if self.compaction.is_none() && !self.failing && now_ms >= self.compact_after_ms && self.compaction_due() {
            self.start_compaction(now_ms, floor);
        }
        if self.compaction.as_ref().is_some_and(|c| now_ms >= c.next_step_ms) {
            self.compaction_step(store, now_ms);
        }
    }

    /// After a failed write: a fresh segment, if the disk takes one.
    fn retry(&mut self, now_ms: u64) {
        let next = self.segment.seq + 1;
        match self.start_segment(next) {
            Ok(()) => {
                self.failing = false;
                self.refuse_until_ms = 0;
                crate::log!("disk_back", "the data directory takes writes again (segment {next})");
            }
            Err(_) => self.refuse_until_ms = now_ms + RETRY_MS,
        }
    }

    fn compaction_due(&self) -> bool {
        let log: u64 = self.segments.values().sum();
        let snapshot = self.snapshot.map_or(0, |(_, bytes)| bytes);
        log >= self.settings.compact_min_bytes && log >= snapshot
    }

    /// Closes the segment (the drain's group written to it, and synced)
    /// and starts the next, which is where changes after this go. A failure
    /// to close it is a failed commit (the group may be on disk or not); a
    /// failure to start the next leaves the closed one current: no room.
    fn roll(&mut self, now_ms: u64) -> Result<(), Rolled> {
        if !self.group.is_empty() {
            if let Err(error) = self.disk.append(&self.segment.name, &self.group) {
                return Err(Rolled::Failed(error));
            }
            let bytes = std::mem::take(&mut self.group).len() as u64;
            self.wrote(bytes, now_ms);
        }
        self.sync(now_ms).map_err(Rolled::Failed)?;
        self.start_segment(self.segment.seq + 1).map_err(Rolled::NoRoom)
    }

    fn start_compaction(&mut self, now_ms: u64, floor: Stamp) {
        match self.roll(now_ms) {
            Ok(()) => {}
            Err(Rolled::Failed(error)) => return drop(self.failed(error)),
            Err(Rolled::NoRoom(error)) => return self.compaction_failed(&error, now_ms),
        }
        let started = (|| {
            let seq = self.segment.seq;
            let name = snapshot_name(self.settings.shard, self.settings.shards, seq) + PARTIAL_SUFFIX;
            self.disk.create(&name)?;
            let mut buffer = Vec::with_capacity(SNAPSHOT_BUFFER_BYTES);
            self.header(FileKind::Snapshot, seq).encode_into(&mut buffer);
            Change::Wipe { floor }.encode_into(&mut buffer);
            Ok(Compaction {
                seq,
                name,
                next_bucket: 0,
                records: 0,
                bytes: 0,
                buffer,
                next_step_ms: now_ms,
            })
        })();
        match started {
            Ok(compaction) => {
                if crate::planted!(self.ctx, compaction_deletes_log_early) {
                    self.remove_before(compaction.seq, Covered::BySnapshot);
                }
                self.compaction = Some(compaction);
            }
            Err(error) => self.compaction_failed(&error, now_ms),
        }
    }

    /// A snapshot that could not be written (no room, most likely): the
    /// files it was to replace all stay, writes go on, and it is tried
    /// again later.
    fn compaction_failed(&mut self, error: &io::Error, now_ms: u64) {
        crate::log!(
            "compaction_failed",
            "a snapshot could not be written ({error}); trying again later"
        );
        self.compact_after_ms = now_ms + COMPACT_RETRY_MS;
    }

    /// Copies buckets of the store into the snapshot, about
    /// [`SNAPSHOT_STEP_BYTES`] at a time; finishes it after the last one.
    fn compaction_step(&mut self, store: &Store, now_ms: u64) {
        let Some(mut compaction) = self.compaction.take() else {
            return;
        };
        compaction.next_step_ms = now_ms + SNAPSHOT_STEP_EVERY_MS;
        let mut stepped = 0;
        let mut result = Ok(());
        while compaction.next_bucket < BUCKETS && stepped < SNAPSHOT_STEP_BYTES && result.is_ok() {
            let bucket = compaction.next_bucket as BucketId;
            compaction.next_bucket += 1;
            for record in store.bucket_records(bucket) {
                change_of(record).encode_into(&mut compaction.buffer);
                compaction.records += 1;
                if compaction.buffer.len() >= SNAPSHOT_BUFFER_BYTES {
                    stepped += compaction.buffer.len();
                    result = self.write_snapshot_buffer(&mut compaction);
                }
            }
        }
        if result.is_ok() && compaction.next_bucket == BUCKETS {
            result = self.finish_compaction(&mut compaction);
            if result.is_ok() {
                return;
            }
        }
        match result {
            Ok(()) => self.compaction = Some(compaction),
            Err(error) => {
                let _ = self.disk.remove(&compaction.name);
                self.compaction_failed(&error, now_ms);
            }
        }
    }

    fn write_snapshot_buffer(&mut self, compaction: &mut Compaction) -> io::Result<()> {
        self.disk.append(&compaction.name, &compaction.buffer)?;
        compaction.bytes += compaction.buffer.len() as u64;
        compaction.buffer.clear();
        Ok(())
    }

    /// The snapshot's last record, synced, renamed and its directory synced;
    /// only then the files it covers are removed.
    fn finish_compaction(&mut self, compaction: &mut Compaction) -> io::Result<()> {
        Change::End {
            records: compaction.records,
        }
        .encode_into(&mut compaction.buffer);
        self.write_snapshot_buffer(compaction)?;
        self.disk.sync(&compaction.name)?;
        let name = snapshot_name(self.settings.shard, self.settings.shards, compaction.seq);
        self.disk.rename(&compaction.name, &name)?;
        self.disk.sync_dir()?;
        let old = self.snapshot.replace((compaction.seq, compaction.bytes));
        self.count_files(1, compaction.bytes as i64);
        if let Some((seq, bytes)) = old {
            self.disk
                .remove(&snapshot_name(self.settings.shard, self.settings.shards, seq))?;
            self.count_files(-1, -(bytes as i64));
        }
        self.remove_before(compaction.seq, Covered::BySnapshot);
        self.ctx.counters.compactions.fetch_add(1, Ordering::Relaxed);
        crate::log!(
            "compaction",
            "snapshot of {} records ({} bytes) written; segments before {} removed",
            compaction.records,
            compaction.bytes,
            compaction.seq
        );
        Ok(())
    }

    /// Removes the segments numbered before `seq` and syncs the directory.
    fn remove_before(&mut self, seq: u64, covered: Covered) {
        let planted = crate::planted!(self.ctx, compaction_deletes_log_early);
        // What the segments hold is elsewhere: in the snapshot numbered
        // `seq`, or made void by the WIPEOUT segment `seq` begins with.
        crate::invariant!(
            planted
                || seq <= self.segment.seq
                    && match covered {
                        Covered::BySnapshot => self.snapshot.is_some_and(|(snapshot, _)| snapshot == seq),
                        Covered::ByWipe => {
                            seq == self.segment.seq && self.snapshot.is_none() && self.unsynced_since_ms.is_none()
                        }
                    },
            "segments before {seq} removed ({covered:?}) with the snapshot at {:?}, segment {} current",
            self.snapshot.map(|(snapshot, _)| snapshot),
            self.segment.seq
        );
        let old: Vec<(u64, u64)> = self.segments.range(..seq).map(|(&s, &b)| (s, b)).collect();
        for (old_seq, bytes) in old {
            if self
                .disk
                .remove(&log_name(self.settings.shard, self.settings.shards, old_seq))
                .is_ok()
            {
                self.segments.remove(&old_seq);
                self.count_files(-1, -(bytes as i64));
            }
        }
        let _ = self.disk.sync_dir();
    }

    /// WIPEOUT, durable before it returns: a new segment starts with the
    /// wipe, synced; every older file of this shard is then removed (replay
    /// would drop what they hold anyway). A compaction under way stops.
    pub fn wipe(&mut self, floor: Stamp, now_ms: u64) -> io::Result<()> {
        if let Some(compaction) = self.compaction.take() {
            let _ = self.disk.remove(&compaction.name);
        }
        match self.roll(now_ms) {
            Ok(()) => {}
            Err(Rolled::NoRoom(error)) => return Err(error),
            Err(Rolled::Failed(error)) => {
                let message = error.to_string();
                self.failed(error);
                return Err(io::Error::other(message));
            }
        }
        let mut wipe = Vec::new();
        Change::Wipe { floor }.encode_into(&mut wipe);
        self.disk.append(&self.segment.name, &wipe)?;
        self.wrote(wipe.len() as u64, now_ms);
        self.sync(now_ms)?;
        if let Some((seq, bytes)) = self.snapshot.take() {
            self.disk
                .remove(&snapshot_name(self.settings.shard, self.settings.shards, seq))?;
            self.count_files(-1, -(bytes as i64));
        }
        self.remove_before(self.segment.seq, Covered::ByWipe);
        Ok(())
    }

    /// Whether a compaction is under way (the shard then wants its timer).
    pub fn compacting(&self) -> bool {
        self.compaction.is_some()
    }

    /// A whole snapshot now, every step at once (at start, before the
    /// node serves: files of another shard layout must be covered before
    /// they are removed).
    pub fn snapshot_now(&mut self, store: &Store, floor: Stamp, now_ms: u64) -> io::Result<()> {
        if self.compaction.is_none() {
            self.start_compaction(now_ms, floor);
        }
        while let Some(compaction) = &mut self.compaction {
            compaction.next_step_ms = now_ms;
            self.compaction_step(store, now_ms);
            if self.failing {
                return Err(io::Error::other("the snapshot could not be written"));
            }
        }
        Ok(())
    }
}

/// A stored record as the change that would store it.
fn change_of(record: &Record) -> Change<'_> {
    if record.is_tombstone() {
        Change::Tombstone {
            key: record.key(),
            stamp: record.stamp(),
        }
    } else {
        Change::Put {
            key: record.key(),
            value: record.value(),
            version: record.version(),
            stamp: record.stamp(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::durability::disk::MemoryDisk;
    use crate::node::durability::recovery::{self, Replay};

    const CLUSTER: [u8; CLUSTER_ID_BYTES] = [3; CLUSTER_ID_BYTES];

    fn journal(disk: &Arc<MemoryDisk>, fsync: Fsync, segment_bytes: u64) -> Journal {
        let settings = JournalSettings {
            fsync,
            cluster: CLUSTER,
            shard: 0,
            shards: 1,
            segment_bytes,
            compact_min_bytes: u64::MAX,
        };
        let disk: Arc<dyn NodeDisk> = disk.clone();
        Journal::open(disk, settings, Arc::new(NodeContext::alone()), 1, Default::default()).unwrap()
    }

    fn put(key: &[u8], ms: u64) -> Change<'_> {
        Change::Put {
            key,
            value: b"value",
            version: 0,
            stamp: Stamp::from_millis(ms),
        }
    }

    fn empty_store() -> Store {
        Store::new(Arc::new(crate::storage::memory::MemoryBudget::new(1 << 20)))
    }

    /// Admits, records and commits one change as a drain does.
    fn write(journal: &mut Journal, change: &Change<'_>, now_ms: u64) -> bool {
        if !journal.admit(change.record_bytes(), now_ms) {
            return false;
        }
        journal.record(change);
        journal.commit(now_ms).is_ok()
    }

    /// The keys of the Puts recovery reads back.
    fn recovered_keys(disk: &MemoryDisk) -> Vec<Vec<u8>> {
        struct Keys(Vec<Vec<u8>>);
        impl Replay for Keys {
            fn change(&mut self, change: &Change<'_>, _: u16, _: u16) {
                if let Change::Put { key, .. } = change {
                    self.0.push(key.to_vec());
                }
            }
        }
        let mut keys = Keys(Vec::new());
        recovery::recover(disk, CLUSTER, 1, &mut keys, &NodeContext::alone()).unwrap();
        keys.0
    }

    #[test]
    fn what_is_committed_is_read_back_in_order_across_segments() {
        let disk = Arc::new(MemoryDisk::default());
        let mut journal = journal(&disk, Fsync::Never, 256);
        let keys: Vec<Vec<u8>> = (0..40u32).map(|i| format!("key-{i}").into_bytes()).collect();
        for (i, key) in keys.iter().enumerate() {
            assert!(write(&mut journal, &put(key, i as u64 + 1), 0));
        }
        assert!(disk.names().len() > 3, "small segments roll: {:?}", disk.names());
        assert_eq!(recovered_keys(&disk), keys);
    }

    #[test]
    fn a_change_larger_than_a_segment_goes_in_one_of_its_own_with_room_reserved_for_it() {
        let disk = Arc::new(MemoryDisk::default());
        let mut journal = journal(&disk, Fsync::Never, 256);
        let big = Change::Put {
            key: b"big",
            value: &[7; 1_000],
            version: 0,
            stamp: Stamp::from_millis(2),
        };
        let small: Vec<Vec<u8>> = (0..4u8).map(|i| vec![b's', i]).collect();
        for key in &small {
            assert!(write(&mut journal, &put(key, 1), 0));
        }
        assert!(write(&mut journal, &big, 0));
        assert!(write(&mut journal, &put(b"after", 3), 0));
        // Each write was reserved before it was made (an invariant checks
        // it as the bytes are written): the big change's too, though a
        // new segment starts with less room than it needs.
        assert_eq!(journal.segment.reserved, 256, "the segment after it");
        assert_eq!(disk.names().len(), 3, "{:?}", disk.names());
        let expected: Vec<Vec<u8>> = small.into_iter().chain([b"big".to_vec(), b"after".to_vec()]).collect();
        assert_eq!(recovered_keys(&disk), expected);
    }

    #[test]
    fn a_compaction_replaces_the_segments_it_covers_with_a_snapshot() {
        let disk = Arc::new(MemoryDisk::default());
        let mut journal = journal(&disk, Fsync::Never, 256);
        journal.settings.compact_min_bytes = 1_000;
        let mut store = empty_store();
        let keys: Vec<Vec<u8>> = (0..40u32).map(|i| format!("key-{i}").into_bytes()).collect();
        for (i, key) in keys.iter().enumerate() {
            let change = put(key, i as u64 + 1);
            assert!(write(&mut journal, &change, 0));
            let written = crate::storage::store::Write::Value {
                value: b"value",
                version: 0,
            };
            store.apply(key, written, Stamp::from_millis(i as u64 + 1));
        }
        let logs_before = disk.names().len();
        let mut now = 0;
        journal.tick(now, &store, Stamp::default());
        while journal.compacting() && now < 10_000 {
            now += SNAPSHOT_STEP_EVERY_MS;
            journal.tick(now, &store, Stamp::default());
        }
        let names = disk.names();
        assert!(names.iter().any(|name| name.starts_with("snap")), "{names:?}");
        assert!(names.len() < logs_before, "{logs_before} files before, now {names:?}");
        let mut recovered = recovered_keys(&disk);
        recovered.sort();
        let mut expected = keys.clone();
        expected.sort();
        assert_eq!(recovered, expected);
    }

    #[test]
    fn under_fsync_always_a_commit_returns_with_its_records_synced() {
        let disk = Arc::new(MemoryDisk::default());
        let mut journal = journal(&disk, Fsync::Always, 1 << 20);
        assert!(write(&mut journal, &put(b"k", 1), 0));
        assert_eq!(disk.unsynced(&log_name(0, 1, 1)), 0);
        assert_eq!(journal.unsynced_since_ms(), None);
    }

    #[test]
    fn under_a_periodic_fsync_records_wait_for_the_tick_that_is_due() {
        let disk = Arc::new(MemoryDisk::default());
        let mut journal = journal(&disk, Fsync::Periodic { interval_ms: 100 }, 1 << 20);
        assert!(write(&mut journal, &put(b"k", 1), 10));
        let name = log_name(0, 1, 1);
        assert!(disk.unsynced(&name) > 0);
        assert_eq!(journal.tick_in_ms(10), Some(90));
        let store = empty_store();
        journal.tick(50, &store, Stamp::default());
        assert!(disk.unsynced(&name) > 0, "not due yet");
        journal.tick(100, &store, Stamp::default());
        assert_eq!(disk.unsynced(&name), 0);
    }

    #[test]
    fn a_disk_that_refuses_room_refuses_the_change_before_it_is_made_and_is_asked_again_later() {
        let disk = Arc::new(MemoryDisk::default());
        let mut journal = journal(&disk, Fsync::Never, 1 << 30);
        let big = Change::Put {
            key: b"k",
            value: &[0; 9_000],
            version: 0,
            stamp: Stamp::from_millis(1),
        };
        for i in 0..200u64 {
            assert!(write(&mut journal, &big, i), "room for write {i}");
        }
        disk.refuse_room.store(true, Ordering::Relaxed);
        let mut refused_at = None;
        for i in 0..400u64 {
            if !write(&mut journal, &big, 1_000) {
                refused_at = Some(i);
                break;
            }
        }
        assert!(refused_at.is_some(), "the reservation ran out and was refused");
        disk.refuse_room.store(false, Ordering::Relaxed);
        assert!(
            !journal.admit(big.record_bytes(), 1_000 + RETRY_MS - 1),
            "not asked again at once"
        );
        assert!(journal.admit(big.record_bytes(), 1_000 + RETRY_MS));
    }

    #[test]
    fn a_failed_write_fails_the_commit_and_refuses_changes_until_the_disk_takes_one() {
        let disk = Arc::new(MemoryDisk::default());
        let mut journal = journal(&disk, Fsync::Always, 1 << 20);
        assert!(write(&mut journal, &put(b"a", 1), 0));
        disk.fail_writes.store(true, Ordering::Relaxed);
        assert!(journal.admit(put(b"b", 2).record_bytes(), 0));
        journal.record(&put(b"b", 2));
        assert!(journal.commit(0).is_err());
        assert!(journal.failing());
        assert!(!journal.admit(put(b"c", 3).record_bytes(), 0));
        disk.fail_writes.store(false, Ordering::Relaxed);
        journal.tick(RETRY_MS, &empty_store(), Stamp::default());
        assert!(!journal.failing(), "the retry found the disk taking writes again");
        assert!(write(&mut journal, &put(b"c", 3), RETRY_MS));
        assert!(recovered_keys(&disk).contains(&b"c".to_vec()));
    }
}
