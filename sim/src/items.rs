//! DynamoDB items in the simulation: clients that act as a node's
//! DynamoDB executors do, with node-made SWAPs of a few item keys handed to
//! the node's router (never over the network, as an executor's are), each
//! sent again with its message id until answered and given up after the
//! cluster client's bound. Each key is a register: strongly consistent
//! reads (a SWAP that changes nothing) and conditional writes of unique
//! values (a SWAP expecting the value last read). Every operation's call,
//! return and outcome is recorded, and at the end each key's history is
//! checked for linearizability (the Wing-Gong/Lowe checker of
//! `dynakv-loadtest`).
//!
//! Outcomes as the endpoint reads them (`runtime/dynamodb/items.rs`): a
//! conflict answered to a SWAP sent more than once, a failure, no room,
//! or no answer in time is unknown; a conflict to one sent once is "no",
//! and the value it reports is the item's (the next write expects it, as
//! an executor's next try does).

use dynakv::protocol::proto::kv::KVRequest;
use dynakv::protocol::wire::{self, Command, ErrorCode, SWAP_ANY, SwapTo};
use dynakv::storage::hash::message_id_hash;
use dynakv_loadtest::linearizable::{
    self, Limits, Operation, Outcome, Register, RegisterInput, RegisterOutput, Verdict,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::net::SocketAddr;

/// Item keys the clients share.
const ITEM_KEYS: usize = 3;
/// The endpoint's cluster client: first resend, doubled up to the last, and
/// the bound after which an operation's outcome is unknown.
const RESEND_MS_MIN: u64 = 100;
const RESEND_MS_MAX: u64 = 1_000;
const CALL_MS_MAX: u64 = 10_000;

type RegisterOp = Operation<RegisterInput<u64>, RegisterOutput<u64>>;

/// One SWAP in flight.
struct InFlight {
    key: usize,
    input: RegisterInput<u64>,
    id: [u8; 16],
    datagram: Vec<u8>,
    node: usize,
    sends: u32,
    resend_ms: u64,
    invoked_us: u64,
}

struct ItemClient {
    addr: SocketAddr,
    /// The timer that counts; older ones are ignored.
    token: u64,
    op: Option<InFlight>,
    /// The value this client last read of each key.
    seen: Vec<Option<u64>>,
    /// The version of each key's value seen (the tag of the write that
    /// stored it), which a SWAP's expectation names with the value.
    seen_version: Vec<i32>,
    counter: u64,
}

/// What the world does for an item client next.
pub enum Step {
    /// Hand this node-made datagram to the node's router, then wake the
    /// client after `wake_ms`.
    Send {
        node: usize,
        datagram: Vec<u8>,
        wake_ms: u64,
    },
    /// Wake the client after `wake_ms` (nothing to send).
    Wait { wake_ms: u64 },
}

/// The item clients of a run and what they recorded.
pub struct ItemClients {
    clients: Vec<ItemClient>,
    keys: Vec<Vec<u8>>,
    history: Vec<(usize, RegisterOp)>,
    /// Every value a SWAP asked to store, by key.
    proposed: std::collections::HashSet<(usize, u64)>,
    rng: ChaCha8Rng,
}

impl ItemClients {
    pub fn new(count: usize, rng: ChaCha8Rng) -> ItemClients {
        let clients = (0..count)
            .map(|index| ItemClient {
                addr: SocketAddr::from(([10, 2, (index / 250) as u8, (index % 250) as u8 + 1], 41_000)),
                token: 0,
                op: None,
                seen: vec![None; ITEM_KEYS],
                seen_version: vec![0; ITEM_KEYS],
                counter: 0,
            })
            .collect();
        ItemClients {
            clients,
            keys: (0..ITEM_KEYS).map(|k| format!("item-{k}").into_bytes()).collect(),
            history: Vec::new(),
            proposed: std::collections::HashSet::new(),
            rng,
        }
    }

    pub fn addrs(&self) -> impl Iterator<Item = (usize, SocketAddr)> + '_ {
        self.clients.iter().map(|client| client.addr).enumerate()
    }

    pub fn addr(&self, client: usize) -> SocketAddr {
        self.clients[client].addr
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// A new timer for the client: the only one that counts from now on.
    pub fn next_token(&mut self, client: usize) -> u64 {
        self.clients[client].token += 1;
        self.clients[client].token
    }

    pub fn token_counts(&self, client: usize, token: u64) -> bool {
        self.clients[client].token == token
    }

    pub fn in_flight(&self, client: usize) -> bool {
        self.clients[client].op.is_some()
    }

    /// A pause before the client's next operation.
    pub fn think_ms(&mut self) -> u64 {
        self.rng.random_range(5..60)
    }

    /// The client's timer: its SWAP sent again, given up, or (none in
    /// flight, `stopped` false) a new one to `node`.
    pub fn wake(&mut self, client: usize, node: usize, stopped: bool, now_us: u64) -> Option<Step> {
        let Some(op) = self.clients[client].op.as_mut() else {
            return (!stopped).then(|| self.start(client, node, now_us));
        };
        if now_us >= op.invoked_us + CALL_MS_MAX * 1_000 {
            self.end(client, Outcome::Unknown, now_us);
            return Some(Step::Wait { wake_ms: 1 });
        }
        op.sends += 1;
        op.resend_ms = (op.resend_ms * 2).min(RESEND_MS_MAX);
        Some(Step::Send {
            node: op.node,
            datagram: op.datagram.clone(),
            wake_ms: op.resend_ms,
        })
    }

    fn start(&mut self, client: usize, node: usize, now_us: u64) -> Step {
        let key = self.rng.random_range(0..ITEM_KEYS);
        let c = &mut self.clients[client];
        c.counter += 1;
        let input = if self.rng.random_range(0..2) == 0 {
            RegisterInput::Read
        } else {
            RegisterInput::Cas {
                expected: c.seen[key],
                new: (client as u64) << 32 | c.counter,
            }
        };
        let (expected, value) = match &input {
            RegisterInput::Cas { expected, new } => {
                let version = c.seen_version[key];
                (
                    expected.map_or(0, |v| wire::swap_hash(&v.to_le_bytes(), version)),
                    Some(*new),
                )
            }
            _ => (SWAP_ANY, None),
        };
        if let Some(value) = value {
            self.proposed.insert((key, value));
        }
        let bytes = value.map(u64::to_le_bytes);
        let to = bytes.as_ref().map_or(SwapTo::Unchanged, |b| SwapTo::Value(b));
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&(0x1000 + client as u32).to_be_bytes());
        id[4..12].copy_from_slice(&c.counter.to_be_bytes());
        let mut request = KVRequest::new();
        request.command = Command::Swap as u32;
        request.key = Some(self.keys[key].clone());
        request.value = Some(wire::encode_swap(expected, to));
        let datagram = wire::encode_request(&id, &request);
        c.op = Some(InFlight {
            key,
            input,
            id,
            datagram: datagram.clone(),
            node,
            sends: 1,
            resend_ms: RESEND_MS_MIN,
            invoked_us: now_us,
        });
        Step::Send {
            node,
            datagram,
            wake_ms: RESEND_MS_MIN,
        }
    }

    /// A reply reached the client: its SWAP ended (`true`), or it is asked
    /// to wait (sent again when its timer fires) or not its own.
    pub fn reply(&mut self, client: usize, bytes: &[u8], now_us: u64) -> bool {
        let Some(op) = self.clients[client].op.as_mut() else {
            return false;
        };
        let Ok(response) = wire::decode_reply(bytes, &op.id) else {
            return false;
        };
        let code = ErrorCode::from_code(response.errCode.unwrap_or(u32::MAX)).unwrap_or(ErrorCode::InternalFailure);
        let value = response
            .value
            .as_deref()
            .and_then(|v| Some(u64::from_le_bytes(v.try_into().ok()?)));
        let outcome = match (code, &op.input) {
            (ErrorCode::Overload, _) => return false,
            (ErrorCode::Success, RegisterInput::Read) => Outcome::Ok(RegisterOutput::Value(value)),
            (ErrorCode::NonExistentKey, RegisterInput::Read) => Outcome::Ok(RegisterOutput::Value(None)),
            (ErrorCode::Success, _) => Outcome::Ok(RegisterOutput::Cas(true)),
            (ErrorCode::Conflict, _) if op.sends == 1 && response.value.is_some() => {
                Outcome::Ok(RegisterOutput::CasFound(value))
            }
            (ErrorCode::Conflict, _) if op.sends == 1 => Outcome::Ok(RegisterOutput::Cas(false)),
            _ => Outcome::Unknown,
        };
        let seen = match (&outcome, &op.input) {
            (Outcome::Ok(RegisterOutput::Value(seen) | RegisterOutput::CasFound(seen)), _) => Some(*seen),
            (Outcome::Ok(RegisterOutput::Cas(true)), RegisterInput::Cas { new, .. }) => Some(Some(*new)),
            _ => None,
        };
        if let Some(seen) = seen {
            let key = op.key;
            let version = match &outcome {
                Outcome::Ok(RegisterOutput::Cas(true)) => wire::write_tag(message_id_hash(&op.id)),
                _ => response.version.unwrap_or(0),
            };
            self.clients[client].seen_version[key] = version;
            self.clients[client].seen[key] = seen;
        }
        self.end(client, outcome, now_us);
        true
    }

    fn end(&mut self, client: usize, outcome: Outcome<RegisterOutput<u64>>, now_us: u64) {
        let Some(op) = self.clients[client].op.take() else {
            return;
        };
        let record = Operation {
            client: client as u32,
            call_us: op.invoked_us,
            input: op.input,
            outcome,
            return_us: now_us,
        };
        self.history.push((op.key, record));
    }

    /// Whether `key` is an item's and, if so, whether some SWAP asked to
    /// store `value` in it (`None`: no such item key).
    pub fn was_proposed(&self, key: &[u8], value: Option<&[u8]>) -> Option<bool> {
        let index = self.keys.iter().position(|k| k == key)?;
        let Some(value) = value else {
            return Some(true);
        };
        let value = value.try_into().ok().map(u64::from_le_bytes);
        Some(value.is_some_and(|v| self.proposed.contains(&(index, v))))
    }

    /// Operations recorded so far.
    pub fn recorded(&self) -> usize {
        self.history.len()
    }

    /// Each key's history checked (a SWAP still unanswered has an unknown
    /// outcome): what is wrong, in words.
    pub fn check(&mut self, now_us: u64) -> Vec<String> {
        for client in 0..self.clients.len() {
            self.end(client, Outcome::Unknown, now_us);
        }
        let history = std::mem::take(&mut self.history);
        let reports = linearizable::check_histories(&Register::<u64>::default(), history, &Limits::default());
        reports
            .into_iter()
            .filter(|report| !matches!(report.verdict, Verdict::Linearizable))
            .map(|report| format!("item-{}: {}", report.key, report.verdict.describe(&report.history)))
            .collect()
    }
}
