//! The public client protocol on the wire (the CPEN 431 UDP protocol): the `Msg`
//! envelope with its CRC-32 checksum, `KVRequest` / `KVResponse`, command and
//! error codes, and the protocol's size limits.
//!
//! This module knows nothing of sockets or storage: it turns datagram bytes
//! into typed requests and typed replies into datagram bytes.

use crate::protocol::codec;
pub use crate::protocol::codec::{DecodeError, MESSAGE_ID_BYTES_MAX, checksum};
use crate::protocol::proto::kv::{KVRequest, KVResponse};
use protobuf::Message;

/// Longest key a client may store; longer (or empty) keys get `INVALID_KEY`.
pub const KEY_BYTES_MAX: usize = 32;
/// Longest key the store, the journal and node messages carry: one byte
/// more than a client's, so that keys only the node makes (the DynamoDB
/// API's items and tables, see [`crate::storage::item_key`]) can never be
/// named by a client of this protocol.
pub const STORED_KEY_BYTES_MAX: usize = KEY_BYTES_MAX + 1;
/// Longest value a client may store; longer values get `INVALID_VALUE`.
pub const VALUE_BYTES_MAX: usize = 10_000;
/// Largest UDP payload; receive buffers hold this much so an oversized request
/// is answered with `INVALID_VALUE` instead of being truncated.
pub const DATAGRAM_BYTES_MAX: usize = 65_535;

/// Largest encoded reply: a GET reply carries a full value plus the envelope.
pub const REPLY_BYTES_MAX: usize = VALUE_BYTES_MAX + MESSAGE_ID_BYTES_MAX + 64;
const _: () = assert!(REPLY_BYTES_MAX <= DATAGRAM_BYTES_MAX);

/// A client command (`KVRequest.command`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Put = 0x01,
    Get = 0x02,
    Remove = 0x03,
    Shutdown = 0x04,
    Wipeout = 0x05,
    IsAlive = 0x06,
    GetPid = 0x07,
    GetMembershipCount = 0x08,
    /// Node-made only (see [`Origin::Node`]): compare-and-swap of a stored
    /// value, the DynamoDB API's atomic read-check-write.
    Swap = 0x30,
    /// Node-made only: a page of a bucket's records under a key prefix, in
    /// the order their values name (the DynamoDB API's Query and Scan).
    ReadBucket = 0x31,
}

impl Command {
    pub fn from_code(code: u32) -> Option<Command> {
        Some(match code {
            0x01 => Command::Put,
            0x02 => Command::Get,
            0x03 => Command::Remove,
            0x04 => Command::Shutdown,
            0x05 => Command::Wipeout,
            0x06 => Command::IsAlive,
            0x07 => Command::GetPid,
            0x08 => Command::GetMembershipCount,
            0x30 => Command::Swap,
            0x31 => Command::ReadBucket,
            _ => return None,
        })
    }
}

/// `KVResponse.errCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Success = 0,
    NonExistentKey = 1,
    OutOfSpace = 2,
    Overload = 3,
    InternalFailure = 4,
    UnrecognizedCommand = 5,
    InvalidKey = 6,
    InvalidValue = 7,
    /// Node-made requests only: a SWAP whose expected value is not the
    /// stored one (nothing was written).
    Conflict = 8,
}

impl ErrorCode {
    pub fn from_code(code: u32) -> Option<ErrorCode> {
        Some(match code {
            0 => ErrorCode::Success,
            1 => ErrorCode::NonExistentKey,
            2 => ErrorCode::OutOfSpace,
            3 => ErrorCode::Overload,
            4 => ErrorCode::InternalFailure,
            5 => ErrorCode::UnrecognizedCommand,
            6 => ErrorCode::InvalidKey,
            7 => ErrorCode::InvalidValue,
            8 => ErrorCode::Conflict,
            _ => return None,
        })
    }
}

/// Wraps `payload` in a checksummed `Msg`, all three fields on the wire.
pub fn encode_msg(message_id: &[u8], payload: Vec<u8>) -> Vec<u8> {
    codec::write_msg(message_id, &payload)
}

/// Parses a `Msg` and verifies its checksum; returns `(messageID, payload)`.
pub fn decode_msg(datagram: &[u8]) -> Result<(Vec<u8>, Vec<u8>), DecodeError> {
    codec::read_msg(datagram).map(|(id, payload)| (id.to_vec(), payload.to_vec()))
}

