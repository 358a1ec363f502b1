//! The cluster secret: the key of every node-to-node MAC. No public file
//! reveals it; it lives in a file readable only by its owner.
//!
//! Where a node and `dynakv ctl` find it, first match wins:
//! 1. `--cluster-secret-file FILE`;
//! 2. the `DYNAKV_CLUSTER_SECRET_FILE` environment variable;
//! 3. `SERVERS_FILE.secret`, beside the servers file (`servers.txt.secret`).
//!
//! When a node finds no file at the third place it creates one there (32
//! random bytes, mode 0600), so nodes started by hand on one host from one
//! servers file share a fresh secret with no set-up. The file appears
//! whole or not at all (written aside, then linked into place), and the
//! first node to link it wins: the others read that one. Nodes on other
//! hosts need a copy; `run/start` ships it. `ctl` never creates one.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The environment variable naming the secret file.
pub const ENV: &str = "DYNAKV_CLUSTER_SECRET_FILE";
/// Random bytes in a created secret.
const CREATED_BYTES: usize = 32;
/// A secret file shorter than this is refused (a typo, an empty file).
const FILE_BYTES_MIN: usize = 16;

/// Bytes of a cluster's identity (a hash of its secret), as every file of
/// a data directory names it (see `crate::node::durability::log_format`).
pub const CLUSTER_ID_BYTES: usize = 16;

/// The MAC key, derived from the secret file's bytes.
#[derive(Clone)]
pub struct Secret(pub [u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// From an operator's secret file (any bytes).
    pub fn from_bytes(material: &[u8]) -> Secret {
        Secret(blake3::derive_key("dynakv cluster secret v1", material))
    }

    /// The cluster's name in its nodes' data directories: derived from the
    /// secret (one cluster, one secret), revealing nothing of it.
    pub fn cluster_id(&self) -> [u8; CLUSTER_ID_BYTES] {
        let hash = blake3::keyed_hash(&self.0, b"dynakv data directory");
        let mut id = [0u8; CLUSTER_ID_BYTES];
        id.copy_from_slice(&hash.as_bytes()[..CLUSTER_ID_BYTES]);
        id
    }
}

/// Where the secret of a cluster is looked for, and whether it is the
/// default place beside the servers file.
pub fn location(explicit: Option<&Path>, servers: &Path) -> (PathBuf, bool) {
    if let Some(path) = explicit {
        return (path.to_path_buf(), false);
    }
    if let Some(path) = std::env::var_os(ENV).filter(|p| !p.is_empty()) {
        return (PathBuf::from(path), false);
    }
    let mut beside = servers.as_os_str().to_owned();
    beside.push(".secret");
    (PathBuf::from(beside), true)
}

/// Reads the secret at `path`.
pub fn load(path: &Path) -> Result<Secret, String> {
    let bytes =
        std::fs::read(path).map_err(|error| format!("cannot read the cluster secret {}: {error}", path.display()))?;
    if bytes.len() < FILE_BYTES_MIN {
        return Err(format!(
            "the cluster secret {} holds {} bytes; at least {FILE_BYTES_MIN} are needed",
            path.display(),
            bytes.len()
        ));
    }
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        crate::log!(
            "secret_readable_by_others",
            "the cluster secret {} can be read by others (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    Ok(Secret::from_bytes(&bytes))
}

/// Reads the secret at `path`, creating it first if it does not exist.
/// Returns the secret and whether this call created it.
pub fn load_or_create(path: &Path) -> Result<(Secret, bool), String> {
    if path.exists() {
        return load(path).map(|secret| (secret, false));
    }
    let mut bytes = [0u8; CREATED_BYTES];
    random_fill(&mut bytes)?;
    let aside = path.with_extension(format!("tmp-{:016x}", random_u64()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&aside)
        .and_then(|mut file| file.write_all(&bytes).and_then(|()| file.sync_all()));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&aside);
        return Err(format!("cannot create the cluster secret {}: {error}", path.display()));
    }
    // link(2) fails if the name exists: of nodes racing, exactly one wins.
    let linked = std::fs::hard_link(&aside, path);
    let _ = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => Ok((Secret::from_bytes(&bytes), true)),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => load(path).map(|secret| (secret, false)),
        Err(error) => Err(format!("cannot create the cluster secret {}: {error}", path.display())),
    }
}

/// Fills `bytes` from the kernel's random source.
pub fn random_fill(bytes: &mut [u8]) -> Result<(), String> {
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `bytes`.
        let got = unsafe { libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0) };
        if got < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("no random bytes from the kernel: {error}"));
            }
        } else {
            filled += got as usize;
        }
    }
    Ok(())
}

/// A random 64-bit number from the kernel.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Without the kernel's randomness, the clock still tells apart two
    // processes (an operator session id, never a key).
    if random_fill(&mut bytes).is_err() {
        return crate::storage::hash::fmix64(crate::storage::stamp::wall_millis() ^ u64::from(std::process::id()));
    }
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dynakv-secret-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn nodes_racing_to_create_the_secret_all_end_up_with_one() {
        let dir = scratch("race");
        let path = dir.join("servers.txt.secret");
        let secrets: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| load_or_create(&path).unwrap().0.0))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(secrets.iter().all(|s| *s == secrets[0]));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&path).unwrap().len(), CREATED_BYTES);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no file left aside");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_default_place_is_beside_the_servers_file_and_short_secrets_are_refused() {
        let (path, default) = location(None, Path::new("/etc/dynakv/servers.txt"));
        if std::env::var_os(ENV).is_none() {
            assert_eq!((path, default), (PathBuf::from("/etc/dynakv/servers.txt.secret"), true));
        }
        let dir = scratch("short");
        let short = dir.join("s");
        std::fs::write(&short, b"abc").unwrap();
        assert!(load(&short).unwrap_err().contains("at least 16"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
