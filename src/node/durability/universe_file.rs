//! The universe a node holds, kept in its data directory so that a restart
//! starts from it rather than from a servers file that may be stale.
//! Written whole beside the old one, synced, then renamed over it: a crash
//! leaves the old file or the new, never a mix. Self-checking: a file that
//! fails its checksum or does not decode is ignored (the node falls back to
//! its servers file, and peers pass it the current universe).

use crate::cluster::universe::Universe;
use crate::node::durability::disk::NodeDisk;
use std::io;

/// The file's name in the data directory.
pub const FILE: &str = "universe";
const PARTIAL: &str = "universe.partial";
const MAGIC: &[u8] = b"dynakv universe 1\n";
/// Bytes read at most (the largest universe is about 52 KB).
const FILE_BYTES_MAX: usize = 128 << 10;

/// Writes `universe` durably, replacing the one kept before.
pub fn save(disk: &dyn NodeDisk, universe: &Universe) -> io::Result<()> {
    let body = universe.encode();
    let mut bytes = Vec::with_capacity(MAGIC.len() + body.len() + 8);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    disk.create(PARTIAL)?;
    disk.append(PARTIAL, &bytes)?;
    disk.sync(PARTIAL)?;
    disk.rename(PARTIAL, FILE)?;
    disk.sync_dir()
}

/// The universe kept in the data directory, if there is a whole one.
pub fn load(disk: &dyn NodeDisk) -> Option<Universe> {
    let mut bytes = vec![0u8; FILE_BYTES_MAX];
    let mut read = 0;
    while read < bytes.len() {
        match disk.read_at(FILE, read as u64, &mut bytes[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(_) => return None,
        }
    }
    parse(&bytes[..read])
}

/// The universe in a file's bytes, if they hold a whole one.
pub fn parse(bytes: &[u8]) -> Option<Universe> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (len, rest) = rest.split_at_checked(4)?;
    let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
    let (body, crc) = rest.split_at_checked(len)?;
    if crc.len() != 4 || crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    Universe::decode(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_universe_reads_back_and_any_damage_reads_as_none() {
        let names: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", 4000 + i)).collect();
        let universe = Universe::from_servers(&names)
            .next(&names[1..], 3, true, &|_| false)
            .unwrap();
        let body = universe.encode();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        assert_eq!(parse(&bytes), Some(universe));
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert_eq!(parse(&damaged), None, "byte {at}");
            assert_eq!(parse(&bytes[..at]), None, "cut at {at}");
        }
    }
}