/// Decodes and validates a client datagram in one pass, borrowing the
/// message id: what the server does with every request.
pub fn decode_client(datagram: &[u8], origin: Origin) -> Result<(&[u8], Parsed<'_>), DecodeError> {
    let (id, payload) = codec::read_msg(datagram)?;
    Ok((id, parse_fields(codec::read_request(payload)?, origin)))
}

/// Who a request datagram is taken from: what it may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client of the protocol: keys of at most [`KEY_BYTES_MAX`] bytes,
    /// the protocol's commands only.
    Client,
    /// This node's own front-ends, or a request a node already took (one
    /// forwarded under a node message's MAC, or queued by the router):
    /// keys up to [`STORED_KEY_BYTES_MAX`] and the node-made commands.
    Node,
}

/// Decodes a client datagram into its message id and request.
pub fn decode_request(datagram: &[u8]) -> Result<(Vec<u8>, KVRequest), DecodeError> {
    let (id, payload) = decode_msg(datagram)?;
    let request = KVRequest::parse_from_bytes(&payload).map_err(|_| DecodeError::BadPayload)?;
    Ok((id, request))
}

/// Encodes a request datagram (used by clients and tests).
pub fn encode_request(message_id: &[u8], request: &KVRequest) -> Vec<u8> {
    let payload = request.write_to_bytes().expect("a KVRequest always serializes");
    encode_msg(message_id, payload)
}

/// Decodes a reply datagram, accepting it only if it answers `expected_id`.
pub fn decode_reply(datagram: &[u8], expected_id: &[u8]) -> Result<KVResponse, DecodeError> {
    let (id, payload) = decode_msg(datagram)?;
    if id != expected_id {
        return Err(DecodeError::WrongMessageId);
    }
    let response = KVResponse::parse_from_bytes(&payload).map_err(|_| DecodeError::BadPayload)?;
    if response.errCode.is_none() {
        return Err(DecodeError::BadPayload);
    }
    Ok(response)
}

/// A reply as the server thinks of it; [`Reply::encode`] makes the datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Just an error code (success of PUT, REMOVE, WIPEOUT, IS_ALIVE, or any error).
    Code(ErrorCode),
    /// A successful GET.
    Value { value: Vec<u8>, version: i32 },
    /// A SWAP whose expectation did not hold, with the record its round
    /// found and left chosen, its value and version (`None`: no item), so
    /// that the asker can try again without reading first. Sent as
    /// CONFLICT with that value and version (an empty value and version 0:
    /// no item); a plain CONFLICT (the answer to a resend, from the reply
    /// cache) has neither field.
    Conflict { current: Option<(Vec<u8>, i32)> },
    /// GET_PID.
    Pid(i32),
    /// GET_MEMBERSHIP_COUNT.
    MembershipCount(i32),
    /// TEMPORARY_SYSTEM_OVERLOAD with the time the client should wait.
    Overload { wait_ms: i32 },
}

impl Reply {
    /// The error code the reply carries.
    pub fn code(&self) -> ErrorCode {
        match self {
            Reply::Code(code) => *code,
            Reply::Conflict { .. } => ErrorCode::Conflict,
            Reply::Overload { .. } => ErrorCode::Overload,
            Reply::Value { .. } | Reply::Pid(_) | Reply::MembershipCount(_) => ErrorCode::Success,
        }
    }

    pub fn to_response(&self) -> KVResponse {
        let mut response = KVResponse::new();
        response.errCode = Some(ErrorCode::Success as u32);
        match self {
            Reply::Code(code) => response.errCode = Some(*code as u32),
            Reply::Value { value, version } => {
                response.value = Some(value.clone());
                response.version = Some(*version);
            }
            Reply::Conflict { current } => {
                let (value, version) = current.clone().unwrap_or_default();
                response.errCode = Some(ErrorCode::Conflict as u32);
                response.value = Some(value);
                response.version = Some(version);
            }
            Reply::Pid(pid) => response.pid = Some(*pid),
            Reply::MembershipCount(count) => response.membershipCount = Some(*count),
            Reply::Overload { wait_ms } => {
                response.errCode = Some(ErrorCode::Overload as u32);
                response.overloadWaitTime = Some(*wait_ms);
            }
        }
        response
    }

