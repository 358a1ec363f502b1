//! Node-to-node datagrams: their encoding and their authentication.
//!
//! An internal datagram is a protobuf message whose only field is number 100
//! (tag bytes `A2 06`), so it can never be mistaken for a client `Msg`
//! (fields 1-3, whose tags are single bytes below `0x80`). The field holds
//! `kind | sender | body | MAC`, the MAC being 16 bytes of keyed BLAKE3 over
//! everything before it under the cluster secret. A datagram that fails the
//! MAC is dropped and counted by the caller.

use crate::stamp::Stamp;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const TAG: [u8; 2] = [0xa2, 0x06];
/// The sender index operators sign with (not a node of the cluster).
pub const OPERATOR: u8 = u8::MAX;
const MAC_BYTES: usize = 16;

/// Whether a datagram is internal (it may still fail authentication).
pub fn is_internal(datagram: &[u8]) -> bool {
    datagram.starts_with(&TAG)
}

/// A write as replicas and transfers carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub version: i32,
    pub stamp: Stamp,
    pub tombstone: bool,
}

/// Heartbeat state of one node as gossiped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// Start time of the node's process (ms): a restart is a new incarnation.
    pub incarnation: u64,
    pub counter: u64,
    pub ready: bool,
    /// Re-syncing after a suspension: it missed writes, so it must not
    /// coordinate even when no replica of a bucket is ready.
    pub behind: bool,
    /// Its store is (nearly) at its memory limit: it takes no bucket it
    /// does not already own, and coordinators refuse writes that would grow
    /// its buckets (see [`crate::ring`]).
    pub full: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Internal {
    Gossip {
        heartbeats: Vec<Heartbeat>,
    },
    /// A client datagram sent on to the coordinator, which answers the client.
    Forward {
        hops: u8,
        client: SocketAddr,
        datagram: Vec<u8>,
    },
    Replicate {
        seq: u64,
        entry: Entry,
    },
    ReplicateAck {
        seq: u64,
        bucket: u16,
        /// The replica's store is full: the coordinator learns it at once,
        /// before gossip tells (see [`Heartbeat::full`]).
        full: bool,
    },
    /// "Send me every entry of this bucket."
    SyncRequest {
        request: u64,
        bucket: u16,
    },
    /// An operator command (`dynakv ctl`), answered with a client `Msg` whose
    /// value is text.
    Admin {
        message_id: Vec<u8>,
        command: u8,
        arg: Vec<u8>,
    },
    /// Anti-entropy: the sender's digests of buckets both nodes replicate,
    /// each with the sender's tombstone cutoff (see [`crate::agreement`]);
    /// the receiver exchanges the buckets whose digests differ.
    Digests {
        digests: Vec<(u16, u64, u32)>,
    },
    SyncChunk(Chunk),
}

/// One datagram of a bucket transfer: chunk `chunk` of `chunks`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The puller's request id ([`crate::shard::REPAIR_REQUEST`] for a push).
    pub request: u64,
    pub bucket: u16,
    pub chunk: u16,
    pub chunks: u16,
    pub entries: Vec<Entry>,
}

/// Cluster secret used as the MAC key.
#[derive(Clone)]
pub struct Secret(pub [u8; 32]);

impl Secret {
    /// From an operator's secret file (any bytes).
    pub fn from_bytes(material: &[u8]) -> Secret {
        Secret(blake3::derive_key("dynakv cluster secret v1", material))
    }
}

