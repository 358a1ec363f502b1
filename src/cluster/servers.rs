//! The servers file: the cluster's universe, one `host:port` per line.
//! Blank lines and `#` comments are skipped; a malformed or duplicate line is
//! an error naming the line.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

/// Largest cluster the ring, stamps and membership are sized for.
pub const NODES_MAX: usize = 150;
const _: () = assert!(NODES_MAX <= crate::storage::stamp::NODES_MAX);
/// Bytes of a node's name (`host:port`): a universe of the most members
/// still fits one datagram.
pub const NAME_BYTES_MAX: usize = 200;

/// One node of the servers file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerEntry {
    /// As written in the file (what operators and logs call the node).
    pub name: String,
    pub addr: SocketAddr,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ServersError(pub String);

impl fmt::Display for ServersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServersError {}

/// Resolves `host:port` to one address, preferring IPv4.
pub fn resolve(name: &str) -> Option<SocketAddr> {
    let addrs: Vec<SocketAddr> = name.to_socket_addrs().ok()?.collect();
    addrs.iter().find(|addr| addr.is_ipv4()).or(addrs.first()).copied()
}

pub fn parse(text: &str, origin: &str) -> Result<Vec<ServerEntry>, ServersError> {
    let mut entries: Vec<ServerEntry> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let where_ = format!("{origin} line {}", index + 1);
        let valid_shape = line.len() <= NAME_BYTES_MAX
            && line
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !valid_shape {
            return Err(ServersError(format!("{where_}: expected host:port, found {line:?}")));
        }
        let Some(addr) = resolve(line) else {
            return Err(ServersError(format!("{where_}: cannot resolve {line:?}")));
        };
        if let Some(first) = entries.iter().position(|entry| entry.addr == addr) {
            return Err(ServersError(format!(
                "{where_}: {line:?} duplicates {:?} (entry {})",
                entries[first].name,
                first + 1
            )));
        }
        entries.push(ServerEntry {
            name: line.to_string(),
            addr,
        });
    }
    if entries.is_empty() {
        return Err(ServersError(format!("{origin}: no servers listed")));
    }
    if entries.len() > NODES_MAX {
        return Err(ServersError(format!(
            "{origin}: {} servers, at most {NODES_MAX} supported",
            entries.len()
        )));
    }
    Ok(entries)
}

pub fn load(path: &Path) -> Result<Vec<ServerEntry>, ServersError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| ServersError(format!("cannot read servers file {}: {error}", path.display())))?;
    parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_blank_and_comment_lines() {
        let entries = parse("# cluster\n127.0.0.1:4000\n\n  127.0.0.1:4001  \n", "f").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].addr, "127.0.0.1:4001".parse().unwrap());
    }

    #[test]
    fn rejects_malformed_and_duplicate_lines_naming_them() {
        let error = parse("127.0.0.1:4000\nnonsense\n", "f").unwrap_err();
        assert!(error.0.contains("f line 2"), "{error}");
        let error = parse("127.0.0.1:4000\n127.0.0.1:0\n", "f").unwrap_err();
        assert!(error.0.contains("line 2"), "{error}");
        let error = parse("127.0.0.1:4000\nlocalhost:4000\n", "f").unwrap_err();
        assert!(error.0.contains("line 2") && error.0.contains("duplicates"), "{error}");
        assert!(parse("\n# only comments\n", "f").is_err());
    }
}