    /// The reply datagram answering `message_id`: `Msg { messageID,
    /// payload: KVResponse, checkSum }`, every `Msg` field and `errCode`
    /// always present.
    pub fn encode(&self, message_id: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(message_id, &mut out);
        out
    }

    /// [`Reply::encode`] into `out` (cleared first): a buffer reused from
    /// reply to reply allocates nothing.
    pub fn encode_into(&self, message_id: &[u8], out: &mut Vec<u8>) {
        let code = self.code() as u32;
        match self {
            Reply::Code(_) => write_response(out, message_id, code, None, None),
            Reply::Value { value, version } => write_response(out, message_id, code, Some((value, *version)), None),
            Reply::Conflict { current } => {
                let (value, version) = current.as_ref().map_or((&[][..], 0), |(v, version)| (&v[..], *version));
                write_response(out, message_id, code, Some((value, version)), None)
            }
            Reply::Pid(pid) => write_response(out, message_id, code, None, Some((0x18, *pid))),
            Reply::Overload { wait_ms } => write_response(out, message_id, code, None, Some((0x28, *wait_ms))),
            Reply::MembershipCount(count) => write_response(out, message_id, code, None, Some((0x30, *count))),
        }
    }
}

/// A successful GET's reply, written from the stored value into `out`
/// (cleared first): no copy of the value on the way.
pub fn encode_value_reply_into(message_id: &[u8], value: &[u8], version: i32, out: &mut Vec<u8>) {
    write_response(out, message_id, ErrorCode::Success as u32, Some((value, version)), None);
}

/// `Msg { messageID, payload: KVResponse { errCode, [value, version],
/// [one int32 field] }, checkSum }` in one pass over `out`.
fn write_response(
    out: &mut Vec<u8>,
    message_id: &[u8],
    code: u32,
    value: Option<(&[u8], i32)>,
    int: Option<(u8, i32)>,
) {
    let int32_len = |n: i32| codec::varint_len(i64::from(n) as u64);
    let payload_len = 1
        + codec::varint_len(u64::from(code))
        + value.map_or(0, |(v, version)| {
            2 + codec::varint_len(v.len() as u64) + v.len() + int32_len(version)
        })
        + int.map_or(0, |(_, n)| 1 + int32_len(n));
    out.clear();
    out.reserve(message_id.len() + payload_len + 16);
    codec::put_bytes(out, 0x0a, message_id);
    out.push(0x12);
    codec::put_varint(out, payload_len as u64);
    let payload_at = out.len();
    codec::put_uint32(out, 0x08, code);
    if let Some((v, version)) = value {
        codec::put_bytes(out, 0x12, v);
        codec::put_int32(out, 0x20, version);
    }
    if let Some((tag, n)) = int {
        codec::put_int32(out, tag, n);
    }
    debug_assert_eq!(out.len() - payload_at, payload_len);
    let sum = checksum(message_id, &out[payload_at..]);
    out.push(0x19);
    out.extend_from_slice(&sum.to_le_bytes());
}

/// A validated key: 1 to [`STORED_KEY_BYTES_MAX`] bytes, stored inline
/// (a client's are at most [`KEY_BYTES_MAX`], see [`Origin`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    len: u8,
    bytes: [u8; STORED_KEY_BYTES_MAX],
}

impl Key {
    /// `None` for an empty or too long key.
    pub fn new(bytes: &[u8]) -> Option<Key> {
        if bytes.is_empty() || bytes.len() > STORED_KEY_BYTES_MAX {
            return None;
        }
        let mut key = Key {
            len: bytes.len() as u8,
            bytes: [0; STORED_KEY_BYTES_MAX],
        };
        key.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(key)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(")?;
        for byte in self.as_bytes() {
            write!(f, "{byte:02x}")?;
        }
        write!(f, ")")
    }
}

/// A keyed client operation, validated; a value is borrowed from the
/// datagram it came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOp<'a> {
    Put {
        key: Key,
        value: &'a [u8],
        version: i32,
    },
    Get {
        key: Key,
    },
    Remove {
        key: Key,
    },
    /// Node-made, for items: change the key to `to` only if what is stored
    /// has [`swap_hash`] `expected` (0: nothing is stored; [`SWAP_ANY`]:
    /// whatever is stored), in a round of the key's replicas (see
    /// [`crate::node::shard`]'s `rounds`); `SwapTo::Unchanged` reads.
    Swap {
        key: Key,
        expected: u64,
        to: SwapTo<'a>,
    },
    /// Node-made: a page of the key's bucket (see [`crate::storage::item_key`]).
    ReadBucket {
        key: Key,
        request: &'a [u8],
    },
}