fn mac(secret: &Secret, bytes: &[u8]) -> [u8; MAC_BYTES] {
    let full = blake3::keyed_hash(&secret.0, bytes);
    full.as_bytes()[..MAC_BYTES].try_into().expect("16 of 32 bytes")
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    fn entry(&mut self, e: &Entry) {
        self.u64(e.stamp.0);
        self.bytes(&e.version.to_le_bytes());
        self.u8(u8::from(e.tombstone));
        self.u8(e.key.len() as u8);
        self.u16(e.value.len() as u16);
        self.bytes(&e.key);
        self.bytes(&e.value);
    }
    fn addr(&mut self, addr: SocketAddr) {
        match addr.ip() {
            IpAddr::V4(ip) => {
                self.u8(4);
                self.bytes(&ip.octets());
            }
            IpAddr::V6(ip) => {
                self.u8(6);
                self.bytes(&ip.octets());
            }
        }
        self.u16(addr.port());
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8")))
    }
    fn entry(&mut self) -> Option<Entry> {
        let stamp = Stamp(self.u64()?);
        let version = i32::from_le_bytes(self.take(4)?.try_into().ok()?);
        let tombstone = self.u8()? != 0;
        let key_len = usize::from(self.u8()?);
        let value_len = usize::from(self.u16()?);
        if key_len == 0 || key_len > crate::wire::KEY_BYTES_MAX || value_len > crate::wire::VALUE_BYTES_MAX {
            return None;
        }
        let key = self.take(key_len)?.to_vec();
        let value = self.take(value_len)?.to_vec();
        Some(Entry {
            key,
            value,
            version,
            stamp,
            tombstone,
        })
    }
    fn addr(&mut self) -> Option<SocketAddr> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(self.take(4)?).ok()?)),
            6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(self.take(16)?).ok()?)),
            _ => return None,
        };
        Some(SocketAddr::new(ip, self.u16()?))
    }
}

/// Bytes an entry takes inside a SyncChunk.
pub fn entry_wire_bytes(key_len: usize, value_len: usize) -> usize {
    16 + key_len + value_len
}

/// Encodes and authenticates a message from node `sender`.
pub fn encode(secret: &Secret, sender: u8, message: &Internal) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64));
    match message {
        Internal::Gossip { heartbeats } => {
            w.u8(1);
            w.u8(sender);
            w.u16(heartbeats.len() as u16);
            for h in heartbeats {
                w.u64(h.incarnation);
                w.u64(h.counter);
                w.u8(u8::from(h.ready) | u8::from(h.behind) << 1 | u8::from(h.full) << 2);
            }
        }
        Internal::Forward { hops, client, datagram } => {
            w.u8(2);
            w.u8(sender);
            w.u8(*hops);
            w.addr(*client);
            w.bytes(datagram);
        }
        Internal::Replicate { seq, entry } => {
            w.u8(3);
            w.u8(sender);
            w.u64(*seq);
            w.entry(entry);
        }
        Internal::ReplicateAck { seq, bucket, full } => {
            w.u8(4);
            w.u8(sender);
            w.u64(*seq);
            w.u16(*bucket);
            w.u8(u8::from(*full));
        }
        Internal::SyncRequest { request, bucket } => {
            w.u8(5);
            w.u8(sender);
            w.u64(*request);
            w.u16(*bucket);
        }
        Internal::SyncChunk(c) => {
            w.u8(6);
            w.u8(sender);
            w.u64(c.request);
            w.u16(c.bucket);
            w.u16(c.chunk);
            w.u16(c.chunks);
            w.u16(c.entries.len() as u16);
            for e in &c.entries {
                w.entry(e);
            }
        }
        Internal::Admin {
            message_id,
            command,
            arg,
        } => {
            w.u8(7);
            w.u8(sender);
            w.u8(message_id.len() as u8);
            w.bytes(message_id);
            w.u8(*command);
            w.bytes(arg);
        }
        Internal::Digests { digests } => {
            w.u8(8);
            w.u8(sender);
            w.u16(digests.len() as u16);
            for &(bucket, digest, cutoff_s) in digests {
                w.u16(bucket);
                w.u64(digest);
                w.u32(cutoff_s);
            }
        }
    }
    let tag = mac(secret, &w.0);
    w.bytes(&tag);
    let body = w.0;
    let mut out = Vec::with_capacity(body.len() + 5);
    out.extend_from_slice(&TAG);
    let mut len = body.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(&body);
    out
}

