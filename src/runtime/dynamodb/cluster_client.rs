//! How the DynamoDB endpoint reaches the cluster: node-made requests of the
//! node's own protocol (GET, SWAP, REMOVE, READ_BUCKET on item keys),
//! handed to a router of this node ([`Router::submit`]) so they are routed,
//! forwarded, replicated and answered exactly as a client's are, the
//! answers coming back to this client's own UDP socket.
//!
//! A batch of requests goes out at once; each is sent again with the same
//! message id until answered (the coordinators execute a write at most once
//! per id), an OVERLOAD is waited out as it asks, and a batch not answered
//! within [`CALL_MS_MAX`] fails as a whole with [`Unavailable`].

use crate::node::router::Router;
use crate::protocol::proto::kv::KVRequest;
use crate::protocol::wire::{self, Command, ErrorCode, MESSAGE_ID_BYTES_MAX};
use dynakv_dynamo::error::{ApiError, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A batch not answered in this long fails: the SDK retries a 500.
pub const CALL_MS_MAX: u64 = 10_000;
/// First resend of an unanswered request; doubled up to [`RESEND_MS_MAX`].
const RESEND_MS_MIN: u64 = 100;
const RESEND_MS_MAX: u64 = 1_000;
/// Requests in one batch (a bucket scan's window, a batch's items).
pub const BATCH_REQUESTS_MAX: usize = 128;

/// One request: command, key and value.
#[derive(Clone, Debug)]
pub struct Call {
    pub command: Command,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// An answer: its code, value and version, and whether its request was
/// sent more than once (then another coordinator may have executed it too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub code: ErrorCode,
    pub value: Vec<u8>,
    pub version: i32,
    /// The reply had a value (a CONFLICT that reports the item's record
    /// does, with an empty one for no item; one from the reply cache does
    /// not).
    pub has_value: bool,
    pub resent: bool,
}

/// The cluster did not answer a batch in time, or answered that it cannot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    TimedOut,
    OutOfSpace,
    Failed,
}

pub struct ClusterClient {
    router: Router,
    socket: UdpSocket,
    address: SocketAddr,
    id_prefix: [u8; 8],
    next_id: u64,
    buffer: Vec<u8>,
}

/// A request of a batch in flight.
struct InFlight {
    id: [u8; 16],
    datagram: Vec<u8>,
    resend_at: Instant,
    resend_ms: u64,
}

impl ClusterClient {
    /// A client on a socket of its own, bound to `host` (the node's
    /// address, which every peer can reach) at a free port.
    pub fn new(router: Router, host: std::net::IpAddr, id_seed: u64) -> std::io::Result<ClusterClient> {
        let socket = UdpSocket::bind(SocketAddr::new(host, 0))?;
        let address = socket.local_addr()?;
        let seed = format!("{id_seed} {address} {} {:?}", std::process::id(), Instant::now());
        let digest = blake3::hash(seed.as_bytes());
        let mut id_prefix = [0u8; 8];
        id_prefix.copy_from_slice(&digest.as_bytes()[..8]);
        Ok(ClusterClient {
            router,
            socket,
            address,
            id_prefix,
            next_id: 0,
            buffer: vec![0; wire::DATAGRAM_BYTES_MAX + 1],
        })
    }

