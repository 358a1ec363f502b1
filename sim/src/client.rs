//! Simulated clients, as the graders' clients behave: one operation at a
//! time, a new message id per operation, retries of the same datagram to
//! the same node on the schedule 150, 450, 1350, 2500, 2000 ms, and after
//! OVERLOAD a wait and a new id (and node). Each client owns a few keys.

use dynakv::protocol::client::RETRY_TIMEOUTS_MS;
use dynakv::protocol::wire::{self, Command};
use std::net::SocketAddr;

/// What a client is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    Put {
        value: Vec<u8>,
    },
    Get,
    Remove,
    /// WIPEOUT of one node (the operator's script).
    Wipeout,
    /// SHUTDOWN of one node (a crash, the protocol's way).
    Shutdown,
}

/// One operation in flight.
#[derive(Clone, Debug)]
pub struct Op {
    pub kind: OpKind,
    /// The key (index in the history), for keyed operations.
    pub key: Option<usize>,
    /// The write's index among the key's writes.
    pub write: Option<usize>,
    pub id: [u8; 16],
    pub datagram: Vec<u8>,
    pub node: usize,
    /// Sends so far of this datagram.
    pub sends: usize,
    pub invoked_us: u64,
    /// Whether a node named in the script must be the target (no re-pick).
    pub pinned: bool,
    /// When the run of OVERLOAD answers it is in began, and when the last
    /// came (None: not in one).
    pub overloaded_since_us: Option<(u64, u64)>,
}

pub struct Client {
    pub index: usize,
    pub addr: SocketAddr,
    /// Keys this client owns (indexes in the history).
    pub keys: Vec<usize>,
    pub op: Option<Op>,
    /// Counts message ids and values.
    counter: u64,
    /// The timer event that counts; older ones are ignored.
    pub token: u64,
    /// Operator script (WIPEOUT, SHUTDOWN), run before any keyed work.
    pub script: Vec<(OpKind, usize)>,
    /// Set: no new keyed operation starts.
    pub held: bool,
}

impl Client {
    pub fn new(index: usize, keys: Vec<usize>) -> Client {
        let addr = SocketAddr::from(([10, 1, (index / 250) as u8, (index % 250) as u8 + 1], 40_000));
        Client {
            index,
            addr,
            keys,
            op: None,
            counter: 0,
            token: 0,
            script: Vec::new(),
            held: false,
        }
    }

    /// A fresh message id (16 bytes: client, counter, padding).
    pub fn next_id(&mut self) -> [u8; 16] {
        self.counter += 1;
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&(self.index as u32).to_be_bytes());
        id[4..12].copy_from_slice(&self.counter.to_be_bytes());
        id
    }

    /// A value no other write of any key has.
    pub fn next_value(&mut self) -> Vec<u8> {
        self.counter += 1;
        format!("c{}-w{}", self.index, self.counter).into_bytes()
    }

    pub fn next_token(&mut self) -> u64 {
        self.token += 1;
        self.token
    }
}

/// The request datagram of an operation on `key`.
pub fn request(id: &[u8], kind: &OpKind, key: Option<&[u8]>, version: i32) -> Vec<u8> {
    let (command, value) = match kind {
        OpKind::Put { value } => (Command::Put, Some(value.as_slice())),
        OpKind::Get => (Command::Get, None),
        OpKind::Remove => (Command::Remove, None),
        OpKind::Wipeout => (Command::Wipeout, None),
        OpKind::Shutdown => (Command::Shutdown, None),
    };
    let version = matches!(kind, OpKind::Put { .. }).then_some(version);
    let request = dynakv::protocol::client::request(command, key, value, version);
    wire::encode_request(id, &request)
}

/// How long to wait after the `sends`-th send; `None` when it was the last.
pub fn timeout_after(sends: usize) -> Option<u64> {
    RETRY_TIMEOUTS_MS.get(sends.checked_sub(1)?).copied()
}