/// Why an internal datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InternalError {
    Malformed,
    BadMac,
}

/// The length of the internal message at the start of `stream` (its tag,
/// length and body), `None` while its header is incomplete. Over TCP these
/// messages follow one another with no other framing.
pub fn frame_bytes(stream: &[u8]) -> Result<Option<usize>, InternalError> {
    Ok(split_header(stream)?.map(|(header, body)| header + body))
}

/// `(header bytes, body bytes)` of the message starting `stream`.
fn split_header(stream: &[u8]) -> Result<Option<(usize, usize)>, InternalError> {
    if stream.len() < TAG.len() {
        return Ok(None);
    }
    let rest = stream.strip_prefix(&TAG).ok_or(InternalError::Malformed)?;
    let mut len = 0usize;
    let mut shift = 0;
    for (at, &byte) in rest.iter().enumerate() {
        len |= usize::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(Some((TAG.len() + at + 1, len)));
        }
        shift += 7;
        if shift > 21 {
            return Err(InternalError::Malformed);
        }
    }
    Ok(None)
}

/// Verifies and decodes; returns `(sender, message)`.
pub fn decode(secret: &Secret, datagram: &[u8]) -> Result<(u8, Internal), InternalError> {
    let (header, len) = split_header(datagram)?.ok_or(InternalError::Malformed)?;
    let body = datagram
        .get(header..)
        .filter(|b| b.len() == len && len > MAC_BYTES + 2)
        .ok_or(InternalError::Malformed)?;
    let (signed, tag) = body.split_at(body.len() - MAC_BYTES);
    if mac(secret, signed) != tag {
        return Err(InternalError::BadMac);
    }
    let mut r = Reader(signed);
    let kind = r.u8().ok_or(InternalError::Malformed)?;
    let sender = r.u8().ok_or(InternalError::Malformed)?;
    let message = match kind {
        1 => {
            let n = r.u16().ok_or(InternalError::Malformed)?;
            let mut heartbeats = Vec::with_capacity(usize::from(n).min(256));
            for _ in 0..n {
                let incarnation = r.u64().ok_or(InternalError::Malformed)?;
                let counter = r.u64().ok_or(InternalError::Malformed)?;
                let flags = r.u8().ok_or(InternalError::Malformed)?;
                let (ready, behind, full) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
                heartbeats.push(Heartbeat {
                    incarnation,
                    counter,
                    ready,
                    behind,
                    full,
                });
            }
            Some(Internal::Gossip { heartbeats })
        }
        2 => (|| {
            let hops = r.u8()?;
            let client = r.addr()?;
            Some(Internal::Forward {
                hops,
                client,
                datagram: r.0.to_vec(),
            })
        })(),
        3 => (|| {
            Some(Internal::Replicate {
                seq: r.u64()?,
                entry: r.entry()?,
            })
        })(),
        4 => (|| {
            Some(Internal::ReplicateAck {
                seq: r.u64()?,
                bucket: r.u16()?,
                full: r.u8()? != 0,
            })
        })(),
        5 => (|| {
            Some(Internal::SyncRequest {
                request: r.u64()?,
                bucket: r.u16()?,
            })
        })(),
        6 => (|| {
            let request = r.u64()?;
            let bucket = r.u16()?;
            let chunk = r.u16()?;
            let chunks = r.u16()?;
            let n = r.u16()?;
            let mut entries = Vec::with_capacity(usize::from(n).min(1024));
            for _ in 0..n {
                entries.push(r.entry()?);
            }
            Some(Internal::SyncChunk(Chunk {
                request,
                bucket,
                chunk,
                chunks,
                entries,
            }))
        })(),
        7 => (|| {
            let id_len = usize::from(r.u8()?);
            if id_len > crate::wire::MESSAGE_ID_BYTES_MAX {
                return None;
            }
            let message_id = r.take(id_len)?.to_vec();
            let command = r.u8()?;
            Some(Internal::Admin {
                message_id,
                command,
                arg: r.0.to_vec(),
            })
        })(),
        8 => (|| {
            let n = r.u16()?;
            let mut digests = Vec::with_capacity(usize::from(n).min(crate::hash::BUCKETS));
            for _ in 0..n {
                digests.push((r.u16()?, r.u64()?, r.u32()?));
            }
            Some(Internal::Digests { digests })
        })(),
        _ => None,
    };
    message.map(|m| (sender, m)).ok_or(InternalError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            key: b"key".to_vec(),
            value: vec![7; 300],
            version: -3,
            stamp: Stamp(99),
            tombstone: false,
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let secret = Secret::from_bytes(b"s");
        let messages = vec![
            Internal::Gossip {
                heartbeats: vec![
                    Heartbeat {
                        incarnation: 5,
                        counter: 9,
                        ready: true,
                        behind: true,
                        full: true,
                    };
                    3
                ],
            },
            Internal::Forward {
                hops: 1,
                client: "10.1.2.3:4000".parse().unwrap(),
                datagram: vec![1, 2, 3],
            },
            Internal::Forward {
                hops: 0,
                client: "[::1]:5".parse().unwrap(),
                datagram: vec![],
            },
            Internal::Replicate {
                seq: 77,
                entry: entry(),
            },
            Internal::ReplicateAck {
                seq: 77,
                bucket: 4095,
                full: true,
            },
            Internal::SyncRequest { request: 1, bucket: 2 },
            Internal::SyncChunk(Chunk {
                request: 1,
                bucket: 2,
                chunk: 0,
                chunks: 1,
                entries: vec![entry(), entry()],
            }),
            Internal::Admin {
                message_id: vec![1; 16],
                command: 0x20,
                arg: b"x".to_vec(),
            },
            Internal::Digests {
                digests: vec![(1, 2, 3), (4095, u64::MAX, u32::MAX)],
            },
        ];
        for message in messages {
            let datagram = encode(&secret, 3, &message);
            assert!(is_internal(&datagram));
            assert_eq!(decode(&secret, &datagram), Ok((3, message)));
        }
    }

    #[test]
    fn wrong_secret_or_tampering_is_rejected() {
        let datagram = encode(
            &Secret::from_bytes(b"a"),
            1,
            &Internal::ReplicateAck {
                seq: 1,
                bucket: 1,
                full: false,
            },
        );
        assert_eq!(decode(&Secret::from_bytes(b"b"), &datagram), Err(InternalError::BadMac));
        let mut tampered = datagram.clone();
        tampered[5] ^= 1;
        assert_eq!(decode(&Secret::from_bytes(b"a"), &tampered), Err(InternalError::BadMac));
        assert_eq!(
            decode(&Secret::from_bytes(b"a"), &datagram[..10]),
            Err(InternalError::Malformed)
        );
    }

    #[test]
    fn frames_are_delimited_by_their_own_header() {
        let secret = Secret::from_bytes(b"s");
        let big = encode(
            &secret,
            1,
            &Internal::SyncChunk(Chunk {
                request: 9,
                bucket: 3,
                chunk: 0,
                chunks: 1,
                entries: vec![entry(); 100],
            }),
        );
        let small = encode(&secret, 1, &Internal::SyncRequest { request: 9, bucket: 3 });
        let stream = [big.clone(), small.clone()].concat();
        assert_eq!(frame_bytes(&stream), Ok(Some(big.len())));
        assert_eq!(frame_bytes(&stream[big.len()..]), Ok(Some(small.len())));
        // A header cut short asks for more bytes; a foreign byte is refused.
        assert_eq!(frame_bytes(&big[..3]), Ok(None));
        assert_eq!(frame_bytes(&[]), Ok(None));
        assert_eq!(frame_bytes(&[0x0a, 0x01, 0x00]), Err(InternalError::Malformed));
    }

    #[test]
    fn client_messages_are_never_internal() {
        let client = crate::wire::encode_msg(&[1; 16], vec![8, 1]);
        assert!(!is_internal(&client));
    }
}
