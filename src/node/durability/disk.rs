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