impl KeyOp<'_> {
    pub fn key(&self) -> &Key {
        match self {
            KeyOp::Put { key, .. }
            | KeyOp::Get { key }
            | KeyOp::Remove { key }
            | KeyOp::Swap { key, .. }
            | KeyOp::ReadBucket { key, .. } => key,
        }
    }

    /// Whether the operation may store a value (a full cluster refuses it).
    pub fn grows(&self) -> bool {
        matches!(
            self,
            KeyOp::Put { .. }
                | KeyOp::Swap {
                    to: SwapTo::Value(_),
                    ..
                }
        )
    }

    /// Whether the operation changes the store (and so its reply is cached).
    pub fn is_mutation(&self) -> bool {
        !matches!(self, KeyOp::Get { .. } | KeyOp::ReadBucket { .. })
    }
}

/// What a SWAP changes a key to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapTo<'a> {
    /// This value.
    Value(&'a [u8]),
    /// Nothing: the key is removed.
    Nothing,
    /// Nothing changes: the SWAP reads what its round finds (a strongly
    /// consistent read), answered as a GET is.
    Unchanged,
}

/// A SWAP's `expected` that holds whatever is stored.
pub const SWAP_ANY: u64 = u64::MAX;

/// What a SWAP compares: the 64-bit BLAKE3 prefix of a stored record's
/// version and value, never 0 (which stands for "nothing stored") nor
/// [`SWAP_ANY`]. The version is the [`write_tag`] of the SWAP that wrote
/// it, so an item written back to the same bytes by another write is
/// another record: a SWAP worked out on the first (a late resend of one
/// that took effect already) does not hold on the second (ABA).
pub fn swap_hash(value: &[u8], version: i32) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&version.to_le_bytes());
    hasher.update(value);
    let digest = hasher.finalize();
    let mut word = [0u8; 8];
    word.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(word).clamp(1, SWAP_ANY - 1)
}

/// The version a SWAP's write stores (items have no versions of their
/// own), from its message id's hash: so that the SWAP tried again with
/// that id, at this coordinator or another, knows its write when it finds
/// it and does not apply it twice; and so that two writes of the same
/// bytes are told apart (see [`swap_hash`]).
pub fn write_tag(id_hash: u64) -> i32 {
    ((id_hash ^ id_hash >> 32) as u32 >> 1) as i32
}

/// A SWAP's value: `expected` (8 bytes, little-endian), then 1 and the new
/// value to store, 0 alone to remove, or 2 alone to read.
pub fn encode_swap(expected: u64, to: SwapTo<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + if let SwapTo::Value(value) = to { value.len() } else { 0 });
    out.extend_from_slice(&expected.to_le_bytes());
    match to {
        SwapTo::Value(value) => {
            out.push(1);
            out.extend_from_slice(value);
        }
        SwapTo::Nothing => out.push(0),
        SwapTo::Unchanged => out.push(2),
    }
    out
}

struct Swap;

impl Swap {
    /// The SWAP a value encodes ([`encode_swap`]), `None` if malformed.
    fn parse(key: Key, value: &[u8]) -> Option<KeyOp<'_>> {
        let (expected, rest) = value.split_first_chunk::<8>()?;
        let (&kind, new) = rest.split_first()?;
        let to = match kind {
            1 if new.len() <= VALUE_BYTES_MAX => SwapTo::Value(new),
            0 if new.is_empty() => SwapTo::Nothing,
            2 if new.is_empty() => SwapTo::Unchanged,
            _ => return None,
        };
        let expected = u64::from_le_bytes(*expected);
        Some(KeyOp::Swap { key, expected, to })
    }
}

/// A command about the node rather than a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeCommand {
    Shutdown,
    Wipeout,
    IsAlive,
    GetPid,
    GetMembershipCount,
}

/// What a decoded request asks for, after validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    Keyed(KeyOp<'a>),
    Node(NodeCommand),
    /// Answered at once with this code (invalid key or value, unknown command).
    Invalid(ErrorCode),
}