    /// An id no other request or call of this node's clients has (a
    /// write's chunks are kept under one).
    pub fn unique_id(&mut self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.id_prefix);
        id[8..].copy_from_slice(&self.next_id.to_le_bytes());
        self.next_id += 1;
        id
    }

    /// One request.
    pub fn call(&mut self, call: Call) -> Result<Answer, Unavailable> {
        self.call_many(vec![call]).map(|mut answers| answers.remove(0))
    }

    /// Every request of `calls` (at most [`BATCH_REQUESTS_MAX`] are sent
    /// at once; more go in turns), answered in order.
    pub fn call_many(&mut self, calls: Vec<Call>) -> Result<Vec<Answer>, Unavailable> {
        let mut answers = Vec::with_capacity(calls.len());
        for chunk in calls.chunks(BATCH_REQUESTS_MAX) {
            answers.extend(self.call_batch(chunk)?);
        }
        Ok(answers)
    }

    fn call_batch(&mut self, calls: &[Call]) -> Result<Vec<Answer>, Unavailable> {
        let now = Instant::now();
        let mut flights: Vec<InFlight> = calls.iter().map(|call| self.flight(call, now)).collect();
        let mut answers: Vec<Option<Answer>> = vec![None; calls.len()];
        let datagrams: Vec<Vec<u8>> = flights.iter().map(|f| f.datagram.clone()).collect();
        self.router.submit(&datagrams, self.address);
        let deadline = now + Duration::from_millis(CALL_MS_MAX);
        while answers.iter().any(Option::is_none) {
            let now = Instant::now();
            if now >= deadline {
                return Err(Unavailable::TimedOut);
            }
            self.resend_due(&mut flights, &answers, now);
            let next = flights
                .iter()
                .zip(&answers)
                .filter(|(_, a)| a.is_none())
                .map(|(f, _)| f.resend_at);
            let wake = next.min().unwrap_or(deadline).min(deadline);
            self.receive_until(wake, &mut flights, &mut answers)?;
        }
        Ok(answers.into_iter().flatten().collect())
    }

    fn flight(&mut self, call: &Call, now: Instant) -> InFlight {
        let id = self.unique_id();
        let mut request = KVRequest::new();
        request.command = call.command as u32;
        request.key = Some(call.key.clone());
        request.value = Some(call.value.clone());
        let datagram = wire::encode_request(&id, &request);
        InFlight {
            id,
            datagram,
            resend_at: now + Duration::from_millis(RESEND_MS_MIN),
            resend_ms: RESEND_MS_MIN,
        }
    }

    fn resend_due(&mut self, flights: &mut [InFlight], answers: &[Option<Answer>], now: Instant) {
        let mut due = Vec::new();
        for (flight, answer) in flights.iter_mut().zip(answers) {
            if answer.is_none() && flight.resend_at <= now {
                flight.resend_ms = (flight.resend_ms * 2).min(RESEND_MS_MAX);
                flight.resend_at = now + Duration::from_millis(flight.resend_ms);
                due.push(flight.datagram.clone());
            }
        }
        if !due.is_empty() {
            self.router.submit(&due, self.address);
        }
    }

    /// Takes answers until `wake` or the last answer; an OVERLOAD
    /// reschedules its request.
    fn receive_until(
        &mut self,
        wake: Instant,
        flights: &mut [InFlight],
        answers: &mut [Option<Answer>],
    ) -> Result<(), Unavailable> {
        while answers.iter().any(Option::is_none) {
            let left = wake.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let _ = self.socket.set_read_timeout(Some(left.max(Duration::from_millis(1))));
            let Ok((len, _)) = self.socket.recv_from(&mut self.buffer) else {
                return Ok(());
            };
            let Ok((id, payload)) = wire::decode_msg(&self.buffer[..len]) else {
                continue;
            };
            let Some(at) = flights.iter().position(|f| f.id[..] == id[..]) else {
                continue;
            };
            if answers[at].is_some() || id.len() > MESSAGE_ID_BYTES_MAX {
                continue;
            }
            let Ok(response) = protobuf::Message::parse_from_bytes(&payload) else {
                continue;
            };
            let response: crate::protocol::proto::kv::KVResponse = response;
            let code = ErrorCode::from_code(response.errCode.unwrap_or(u32::MAX)).unwrap_or(ErrorCode::InternalFailure);
            match code {
                ErrorCode::Overload => {
                    let wait = u64::try_from(response.overloadWaitTime.unwrap_or(0)).unwrap_or(0);
                    flights[at].resend_at = Instant::now() + Duration::from_millis(wait.clamp(1, RESEND_MS_MAX));
                    return Ok(());
                }
                ErrorCode::OutOfSpace => return Err(Unavailable::OutOfSpace),
                ErrorCode::InternalFailure => return Err(Unavailable::Failed),
                _ => {
                    answers[at] = Some(Answer {
                        code,
                        has_value: response.value.is_some(),
                        value: response.value.unwrap_or_default(),
                        version: response.version.unwrap_or(0),
                        resent: flights[at].resend_ms > RESEND_MS_MIN,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The answer for a cluster that could not be asked.
pub fn unavailable(error: Unavailable) -> ApiError {
    match error {
        Unavailable::OutOfSpace => ApiError::new(
            ErrorKind::ItemCollectionSizeLimitExceeded,
            "The cluster has no room for this write",
        ),
        Unavailable::TimedOut | Unavailable::Failed => ApiError::new(
            ErrorKind::InternalServerError,
            "The cluster could not complete the request in time; retry",
        ),
    }
}
