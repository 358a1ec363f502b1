//! What a node's logic asks of its data directory: a flat set of named
//! files, appended to, read back, made durable, renamed and removed. The
//! runtime backs it with a directory ([`crate::runtime::data_dir`]); the
//! simulator with a model in which what was written but not synced is
//! lost in a power loss. The node's logic owns this interface, as it owns
//! [`crate::node::context::NodeIo`]: a disk is I/O like a socket.

use std::io;

/// A node's data directory.
pub trait NodeDisk: Send + Sync {
    /// The names of the files in it.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Up to `buf.len()` bytes of `name` from `offset`; 0 at its end.
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// A new empty file (an old one of the same name is replaced).
    fn create(&self, name: &str) -> io::Result<()>;
    /// Appends to a file, all or an error.
    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Reserves room for a file to grow to `bytes` without changing what
    /// it holds, so that appends within it cannot fail for lack of space
    /// (`fallocate`): a full disk says so here, before anything is written.
    /// Where reserving is not supported it does nothing.
    fn reserve(&self, name: &str, bytes: u64) -> io::Result<()>;
    /// Makes what was appended to the file durable (`fdatasync`).
    fn sync(&self, name: &str) -> io::Result<()>;
    /// Renames a file, replacing one of the new name.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes the directory's entries durable (files created, renamed, removed).
    fn sync_dir(&self) -> io::Result<()>;
    /// Makes every open file durable: SHUTDOWN's last act.
    fn sync_all(&self) -> io::Result<()>;
    /// Bytes free for it on its file system, where that is known.
    fn free_bytes(&self) -> Option<u64> {
        None
    }
}

/// A data directory in memory, for the tests of the parts that write and
/// read one: files by name, with how much of each a sync made durable, and
/// switches that make the disk refuse room or fail writes.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryDisk {
    /// Each file's bytes, and how many of them are synced.
    files: parking_lot::Mutex<std::collections::BTreeMap<String, (Vec<u8>, usize)>>,
    pub refuse_room: std::sync::atomic::AtomicBool,
    pub fail_writes: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl MemoryDisk {
    pub fn put(&self, name: &str, bytes: Vec<u8>) {
        let synced = bytes.len();
        self.files.lock().insert(name.to_string(), (bytes, synced));
    }
    pub fn names(&self) -> Vec<String> {
        self.files.lock().keys().cloned().collect()
    }
    /// Bytes of `name` not yet synced.
    pub fn unsynced(&self, name: &str) -> usize {
        self.files
            .lock()
            .get(name)
            .map_or(0, |(bytes, synced)| bytes.len() - synced)
    }
    fn off(switch: &std::sync::atomic::AtomicBool) -> io::Result<()> {
        match switch.load(std::sync::atomic::Ordering::Relaxed) {
            true => Err(io::Error::other("refused by the test")),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
impl NodeDisk for MemoryDisk {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.names())
    }
    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let files = self.files.lock();
        let (file, _) = files
            .get(name)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let from = usize::try_from(offset).unwrap_or(usize::MAX).min(file.len());
        let n = buf.len().min(file.len() - from);
        buf[..n].copy_from_slice(&file[from..from + n]);
        Ok(n)
    }
    fn create(&self, name: &str) -> io::Result<()> {
        Self::off(&self.fail_writes)?;
        self.files.lock().insert(name.to_string(), (Vec::new(), 0));
        Ok(())
    }
    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        Self::off(&self.fail_writes)?;
        let mut files = self.files.lock();
        let file = files
            .get_mut(name)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        file.0.extend_from_slice(bytes);
        Ok(())
    }
    fn reserve(&self, _: &str, _: u64) -> io::Result<()> {
        Self::off(&self.refuse_room)
    }
    fn sync(&self, name: &str) -> io::Result<()> {
        Self::off(&self.fail_writes)?;
        if let Some((bytes, synced)) = self.files.lock().get_mut(name) {
            *synced = bytes.len();
        }
        Ok(())
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut files = self.files.lock();
        let file = files
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        files.insert(to.to_string(), file);
        Ok(())
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.files.lock().remove(name);
        Ok(())
    }
    fn sync_dir(&self) -> io::Result<()> {
        Ok(())
    }
    fn sync_all(&self) -> io::Result<()> {
        Ok(())
    }
}
