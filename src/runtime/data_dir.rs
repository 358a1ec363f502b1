//! A node's data directory on a real file system: the [`NodeDisk`] the
//! journal writes through, the lock that keeps a second process out, and
//! the identity file that says whose the directory is.
//!
//! - `identity` names the node (`host:port`) and the cluster (a hash of
//!   its secret, not the servers file, which an operator may edit). A
//!   directory of another node or another cluster is refused, naming both.
//! - `lock` is held with `flock` for the life of the process, and holds
//!   its pid: a second process on the directory is refused, naming it.
//! - Journal files are appended through `O_APPEND` handles kept open;
//!   room is reserved with `fallocate(FALLOC_FL_KEEP_SIZE)`, so a full
//!   file system refuses the reservation, before a write.

use crate::node::durability::disk::NodeDisk;
use crate::node::durability::log_format::CLUSTER_ID_BYTES;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const IDENTITY: &str = "identity";
const LOCK: &str = "lock";
const IDENTITY_FIRST_LINE: &str = "dynakv data directory, format 1";

/// A data directory, locked by this process.
pub struct FileDisk {
    dir: PathBuf,
    /// The directory itself, for syncing its entries.
    dir_handle: File,
    files: Mutex<HashMap<String, Arc<File>>>,
    /// Held (with its flock) for as long as the node runs.
    _lock: File,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FileDisk {
    /// Opens (creating it if need be) the data directory of node `node` of
    /// cluster `cluster`: locked, and its identity checked or written.
    pub fn open(dir: &Path, node: &str, cluster: [u8; CLUSTER_ID_BYTES]) -> Result<FileDisk, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))?;
        let lock = lock(dir)?;
        let dir_handle = File::open(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
        let disk = FileDisk {
            dir: dir.to_path_buf(),
            dir_handle,
            files: Mutex::new(HashMap::new()),
            _lock: lock,
        };
        disk.check_identity(node, cluster)?;
        Ok(disk)
    }

    /// Refuses a directory that says it is another node's or another
    /// cluster's; writes the identity of a new one.
    fn check_identity(&self, node: &str, cluster: [u8; CLUSTER_ID_BYTES]) -> Result<(), String> {
        let path = self.dir.join(IDENTITY);
        let cluster = hex(&cluster);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let field = |name: &str| {
                    (text.lines()).find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
                };
                if !text.starts_with(IDENTITY_FIRST_LINE) {
                    return Err(format!("{} is not a dynakv data directory's identity", path.display()));
                }
                if field("node") != Some(node) {
                    return Err(format!(
                        "{} belongs to node {}, not to {node}: give each node a directory of its own",
                        self.dir.display(),
                        field("node").unwrap_or("(none)")
                    ));
                }
                if field("cluster") != Some(cluster.as_str()) {
                    return Err(format!(
                        "{} belongs to another cluster (cluster {}; this node's secret is cluster {cluster}): was it started with another cluster secret?",
                        self.dir.display(),
                        field("cluster").unwrap_or("(none)")
                    ));
                }
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let journal = self
                    .list()
                    .map_err(|e| e.to_string())?
                    .iter()
                    .any(|n| crate::node::durability::journal::parse_name(n).is_some());
                if journal {
                    return Err(format!(
                        "{} holds journal files but no identity: not using it",
                        self.dir.display()
                    ));
                }
                let text = format!("{IDENTITY_FIRST_LINE}\nnode {node}\ncluster {cluster}\n");
                let partial = self.dir.join("identity.partial");
                std::fs::write(&partial, text)
                    .and_then(|()| File::open(&partial)?.sync_all())
                    .and_then(|()| std::fs::rename(&partial, &path))
                    .and_then(|()| self.dir_handle.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            }
            Err(error) => Err(format!("cannot read {}: {error}", path.display())),
        }
    }

    fn handle(&self, name: &str) -> io::Result<Arc<File>> {
        let mut files = self.files.lock();
        if let Some(file) = files.get(name) {
            return Ok(file.clone());
        }
        let file = Arc::new(OpenOptions::new().read(true).append(true).open(self.dir.join(name))?);
        files.insert(name.to_string(), file.clone());
        Ok(file)
    }
}

/// Locks the directory for this process, or says which process has it.
fn lock(dir: &Path) -> Result<File, String> {
    let path = dir.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a file descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(format!(
            "{} is in use by another dynakv process (pid {}): one node per data directory",
            dir.display(),
            holder.trim()
        ));
    }
    file.set_len(0)
        .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(file)
}

impl NodeDisk for FileDisk {
    fn free_bytes(&self) -> Option<u64> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(self.dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: an all-zero statvfs is a valid value of the plain C
        // struct; statvfs fills it from a valid, NUL-terminated path.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let done = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
        (done == 0).then(|| stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.handle(name)?.read_at(buf, offset)
    }

    fn create(&self, name: &str) -> io::Result<()> {
        let path = self.dir.join(name);
        File::create(&path)?;
        let file = Arc::new(OpenOptions::new().read(true).append(true).open(path)?);
        self.files.lock().insert(name.to_string(), file);
        Ok(())
    }

    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        (&*self.handle(name)?).write_all(bytes)
    }

    fn reserve(&self, name: &str, bytes: u64) -> io::Result<()> {
        let file = self.handle(name)?;
        let length = libc::off_t::try_from(bytes).map_err(|_| io::Error::other("reservation too large"))?;
        // SAFETY: fallocate on a descriptor kept open by `file`.
        if unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, length) } == 0 {
            return Ok(());
        }
        match io::Error::last_os_error() {
            // A file system that cannot reserve: appends may then fail, and
            // the journal answers those writes as failed.
            error if error.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
            error => Err(error),
        }
    }

    fn sync(&self, name: &str) -> io::Result<()> {
        self.handle(name)?.sync_data()
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))?;
        let mut files = self.files.lock();
        if let Some(file) = files.remove(from) {
            files.insert(to.to_string(), file);
        }
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.files.lock().remove(name);
        match std::fs::remove_file(self.dir.join(name)) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn sync_dir(&self) -> io::Result<()> {
        self.dir_handle.sync_all()
    }

    fn sync_all(&self) -> io::Result<()> {
        let files: Vec<Arc<File>> = self.files.lock().values().cloned().collect();
        for file in files {
            file.sync_data()?;
        }
        self.dir_handle.sync_all()
    }
}