/// Validates a request: the key before the value, as the spec demands.
pub fn parse_request(request: &KVRequest) -> Parsed<'_> {
    let fields = codec::RequestFields {
        command: request.command,
        key: request.key.as_deref(),
        value: request.value.as_deref(),
        version: request.version,
    };
    parse_fields(fields, Origin::Client)
}

/// Validates the fields of a request (see [`parse_request`]).
pub fn parse_fields(request: codec::RequestFields<'_>, origin: Origin) -> Parsed<'_> {
    let Some(command) = Command::from_code(request.command) else {
        return Parsed::Invalid(ErrorCode::UnrecognizedCommand);
    };
    let node_made = matches!(command, Command::Swap | Command::ReadBucket);
    if node_made && origin == Origin::Client {
        return Parsed::Invalid(ErrorCode::UnrecognizedCommand);
    }
    let node = |command| Parsed::Node(command);
    let key_bytes = request.key.unwrap_or_default();
    let key_max = if origin == Origin::Client {
        KEY_BYTES_MAX
    } else {
        STORED_KEY_BYTES_MAX
    };
    let key = || (key_bytes.len() <= key_max).then(|| Key::new(key_bytes)).flatten();
    match command {
        Command::Shutdown => node(NodeCommand::Shutdown),
        Command::Wipeout => node(NodeCommand::Wipeout),
        Command::IsAlive => node(NodeCommand::IsAlive),
        Command::GetPid => node(NodeCommand::GetPid),
        Command::GetMembershipCount => node(NodeCommand::GetMembershipCount),
        Command::Put | Command::Get | Command::Remove | Command::Swap | Command::ReadBucket => {
            let Some(key) = key() else {
                return Parsed::Invalid(ErrorCode::InvalidKey);
            };
            let value = request.value.unwrap_or_default();
            Parsed::Keyed(match command {
                Command::Swap => match Swap::parse(key, value) {
                    Some(op) => op,
                    None => return Parsed::Invalid(ErrorCode::InvalidValue),
                },
                Command::ReadBucket => KeyOp::ReadBucket { key, request: value },
                Command::Put => {
                    if value.len() > VALUE_BYTES_MAX {
                        return Parsed::Invalid(ErrorCode::InvalidValue);
                    }
                    let version = request.version.unwrap_or(0);
                    KeyOp::Put { key, value, version }
                }
                Command::Get => KeyOp::Get { key },
                _ => KeyOp::Remove { key },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_byte_identical_to_generated_code() {
        let replies = [
            Reply::Code(ErrorCode::Success),
            Reply::Code(ErrorCode::InvalidValue),
            Reply::Value {
                value: b"v".to_vec(),
                version: 7,
            },
            Reply::Value {
                value: vec![3; 10_000],
                version: -1,
            },
            Reply::Value {
                value: Vec::new(),
                version: 0,
            },
            Reply::Conflict {
                current: Some((b"record".to_vec(), -5)),
            },
            Reply::Conflict { current: None },
            Reply::Pid(4242),
            Reply::MembershipCount(150),
            Reply::Overload { wait_ms: 500 },
        ];
        for reply in replies {
            let generated = reply.to_response().write_to_bytes().unwrap();
            let id = [5u8; 16];
            let mut msg = crate::protocol::proto::kv::Msg::new();
            msg.messageID = Some(id.to_vec());
            msg.checkSum = Some(checksum(&id, &generated));
            msg.payload = Some(generated);
            assert_eq!(reply.encode(&id), msg.write_to_bytes().unwrap(), "{reply:?}");
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn id_0_to_15() -> Vec<u8> {
        (0u8..16).collect()
    }

    fn fields(command: u32, key: &[u8], value: &[u8]) -> codec::RequestFields<'static> {
        codec::RequestFields {
            command,
            key: Some(key.to_vec().leak()),
            value: Some(value.to_vec().leak()),
            version: None,
        }
    }

    #[test]
    fn node_made_commands_and_keys_are_refused_from_clients() {
        let long_key = [7u8; STORED_KEY_BYTES_MAX];
        let swap = encode_swap(0, SwapTo::Value(b"v"));
        let read = [0u8, 0];
        for (command, key, value) in [(0x30, &b"k"[..], &swap[..]), (0x31, b"k", &read[..])] {
            let parsed = parse_fields(fields(command, key, value), Origin::Client);
            assert_eq!(parsed, Parsed::Invalid(ErrorCode::UnrecognizedCommand));
        }
        let get = parse_fields(fields(0x02, &long_key, b""), Origin::Client);
        assert_eq!(get, Parsed::Invalid(ErrorCode::InvalidKey));
        let get = parse_fields(fields(0x02, &long_key, b""), Origin::Node);
        assert!(matches!(get, Parsed::Keyed(KeyOp::Get { key }) if key.as_bytes() == long_key));
        let too_long = [7u8; STORED_KEY_BYTES_MAX + 1];
        let get = parse_fields(fields(0x02, &too_long, b""), Origin::Node);
        assert_eq!(get, Parsed::Invalid(ErrorCode::InvalidKey));
    }

    #[test]
    fn a_swap_parses_back_and_a_malformed_one_is_invalid() {
        let put = parse_fields(fields(0x30, b"k", &encode_swap(9, SwapTo::Value(b"new"))), Origin::Node);
        assert!(matches!(
            put,
            Parsed::Keyed(KeyOp::Swap {
                expected: 9,
                to: SwapTo::Value(b"new"),
                ..
            })
        ));
        let remove = parse_fields(fields(0x30, b"k", &encode_swap(0, SwapTo::Nothing)), Origin::Node);
        assert!(matches!(
            remove,
            Parsed::Keyed(KeyOp::Swap {
                expected: 0,
                to: SwapTo::Nothing,
                ..
            })
        ));
        let read = parse_fields(
            fields(0x30, b"k", &encode_swap(SWAP_ANY, SwapTo::Unchanged)),
            Origin::Node,
        );
        assert!(matches!(
            read,
            Parsed::Keyed(KeyOp::Swap {
                expected: SWAP_ANY,
                to: SwapTo::Unchanged,
                ..
            })
        ));
        for junk in [
            &[1u8, 2][..],
            &[0; 8][..],
            &[0, 0, 0, 0, 0, 0, 0, 0, 3][..],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 5][..],
            &[0, 0, 0, 0, 0, 0, 0, 0, 2, 5][..],
        ] {
            let parsed = parse_fields(fields(0x30, b"k", junk), Origin::Node);
            assert_eq!(parsed, Parsed::Invalid(ErrorCode::InvalidValue), "{junk:?}");
        }
        assert_ne!(swap_hash(b"", 0), 0);
        assert!((0..1000u32).all(|n| swap_hash(&n.to_le_bytes(), 7) != SWAP_ANY));
        assert_ne!(swap_hash(b"a", 1), swap_hash(b"b", 1));
        assert_ne!(
            swap_hash(b"a", 1),
            swap_hash(b"a", 2),
            "the same bytes by another write"
        );
    }

    #[test]
    fn checksum_matches_spec_vector() {
        assert_eq!(checksum(&[1, 2, 3, 4], &[5, 6, 7, 8]), 1_070_237_893);
    }

    #[test]
    fn put_request_matches_spec_bytes() {
        let mut request = KVRequest::new();
        request.command = 1;
        request.key = Some(b"k".to_vec());
        request.value = Some(b"v".to_vec());
        request.version = Some(0);
        let payload = request.write_to_bytes().unwrap();
        assert_eq!(hex(&payload), "080112016b1a01762000");
        assert_eq!(checksum(&id_0_to_15(), &payload), 1_492_416_503);
        let datagram = encode_request(&id_0_to_15(), &request);
        assert_eq!(
            hex(&datagram),
            "0a10000102030405060708090a0b0c0d0e0f120a080112016b1a0176200019f777f45800000000"
        );
        let (id, decoded) = decode_request(&datagram).unwrap();
        assert_eq!(id, id_0_to_15());
        assert_eq!(decoded, request);
    }

    #[test]
    fn success_reply_matches_spec_bytes() {
        let datagram = Reply::Code(ErrorCode::Success).encode(&id_0_to_15());
        assert_eq!(
            hex(&datagram),
            "0a10000102030405060708090a0b0c0d0e0f12020800192ec75e3400000000"
        );
        assert_eq!(checksum(&id_0_to_15(), &[0x08, 0x00]), 878_626_606);
    }

    #[test]
    fn get_and_overload_replies_match_spec_payloads() {
        let get = Reply::Value {
            value: b"v".to_vec(),
            version: 7,
        };
        assert_eq!(hex(&get.to_response().write_to_bytes().unwrap()), "08001201762007");
        let overload = Reply::Overload { wait_ms: 500 };
        assert_eq!(hex(&overload.to_response().write_to_bytes().unwrap()), "080328f403");
    }

    #[test]
    fn negative_version_round_trips_as_ten_byte_varint() {
        let mut request = KVRequest::new();
        request.command = 1;
        request.key = Some(b"k".to_vec());
        request.version = Some(-1);
        let payload = request.write_to_bytes().unwrap();
        assert_eq!(
            &payload[payload.len() - 11..],
            &[0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        let parsed = KVRequest::parse_from_bytes(&payload).unwrap();
        assert_eq!(parsed.version, Some(-1));
    }

    #[test]
    fn bad_checksum_and_garbage_are_rejected() {
        let mut request = KVRequest::new();
        request.command = 6;
        let mut datagram = encode_request(&id_0_to_15(), &request);
        let last_crc_byte = datagram.len() - 5;
        datagram[last_crc_byte] ^= 1;
        assert_eq!(decode_request(&datagram), Err(DecodeError::BadChecksum));
        assert_eq!(decode_request(&[0xff, 0xff, 0xff]), Err(DecodeError::NotMsg));
        assert_eq!(decode_request(&[]), Err(DecodeError::NotMsg));
    }

    #[test]
    fn reply_for_another_id_is_rejected() {
        let datagram = Reply::Code(ErrorCode::Success).encode(&[1, 2, 3]);
        assert_eq!(decode_reply(&datagram, &[1, 2, 4]), Err(DecodeError::WrongMessageId));
        assert!(decode_reply(&datagram, &[1, 2, 3]).is_ok());
    }

    #[test]
    fn long_message_id_is_rejected() {
        let id = vec![7u8; MESSAGE_ID_BYTES_MAX + 1];
        let datagram = encode_msg(&id, vec![8, 6]);
        assert_eq!(decode_request(&datagram), Err(DecodeError::MessageIdTooLong));
        let id = vec![7u8; MESSAGE_ID_BYTES_MAX];
        assert!(decode_request(&encode_msg(&id, vec![8, 6])).is_ok());
    }

    fn request(command: u32, key: Option<usize>, value: Option<usize>) -> KVRequest {
        let mut request = KVRequest::new();
        request.command = command;
        request.key = key.map(|n| vec![b'k'; n]);
        request.value = value.map(|n| vec![b'v'; n]);
        request
    }

    #[test]
    fn validation_checks_key_before_value() {
        assert_eq!(
            parse_request(&request(1, Some(33), Some(60_000))),
            Parsed::Invalid(ErrorCode::InvalidKey)
        );
        assert_eq!(
            parse_request(&request(1, Some(32), Some(10_001))),
            Parsed::Invalid(ErrorCode::InvalidValue)
        );
        assert!(matches!(
            parse_request(&request(1, Some(32), Some(10_000))),
            Parsed::Keyed(KeyOp::Put { .. })
        ));
        assert!(matches!(
            parse_request(&request(1, Some(1), None)),
            Parsed::Keyed(KeyOp::Put { .. })
        ));
        assert_eq!(
            parse_request(&request(1, None, Some(1))),
            Parsed::Invalid(ErrorCode::InvalidKey)
        );
        assert_eq!(
            parse_request(&request(2, Some(0), None)),
            Parsed::Invalid(ErrorCode::InvalidKey)
        );
        assert_eq!(
            parse_request(&request(3, Some(64), None)),
            Parsed::Invalid(ErrorCode::InvalidKey)
        );
        assert_eq!(
            parse_request(&request(99, None, None)),
            Parsed::Invalid(ErrorCode::UnrecognizedCommand)
        );
        assert_eq!(
            parse_request(&request(0, None, None)),
            Parsed::Invalid(ErrorCode::UnrecognizedCommand)
        );
        assert_eq!(
            parse_request(&request(6, Some(5), None)),
            Parsed::Node(NodeCommand::IsAlive)
        );
    }

    #[test]
    fn put_without_version_stores_version_zero() {
        let put = request(1, Some(3), None);
        let Parsed::Keyed(KeyOp::Put { version, value, .. }) = parse_request(&put) else {
            panic!("expected a PUT");
        };
        assert_eq!((version, value.len()), (0, 0));
    }
}
