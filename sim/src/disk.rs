//! A node's disk in the simulator: the [`NodeDisk`] a data directory is,
//! with what a real one keeps and loses.
//!
//! - What is appended to a file is durable once the file is synced;
//!   directory entries (files created, renamed, removed) once the
//!   directory is.
//! - A process crash loses nothing written: the page cache outlives the
//!   process. A **power loss** keeps what was synced, and of what was not,
//!   a prefix cut at a random byte, in some losses with its last bytes
//!   garbled (a sector written half); entries not synced go back to what
//!   was synced.
//! - A disk can be made full (reservations beyond a size refused) or
//!   failing (every append refused), and can count its operations so that
//!   a test cuts the power after any one of them, counted from now or from
//!   the start of the next compaction.

use dynakv::node::durability::disk::NodeDisk;
use dynakv::node::durability::journal::PARTIAL_SUFFIX;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;

#[derive(Clone, Default)]
struct File {
    data: Vec<u8>,
    /// Bytes of `data` that are durable.
    synced: usize,
    /// Bytes reserved for it (at least its length).
    reserved: u64,
}

#[derive(Default)]
struct State {
    /// By inode; ordered, so that a power loss tears the same files for
    /// the same seed.
    files: BTreeMap<u64, File>,
    /// Names as the system sees them now, and as they are durable.
    names: BTreeMap<String, u64>,
    durable_names: BTreeMap<String, u64>,
    next_id: u64,
    /// Reservations of all files together beyond this are refused.
    capacity: Option<u64>,
    /// Every append fails (an I/O error).
    failing: bool,
    /// Operations that change something, counted; at this one, the power
    /// goes (see [`SimDisk::lose_power_after`]).
    operations: u64,
    power_cut_at: Option<u64>,
    /// The power goes this many operations after the next snapshot file is
    /// created (see [`SimDisk::lose_power_in_next_compaction`]).
    power_cut_into_compaction: Option<u64>,
    powered: bool,
}

/// A simulated data directory.
pub struct SimDisk {
    state: Mutex<State>,
}

impl Default for SimDisk {
    fn default() -> SimDisk {
        SimDisk {
            state: Mutex::new(State {
                powered: true,
                ..State::default()
            }),
        }
    }
}

fn gone() -> io::Error {
    io::Error::other("the power is off")
}

impl SimDisk {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A power loss: unsynced data and entries go, the last unsynced bytes
    /// of each file torn (and sometimes garbled), drawn from `seed`.
    pub fn lose_power(&self, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut state = self.state();
        state.names = state.durable_names.clone();
        let live: Vec<u64> = state.names.values().copied().collect();
        state.files.retain(|id, _| live.contains(id));
        for file in state.files.values_mut() {
            let unsynced = file.data.len() - file.synced;
            let kept = file.synced + rng.random_range(0..=unsynced);
            file.data.truncate(kept);
            if kept > file.synced && rng.random_bool(0.5) {
                // A sector written half: garbage anywhere in what was kept.
                let at = rng.random_range(file.synced..kept);
                let garbled = rng.random_range(1..=(kept - at).min(64));
                for byte in &mut file.data[at..at + garbled] {
                    *byte = rng.random();
                }
            }
            file.synced = file.data.len();
        }
        state.powered = true;
        state.power_cut_at = None;
        state.power_cut_into_compaction = None;
    }

    /// Cuts the power right after the `operations`-th changing operation
    /// from now: later ones fail until [`SimDisk::lose_power`].
    pub fn lose_power_after(&self, operations: u64) {
        let mut state = self.state();
        state.power_cut_at = Some(state.operations + operations);
        state.power_cut_into_compaction = None;
    }

    /// Cuts the power right after the `operations`-th changing operation
    /// from the creation of the next snapshot file on (the first step of a
    /// compaction): a compaction is a few operations of a run's thousands,
    /// so power losses at random operations rarely strike inside one.
    pub fn lose_power_in_next_compaction(&self, operations: u64) {
        let mut state = self.state();
        state.power_cut_at = None;
        state.power_cut_into_compaction = Some(operations);
    }

    /// Changing operations so far.
    pub fn operations(&self) -> u64 {
        self.state().operations
    }

    /// Whether the power is on (it goes off after [`SimDisk::lose_power_after`]).
    pub fn powered(&self) -> bool {
        self.state().powered
    }

    /// Reservations beyond `bytes` in all are refused (None: no limit).
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.state().capacity = bytes;
    }

    /// Every append fails while this is set.
    pub fn set_failing(&self, failing: bool) {
        self.state().failing = failing;
    }

    /// Bytes every file holds now.
    pub fn bytes(&self) -> u64 {
        let state = self.state();
        state
            .names
            .values()
            .filter_map(|id| state.files.get(id))
            .map(|f| f.data.len() as u64)
            .sum()
    }

    /// A copy of the whole disk as it is (for a test that starts another
    /// node from it).
    pub fn contents(&self) -> Vec<(String, Vec<u8>)> {
        let state = self.state();
        (state.names.iter())
            .filter_map(|(name, id)| Some((name.clone(), state.files.get(id)?.data.clone())))
            .collect()
    }

    /// A disk holding these files, all durable.
    pub fn with_files(files: &[(String, Vec<u8>)]) -> SimDisk {
        let disk = SimDisk::default();
        {
            let mut state = disk.state();
            for (name, data) in files {
                let id = state.next_id;
                state.next_id += 1;
                let file = File {
                    data: data.clone(),
                    synced: data.len(),
                    reserved: data.len() as u64,
                };
                state.files.insert(id, file);
                state.names.insert(name.clone(), id);
            }
            state.durable_names = state.names.clone();
        }
        disk
    }

    /// One changing operation: refused without power, and the power goes
    /// after the one it was to go after.
    fn operate(&self) -> io::Result<std::sync::MutexGuard<'_, State>> {
        let mut state = self.state();
        if !state.powered {
            return Err(gone());
        }
        state.operations += 1;
        if state.power_cut_at.is_some_and(|at| state.operations > at) {
            state.powered = false;
            return Err(gone());
        }
        Ok(state)
    }

    fn file_mut<'a>(state: &'a mut State, name: &str) -> io::Result<&'a mut File> {
        let id = *state
            .names
            .get(name)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        state
            .files
            .get_mut(&id)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

impl NodeDisk for SimDisk {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.state().names.keys().cloned().collect())
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.state();
        let file = SimDisk::file_mut(&mut state, name)?;
        let from = (offset as usize).min(file.data.len());
        let n = buf.len().min(file.data.len() - from);
        buf[..n].copy_from_slice(&file.data[from..from + n]);
        Ok(n)
    }

    fn create(&self, name: &str) -> io::Result<()> {
        let mut state = self.operate()?;
        if name.ends_with(PARTIAL_SUFFIX)
            && let Some(operations) = state.power_cut_into_compaction.take()
        {
            state.power_cut_at = Some(state.operations + operations);
        }
        let id = state.next_id;
        state.next_id += 1;
        state.files.insert(id, File::default());
        state.names.insert(name.to_string(), id);
        Ok(())
    }

    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.operate()?;
        if state.failing {
            return Err(io::Error::other("simulated I/O error"));
        }
        let used: u64 = state.files.values().map(|f| f.reserved.max(f.data.len() as u64)).sum();
        let capacity = state.capacity;
        let file = SimDisk::file_mut(&mut state, name)?;
        let grows = (file.data.len() + bytes.len()) as u64 > file.reserved;
        if grows && capacity.is_some_and(|c| used + bytes.len() as u64 > c) {
            return Err(io::Error::other("no space left on device"));
        }
        file.data.extend_from_slice(bytes);
        Ok(())
    }

    fn reserve(&self, name: &str, bytes: u64) -> io::Result<()> {
        let mut state = self.operate()?;
        let used: u64 = state.files.values().map(|f| f.reserved.max(f.data.len() as u64)).sum();
        let capacity = state.capacity;
        let file = SimDisk::file_mut(&mut state, name)?;
        let more = bytes.saturating_sub(file.reserved.max(file.data.len() as u64));
        if capacity.is_some_and(|c| used + more > c) {
            return Err(io::Error::other("no space left on device"));
        }
        file.reserved = file.reserved.max(bytes);
        Ok(())
    }

    fn sync(&self, name: &str) -> io::Result<()> {
        let mut state = self.operate()?;
        let file = SimDisk::file_mut(&mut state, name)?;
        file.synced = file.data.len();
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = self.operate()?;
        let id = state
            .names
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        state.names.insert(to.to_string(), id);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.operate()?;
        state.names.remove(name);
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut state = self.operate()?;
        state.durable_names = state.names.clone();
        // A file no name refers to, durable or not, is gone for good.
        let named: Vec<u64> = state.names.values().copied().collect();
        state.files.retain(|id, _| named.contains(id));
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        let mut state = self.operate()?;
        for file in state.files.values_mut() {
            file.synced = file.data.len();
        }
        state.durable_names = state.names.clone();
        Ok(())
    }
}
