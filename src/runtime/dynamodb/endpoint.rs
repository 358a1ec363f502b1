//! The HTTP/1.1 event loop of a node's DynamoDB endpoint. One thread owns
//! the listening socket and every client connection: their receive and
//! send buffers and their timers. It cuts whole requests out of each byte
//! stream with [`http::parse`], hands each to the executors as a [`Job`]
//! over a bounded channel, and writes back the [`Done`] answers they return
//! on another channel, woken by the [`mio::Waker`] made by [`waker`].
//!
//! Everything is bounded. At most `connections_max` connections are open
//! (fewer if the process may not open that many descriptors: see [`run`]).
//! A connection has at most one request at an executor, and the next one
//! is taken from its buffer only once the answer before it is written, so
//! answers go out in order and a client that does not read them stops being
//! served instead of growing the send buffer. A receive buffer stops
//! growing past `head_bytes_max + body_bytes_max`: the rest waits in the
//! kernel, whose TCP window pushes back on the client.
//!
//! The connections together are bounded too, by `buffered_bytes_max`: the
//! loop counts the bytes it holds for requests, every receive buffer's
//! capacity (not its length: a buffer keeps its memory when emptied) and
//! each request at the executors until it is answered. A connection reads
//! only while the count is under the budget, so the count passes it by one
//! read at most ([`READ_CHUNK_BYTES`]: a buffer grows by at most that per
//! read). One that is stopped leaves its bytes in the kernel, as at its own
//! bound, and is driven again on the turn after memory is freed (a request
//! answered, a buffer given back, a connection closed). Two things can take
//! the count further: the header fields of the requests at the executors (a
//! few dozen bytes each), and the copy of a request taken from a buffer that
//! holds more (a pipelining client: at most [`INBOX_KEPT_BYTES`] per
//! connection, until the request is answered).
//!
//! Connections each holding part of a request could fill the budget and
//! wait for each other forever. So the top of the budget, one whole request
//! and one read, is kept for one connection at a time, the lead: the first
//! one stopped while there is none (and not waiting for an answer), which
//! reads into it until its request is whole. A request that never becomes
//! whole, stopped or not, is answered 408 after `request_ms` and its
//! connection closed, which frees its bytes and the lead's place. A buffer
//! gives its memory back once its requests are taken (all of it when
//! emptied, what is past [`INBOX_KEPT_BYTES`] otherwise), and a send buffer
//! once written, so an idle connection holds no buffer. The answers are not
//! in this budget: at most one per connection, each freed once written (or
//! with its connection), and their bytes counted apart
//! ([`AnswerBytes`]: the executors refuse large ones past its bound).
//!
//! Every refusal is answered: a framing error with its status (then the
//! connection closes), a full job queue with
//! `ProvisionedThroughputExceededException` (the SDKs back off and retry),
//! a request sent too slowly with 408, one connection too many with 503.
//! After an answer that closes the connection, the loop shuts its sending
//! side and reads what the client still sends for a moment ("lingering
//! close"): closing at once with unread bytes would reset the connection
//! and could destroy the answer before the client reads it.

use super::answers::AnswerBytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use dynakv_dynamo::error::{ApiError, ErrorKind};
use dynakv_dynamo::http::{self, HttpError, Request};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LISTENER: Token = Token(0);
/// An executor sent a [`Done`]: the token of the [`waker`].
pub const WAKE: Token = Token(1);
/// Connection tokens are their slot plus this.
const FIRST_CONNECTION: usize = 2;
/// How often timeouts are checked (and a failed accept retried).
const TICK: Duration = Duration::from_millis(250);
const EVENTS_CAPACITY: usize = 256;
/// Bytes taken from a socket per read call: also the most a receive
/// buffer grows by per read, hence how far past the budget one read goes.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// A receive buffer still holding part of a request keeps at most this
/// much memory once the requests before are taken (an emptied one keeps
/// none): a connection that once sent a big request does not hold its
/// buffer's memory for the ones after.
const INBOX_KEPT_BYTES: usize = 64 * 1024;
/// Descriptors the process keeps open besides the endpoint's connections:
/// the node's and the executors' sockets, the store's files, the polls.
const DESCRIPTORS_OTHER: usize = 64;
/// Connections accepted per turn before the other sockets get theirs.
const ACCEPTS_PER_TURN_MAX: usize = 64;
/// Answers taken from the executors per turn, likewise.
const DONES_PER_TURN_MAX: usize = 1024;
/// Requests one connection may take per turn, so that a client pipelining
/// requests the loop refuses at once cannot keep it from the others.
const REQUESTS_PER_TURN_MAX: usize = 8;
/// How long a connection closing after its answer waits for the client to
/// close first (see the module's doc).
const LINGER: Duration = Duration::from_secs(2);

const REQUEST_TIMEOUT: HttpError = HttpError {
    status: 408,
    reason: "Request Timeout",
};
/// A request whose wire form passes the receive buffer's bound: only a
/// chunked body cut into very many small chunks can.
const REQUEST_TOO_LARGE: HttpError = HttpError {
    status: 413,
    reason: "Request too large",
};

/// What the loop hands to the executors: one whole request of one
/// connection.
#[derive(Debug)]
pub struct Job {
    /// Opaque; never the same for two connections of a process, so a
    /// [`Done`] for a connection closed meanwhile is dropped.
    pub connection: u64,
    pub request: Request,
}

/// What an executor hands back: the whole answer (status line, header
/// fields, body) and whether the connection stays open after it.
#[derive(Debug)]
pub struct Done {
    pub connection: u64,
    pub response: Vec<u8>,
    pub keep_alive: bool,
    /// The bytes of it the executor counted in [`AnswerBytes`], given
    /// back once it is written or its connection is gone.
    pub held: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointLimits {
    /// Open connections; one more is answered 503 and closed.
    pub connections_max: usize,
    pub http: http::Limits,
    /// A connection with nothing to do (or whose client reads nothing of
    /// its answer) closes after this long.
    pub idle_ms: u64,
    /// A request not whole this long after its first byte is answered 408.
    pub request_ms: u64,
    /// Bytes held for requests by all the connections together: their
    /// receive buffers and the requests at the executors (see the module's
    /// doc). At least `head_bytes_max + body_bytes_max` plus one read are
    /// kept for the lead; a smaller budget is raised to that (and then only
    /// the lead reads).
    pub buffered_bytes_max: usize,
}

/// How much of the budget is held, readable from other threads (tests).
#[derive(Debug, Default)]
struct Gauge {
    held: AtomicUsize,
    /// The most ever held.
    peak: AtomicUsize,
    /// Connections stopped for the budget.
    waiting: AtomicUsize,
}

/// The waker executors call after sending a [`Done`]; make it before
/// [`run`], on the poll given to it.
pub fn waker(poll: &Poll) -> io::Result<Arc<Waker>> {
    Ok(Arc::new(Waker::new(poll.registry(), WAKE)?))
}

/// Runs the loop until the process exits (or polling fails): accepts
/// connections on `listener`, hands each whole request to `jobs` (a bounded
/// channel: when it is full the request is refused at once), and writes
/// each answer received on `done` to its connection.
///
/// Each connection is a descriptor: when the process's soft limit on them
/// (1024 by default on many Linux systems) is below what the node needs,
/// it is raised to the hard limit, and `connections_max` lowered to what
/// that allows if it is still short.
pub fn run(
    listener: std::net::TcpListener,
    mut limits: EndpointLimits,
    queues: (Sender<Job>, Receiver<Done>),
    poll: Poll,
    answers: Arc<AnswerBytes>,
) -> io::Result<()> {
    limits.connections_max = connections_allowed(limits.connections_max);
    serve(listener, limits, queues, poll, (Arc::default(), answers))
}

/// [`run`] with a given gauge (the tests read it) and `limits` as given.
fn serve(
    listener: std::net::TcpListener,
    limits: EndpointLimits,
    (jobs, done): (Sender<Job>, Receiver<Done>),
    poll: Poll,
    (gauge, answers): (Arc<Gauge>, Arc<AnswerBytes>),
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut endpoint = Endpoint::new(TcpListener::from_std(listener), limits, jobs, done, poll, gauge)?;
    endpoint.answers = answers;
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    loop {
        // Work left over from the last turn is not announced again by an
        // edge-triggered event: come straight back for it.
        let timeout = if endpoint.has_leftovers() { Duration::ZERO } else { TICK };
        match endpoint.poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        endpoint.turn(&events, Instant::now());
    }
}

/// One client connection.
struct Connection {
    id: u64,
    stream: TcpStream,
    /// Bytes received; those before `taken` were requests already taken.
    inbox: Vec<u8>,
    taken: usize,
    /// The inbox's capacity as counted in the [`Budget`].
    counted: usize,
    /// Bytes to send; those before `sent` are sent.
    outbox: Vec<u8>,
    sent: usize,
    /// A request of this connection is at an executor.
    in_flight: bool,
    /// `100 Continue` was sent for the request at the front of the inbox.
    continue_sent: bool,
    /// Close once the outbox is written.
    closing: bool,
    /// Since when the sending side is shut and reads are discarded.
    lingering_since: Option<Instant>,
    /// Reading stopped at the inbox's bound or the budget's, not because
    /// the kernel had nothing more: no event will say there is more to read.
    read_paused: bool,
    /// In the budget's waiting line.
    waiting: bool,
    /// When the partial request at the front of the inbox was first seen.
    request_started: Option<Instant>,
    /// Last byte read or written, or last answer received.
    last_active: Instant,
    /// In [`Endpoint::ready`].
    queued: bool,
    /// Bytes of the answers in `outbox` counted in [`AnswerBytes`].
    answer_held: usize,
}

enum ReadEnd {
    Open,
    /// Stopped for the budget: to be driven again once memory is freed.
    Budget,
    Closed,
}

/// The bytes the loop holds for requests, against `buffered_bytes_max`
/// (see the module's doc).
struct Budget {
    /// Every inbox's capacity and every request at the executors.
    held: usize,
    /// Reading stops at this count for every connection but the lead...
    shared_max: usize,
    /// ...and at this one for the lead.
    max: usize,
    /// The connection (its id) that may read into the top of the budget.
    lead: Option<u64>,
    /// The bytes of each request at the executors, by connection id: they
    /// are held until its answer comes, even if the connection closes first.
    jobs: HashMap<u64, usize>,
    /// Slots stopped for the budget, the oldest first; each at most once
    /// (its connection's `waiting`), so at most `connections_max`.
    waiting: VecDeque<usize>,
    gauge: Arc<Gauge>,
}

impl Budget {
    fn new(buffered_bytes_max: usize, inbox_max: usize, gauge: Arc<Gauge>) -> Budget {
        // The lead's room: a whole request, and the read that may take the
        // others' count past `shared_max`.
        let lead_room = inbox_max.saturating_add(READ_CHUNK_BYTES);
        let max = buffered_bytes_max.max(lead_room);
        Budget {
            held: 0,
            shared_max: max - lead_room,
            max,
            lead: None,
            jobs: HashMap::new(),
            waiting: VecDeque::new(),
            gauge,
        }
    }

    /// Whether connection `id` may read now; one stopped at the shared
    /// part's end while there is no lead becomes the lead if it `may_lead`.
    fn may_read(&mut self, id: u64, may_lead: bool) -> bool {
        if self.held < self.shared_max {
            return true;
        }
        if self.lead.is_none() && may_lead {
            self.lead = Some(id);
        }
        self.lead == Some(id) && self.held < self.max
    }

    /// Connection `id` has no partial request any more (taken, refused,
    /// closed): it no longer needs the lead's room.
    fn release(&mut self, id: u64) {
        if self.lead == Some(id) {
            self.lead = None;
        }
    }

    /// An inbox's capacity changed from `counted` to `capacity`.
    fn recount(&mut self, counted: &mut usize, capacity: usize) {
        self.held = self.held.saturating_sub(*counted).saturating_add(capacity);
        *counted = capacity;
        self.publish();
    }

    fn job_taken(&mut self, connection: u64, bytes: usize) {
        let before = self.jobs.insert(connection, bytes).unwrap_or(0);
        self.held = self.held.saturating_sub(before).saturating_add(bytes);
        self.publish();
    }

    fn job_done(&mut self, connection: u64) {
        if let Some(bytes) = self.jobs.remove(&connection) {
            self.held = self.held.saturating_sub(bytes);
            self.publish();
        }
    }

    fn publish(&self) {
        self.gauge.held.store(self.held, Ordering::Relaxed);
        self.gauge.peak.fetch_max(self.held, Ordering::Relaxed);
        self.gauge.waiting.store(self.waiting.len(), Ordering::Relaxed);
    }
}

/// What a request at the executors holds: its wire bytes (its body and its
/// header fields are copied from them), and the header fields' strings.
fn request_bytes(request: &Request, wire_bytes: usize) -> usize {
    let fields = request.headers.len().saturating_mul(size_of::<(String, String)>());
    wire_bytes.saturating_add(fields)
}

/// What to do with a connection after a step of [`Endpoint::drive`].
enum Step {
    Again,
    Wait,
    Close,
}

/// What the sweep does with a connection.
enum Verdict {
    Keep,
    Close,
    TimedOut,
}

impl Connection {
    fn new(id: u64, stream: TcpStream, now: Instant) -> Connection {
        Connection {
            id,
            stream,
            inbox: Vec::new(),
            taken: 0,
            counted: 0,
            outbox: Vec::new(),
            sent: 0,
            in_flight: false,
            continue_sent: false,
            closing: false,
            lingering_since: None,
            read_paused: false,
            waiting: false,
            request_started: None,
            last_active: now,
            queued: false,
            answer_held: 0,
        }
    }

    /// The bytes received and not yet taken as a request.
    fn pending(&self) -> &[u8] {
        self.inbox.get(self.taken..).unwrap_or_default()
    }

    /// Drops the first `bytes` of [`Connection::pending`], and gives back
    /// the memory the rest does not need: all of it once the buffer is
    /// empty (an idle connection's buffer would count in the budget), what
    /// is past [`INBOX_KEPT_BYTES`] otherwise. A small buffer is compacted
    /// only once half of it is taken, so each byte is moved at most about
    /// once however many pipelined requests it holds.
    fn take(&mut self, bytes: usize) {
        self.taken = self.taken.saturating_add(bytes).min(self.inbox.len());
        if self.taken == self.inbox.len() {
            self.inbox = Vec::new();
            self.taken = 0;
        } else if self.taken * 2 >= self.inbox.len() || self.inbox.capacity() > INBOX_KEPT_BYTES {
            self.inbox.drain(..self.taken);
            self.taken = 0;
            self.inbox.shrink_to(self.inbox.len().max(INBOX_KEPT_BYTES));
        }
    }

    /// Appends to the inbox, growing it by at most [`READ_CHUNK_BYTES`]
    /// (doubling could add a whole buffer's worth at once), so that a read
    /// takes the budget's count past its bound by one chunk at most.
    fn keep(&mut self, bytes: &[u8]) {
        let (length, capacity) = (self.inbox.len(), self.inbox.capacity());
        let needed = length.saturating_add(bytes.len());
        if needed > capacity {
            let grown = needed.max(capacity.saturating_add(capacity.min(READ_CHUNK_BYTES)));
            self.inbox.reserve_exact(grown.saturating_sub(length));
        }
        self.inbox.extend_from_slice(bytes);
    }

    /// Whether the connection would use the lead's room now to finish a
    /// request: not one waiting for an answer, or for the client to read one.
    fn may_lead(&self) -> bool {
        !self.in_flight && !self.closing && self.lingering_since.is_none() && self.outbox.is_empty()
    }

    /// Counts the inbox's capacity in the budget as it is now.
    fn settle(&mut self, budget: &mut Budget) {
        budget.recount(&mut self.counted, self.inbox.capacity());
    }

    /// Reads until the kernel has nothing more, the inbox holds more than
    /// `inbox_max` bytes or the budget is spent. While lingering, what is
    /// read is discarded (it is not in the budget), and a client that sends
    /// more than `inbox_max` meanwhile is cut off.
    fn read_more(&mut self, scratch: &mut [u8], inbox_max: usize, budget: &mut Budget, now: Instant) -> ReadEnd {
        let mut discarded = 0usize;
        loop {
            if self.lingering_since.is_none() && self.pending().len() > inbox_max {
                self.read_paused = true;
                return ReadEnd::Open;
            }
            if self.lingering_since.is_none() && !budget.may_read(self.id, self.may_lead()) {
                self.read_paused = true;
                return ReadEnd::Budget;
            }
            match self.stream.read(scratch) {
                Ok(0) => return ReadEnd::Closed,
                Ok(read) => {
                    self.last_active = now;
                    if self.lingering_since.is_some() {
                        discarded = discarded.saturating_add(read);
                        if discarded > inbox_max {
                            return ReadEnd::Closed;
                        }
                    } else {
                        self.keep(scratch.get(..read).unwrap_or_default());
                        self.settle(budget);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.read_paused = false;
                    if self.pending().is_empty() {
                        // A lead with no request started needs no room.
                        budget.release(self.id);
                    }
                    return ReadEnd::Open;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return ReadEnd::Closed,
            }
        }
    }

    /// Writes the outbox until it is all sent or the kernel takes no more;
    /// false if the connection failed.
    fn flush(&mut self, now: Instant) -> bool {
        while self.sent < self.outbox.len() {
            match self.stream.write(self.outbox.get(self.sent..).unwrap_or_default()) {
                Ok(0) => return false,
                Ok(written) => {
                    self.sent += written;
                    self.last_active = now;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return true,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        // Freed, not cleared: the next answer comes in a buffer of its own
        // (see `on_done`), and a big one (a page of a Query) should not stay.
        self.outbox = Vec::new();
        self.sent = 0;
        true
    }

    /// Queues the answer to a request the framing refuses; the connection
    /// closes after it, since the next request's first byte is lost.
    fn refuse(&mut self, error: &HttpError) {
        if error.status == 413 {
            // The SDKs read an API error (a body past the node's limit is
            // most likely an item past the node's item size).
            let message = format!("{}: this endpoint takes requests of a bounded size", error.reason);
            let refusal = ApiError::new(ErrorKind::Validation, message);
            http::error_response(&refusal, "0", false, now_unix_ms(), &mut self.outbox);
        } else {
            http::http_error_response(error, now_unix_ms(), &mut self.outbox);
        }
        self.closing = true;
    }

    /// The front of the inbox is not a whole request yet.
    fn await_rest(&mut self, limits: &http::Limits, inbox_max: usize, now: Instant) -> Step {
        if self.pending().is_empty() {
            return Step::Wait;
        }
        if self.read_paused && self.pending().len() > inbox_max {
            // It can never become whole in the buffer.
            self.refuse(&REQUEST_TOO_LARGE);
            return Step::Again;
        }
        self.request_started.get_or_insert(now);
        if !self.continue_sent && http::should_send_continue(self.pending(), limits) == Ok(true) {
            self.continue_sent = true;
            self.outbox.extend_from_slice(http::continue_response());
            return Step::Again;
        }
        Step::Wait
    }

    /// Shuts the sending side once the last answer is written; the client
    /// sees the end of the stream and closes its side.
    fn linger(&mut self, now: Instant) {
        let _ = self.stream.shutdown(Shutdown::Write);
        self.lingering_since = Some(now);
        self.inbox = Vec::new();
        self.taken = 0;
    }

    fn verdict(&self, limits: &EndpointLimits, now: Instant) -> Verdict {
        let over = |since: Instant, ms: u64| now.saturating_duration_since(since) >= Duration::from_millis(ms);
        if let Some(since) = self.lingering_since {
            return if now.saturating_duration_since(since) >= LINGER {
                Verdict::Close
            } else {
                Verdict::Keep
            };
        }
        if self.in_flight {
            // The executor answers in its own time.
            return Verdict::Keep;
        }
        if !self.outbox.is_empty() || self.closing {
            // An answer the client does not read.
            return if over(self.last_active, limits.idle_ms) {
                Verdict::Close
            } else {
                Verdict::Keep
            };
        }
        if self.pending().is_empty() {
            return if over(self.last_active, limits.idle_ms) {
                Verdict::Close
            } else {
                Verdict::Keep
            };
        }
        let started = self.request_started.unwrap_or(self.last_active);
        if over(started, limits.request_ms) {
            Verdict::TimedOut
        } else {
            Verdict::Keep
        }
    }
}

struct Endpoint {
    poll: Poll,
    listener: TcpListener,
    limits: EndpointLimits,
    jobs: Sender<Job>,
    done: Receiver<Done>,
    /// Connections by slot (token minus [`FIRST_CONNECTION`]); at most
    /// `connections_max` slots.
    slots: Vec<Option<Connection>>,
    free: Vec<usize>,
    /// Slots by connection id, for the answers.
    ids: HashMap<u64, usize>,
    next_id: u64,
    next_request_id: u64,
    /// Slots with requests left over from their last turn.
    ready: Vec<usize>,
    accept_pending: bool,
    done_pending: bool,
    last_sweep: Instant,
    scratch: Vec<u8>,
    budget: Budget,
    /// The answers built and not yet written, shared with the executors.
    answers: Arc<AnswerBytes>,
}

impl Endpoint {
    fn new(
        mut listener: TcpListener,
        limits: EndpointLimits,
        jobs: Sender<Job>,
        done: Receiver<Done>,
        poll: Poll,
        gauge: Arc<Gauge>,
    ) -> io::Result<Endpoint> {
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let inbox_max = (limits.http.head_bytes_max).saturating_add(limits.http.body_bytes_max);
        let budget = Budget::new(limits.buffered_bytes_max, inbox_max, gauge);
        Ok(Endpoint {
            poll,
            listener,
            limits,
            jobs,
            done,
            slots: Vec::new(),
            free: Vec::new(),
            ids: HashMap::new(),
            next_id: 1,
            next_request_id: 1,
            ready: Vec::new(),
            // Connections may have queued before the listener was registered.
            accept_pending: true,
            done_pending: true,
            last_sweep: Instant::now(),
            scratch: vec![0; READ_CHUNK_BYTES],
            budget,
            answers: Arc::default(),
        })
    }

    fn has_leftovers(&self) -> bool {
        self.accept_pending || self.done_pending || !self.ready.is_empty() || self.next_waiting().is_some()
    }

    /// The bytes a receive buffer holds before reading stops.
    fn inbox_max(&self) -> usize {
        self.limits
            .http
            .head_bytes_max
            .saturating_add(self.limits.http.body_bytes_max)
    }

    fn turn(&mut self, events: &Events, now: Instant) {
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept(now),
                // The answers are taken below, on every turn.
                WAKE => {}
                Token(token) => {
                    if let Some(slot) = token.checked_sub(FIRST_CONNECTION) {
                        self.on_ready(slot, now);
                    }
                }
            }
        }
        if self.accept_pending {
            self.accept(now);
        }
        self.take_dones(now);
        for slot in std::mem::take(&mut self.ready) {
            if let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                connection.queued = false;
                self.drive(slot, now);
            }
        }
        if now.saturating_duration_since(self.last_sweep) >= TICK {
            self.last_sweep = now;
            self.sweep(now);
            // An accept that failed (out of descriptors) is retried here:
            // no new event may come for connections already queued.
            self.accept(now);
        }
        // Last, once this turn's answers, requests and closes have freed
        // what they free.
        self.resume(now);
    }

    /// The connection stopped for the budget that may read now, if any:
    /// the oldest in line while the shared part has room, else the lead
    /// while its room has (or, if there is none, the oldest that may become
    /// it: one waiting for its answer would hold the room for nothing).
    fn next_waiting(&self) -> Option<usize> {
        let budget = &self.budget;
        if budget.held >= budget.max {
            return None;
        }
        if budget.held < budget.shared_max {
            return budget.waiting.front().copied();
        }
        let connection = |slot: usize| self.slots.get(slot).and_then(Option::as_ref);
        match budget.lead {
            Some(lead) => {
                let slot = *self.ids.get(&lead)?;
                connection(slot)?.waiting.then_some(slot)
            }
            None => (budget.waiting.iter().copied()).find(|&slot| connection(slot).is_some_and(Connection::may_lead)),
        }
    }

    /// Drives again the connections stopped for the budget while it has
    /// room (see [`Endpoint::next_waiting`]). One that stops again goes to
    /// the back of the line, so each is tried at most once per turn.
    fn resume(&mut self, now: Instant) {
        for _ in 0..self.budget.waiting.len() {
            let Some(slot) = self.next_waiting() else {
                return;
            };
            self.unpark(slot);
            self.on_ready(slot, now);
        }
    }

    /// Takes `slot` out of the budget's line.
    fn unpark(&mut self, slot: usize) {
        if let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut)
            && connection.waiting
        {
            connection.waiting = false;
            if let Some(at) = self.budget.waiting.iter().position(|&waiting| waiting == slot) {
                self.budget.waiting.remove(at);
            }
            self.budget.publish();
        }
    }

    fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPTS_PER_TURN_MAX {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream, now),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // WouldBlock: all taken; other errors (out of descriptors,
                // a connection aborted while queued): retried on the tick.
                Err(_) => {
                    self.accept_pending = false;
                    return;
                }
            }
        }
        self.accept_pending = true;
    }

    fn admit(&mut self, mut stream: TcpStream, now: Instant) {
        if self.ids.len() >= self.limits.connections_max {
            return self.turn_away(stream);
        }
        // An answer is one write: Nagle's algorithm would hold its last
        // segment until the client acknowledged the one before.
        let _ = stream.set_nodelay(true);
        let slot = self.free.last().copied().unwrap_or(self.slots.len());
        let token = Token(slot + FIRST_CONNECTION);
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self.poll.registry().register(&mut stream, token, interest).is_err() {
            return;
        }
        if self.free.pop().is_none() {
            self.slots.push(None);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.ids.insert(id, slot);
        if let Some(place) = self.slots.get_mut(slot) {
            *place = Some(Connection::new(id, stream, now));
        }
        // Bytes that came before the registration raise no event.
        self.on_ready(slot, now);
    }

    /// One connection too many: a 503 in one try (a new socket's send
    /// buffer is empty), then closed.
    fn turn_away(&mut self, mut stream: TcpStream) {
        let error = ApiError::new(
            ErrorKind::ServiceUnavailable,
            "The endpoint has too many connections open; retry",
        );
        let mut answer = Vec::new();
        http::error_response(&error, &self.request_id(), false, now_unix_ms(), &mut answer);
        let _ = stream.write(&answer);
        let _ = stream.shutdown(Shutdown::Write);
    }

    /// A unique request id for the answers the loop makes itself.
    fn request_id(&mut self) -> String {
        let id = self.next_request_id;
        self.next_request_id += 1;
        format!("DYNAKV{id:016X}")
    }

    fn on_ready(&mut self, slot: usize, now: Instant) {
        match self.read(slot, now) {
            ReadEnd::Open | ReadEnd::Budget => self.drive(slot, now),
            ReadEnd::Closed => self.close(slot),
        }
    }

    /// Reads what a connection has; one stopped for the budget gets in line.
    fn read(&mut self, slot: usize, now: Instant) -> ReadEnd {
        let inbox_max = self.inbox_max();
        let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return ReadEnd::Open;
        };
        let end = connection.read_more(&mut self.scratch, inbox_max, &mut self.budget, now);
        if matches!(end, ReadEnd::Budget) && !connection.waiting {
            connection.waiting = true;
            self.budget.waiting.push_back(slot);
            self.budget.publish();
        }
        end
    }

    /// Moves a connection on as far as it can go now: writes, takes the
    /// next request when the answer before it is written.
    fn drive(&mut self, slot: usize, now: Instant) {
        for _ in 0..REQUESTS_PER_TURN_MAX {
            match self.step(slot, now) {
                Step::Again => {}
                Step::Wait => return,
                Step::Close => return self.close(slot),
            }
        }
        if let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut)
            && !connection.queued
        {
            connection.queued = true;
            self.ready.push(slot);
        }
    }

    fn step(&mut self, slot: usize, now: Instant) -> Step {
        let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return Step::Wait;
        };
        if !connection.flush(now) {
            return Step::Close;
        }
        if connection.outbox.is_empty() {
            self.answers.release(std::mem::take(&mut connection.answer_held));
        }
        if connection.closing {
            // Its request is refused: it needs no room to finish it.
            self.budget.release(connection.id);
        }
        if !connection.outbox.is_empty() || connection.lingering_since.is_some() || connection.in_flight {
            return Step::Wait;
        }
        if connection.closing {
            connection.linger(now);
            connection.settle(&mut self.budget);
            return Step::Wait;
        }
        if connection.read_paused && matches!(self.read(slot, now), ReadEnd::Closed) {
            return Step::Close;
        }
        self.take_request(slot, now)
    }

    /// Takes the request at the front of the inbox if it is whole.
    fn take_request(&mut self, slot: usize, now: Instant) -> Step {
        let inbox_max = self.inbox_max();
        let limits = self.limits.http;
        let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return Step::Wait;
        };
        match http::parse(connection.pending(), &limits) {
            Ok(Some((request, used))) => {
                connection.take(used);
                connection.settle(&mut self.budget);
                self.budget.release(connection.id);
                connection.continue_sent = false;
                connection.request_started = None;
                let (id, bytes) = (connection.id, request_bytes(&request, used));
                self.dispatch(slot, id, request, bytes)
            }
            Ok(None) => connection.await_rest(&limits, inbox_max, now),
            Err(error) => {
                connection.refuse(&error);
                Step::Again
            }
        }
    }

    /// Hands a request (holding `bytes`) to the executors, or answers at
    /// once that it cannot.
    fn dispatch(&mut self, slot: usize, connection: u64, request: Request, bytes: usize) -> Step {
        let keep_alive = request.keep_alive;
        let (error, keep_alive) = match self.jobs.try_send(Job { connection, request }) {
            Ok(()) => {
                self.budget.job_taken(connection, bytes);
                if let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                    connection.in_flight = true;
                }
                return Step::Wait;
            }
            Err(TrySendError::Full(_)) => (
                ApiError::new(
                    ErrorKind::ProvisionedThroughputExceeded,
                    "The endpoint has too many requests in progress; retry",
                ),
                keep_alive,
            ),
            // No executor will ever answer: close after saying so.
            Err(TrySendError::Disconnected(_)) => (
                ApiError::new(ErrorKind::InternalServerError, "The endpoint has no executors"),
                false,
            ),
        };
        let request_id = self.request_id();
        let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return Step::Wait;
        };
        http::error_response(&error, &request_id, keep_alive, now_unix_ms(), &mut connection.outbox);
        connection.closing |= !keep_alive;
        Step::Again
    }

    fn take_dones(&mut self, now: Instant) {
        for _ in 0..DONES_PER_TURN_MAX {
            let Ok(done) = self.done.try_recv() else {
                self.done_pending = false;
                return;
            };
            self.on_done(done, now);
        }
        self.done_pending = true;
    }

    fn on_done(&mut self, done: Done, now: Instant) {
        // The request is freed whether or not its connection is still open.
        self.budget.job_done(done.connection);
        // A connection closed meanwhile: the answer has no one to go to.
        let connection = (self.ids.get(&done.connection))
            .and_then(|&slot| Some(slot).zip(self.slots.get_mut(slot).and_then(Option::as_mut)));
        let Some((slot, connection)) = connection.filter(|(_, connection)| connection.in_flight) else {
            self.answers.release(done.held);
            return;
        };
        connection.in_flight = false;
        connection.answer_held += done.held;
        if connection.outbox.is_empty() {
            connection.outbox = done.response;
            connection.sent = 0;
        } else {
            connection.outbox.extend_from_slice(&done.response);
        }
        connection.closing |= !done.keep_alive;
        connection.last_active = now;
        self.drive(slot, now);
    }

    /// Closes connections idle or lingering too long, answers 408 to
    /// requests sent too slowly.
    fn sweep(&mut self, now: Instant) {
        for slot in 0..self.slots.len() {
            let verdict = (self.slots.get(slot).and_then(Option::as_ref))
                .map_or(Verdict::Keep, |connection| connection.verdict(&self.limits, now));
            match verdict {
                Verdict::Keep => {}
                Verdict::Close => self.close(slot),
                Verdict::TimedOut => {
                    if let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                        connection.refuse(&REQUEST_TIMEOUT);
                    }
                    self.drive(slot, now);
                }
            }
        }
    }

    fn close(&mut self, slot: usize) {
        let Some(mut connection) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut connection.stream);
        self.ids.remove(&connection.id);
        self.answers.release(connection.answer_held);
        self.budget.recount(&mut connection.counted, 0);
        self.budget.release(connection.id);
        if connection.waiting
            && let Some(at) = self.budget.waiting.iter().position(|&waiting| waiting == slot)
        {
            self.budget.waiting.remove(at);
            self.budget.publish();
        }
        self.free.push(slot);
    }
}

/// The wall clock for the `Date` of answers.
fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// `wanted` connections, or as many as the process's descriptor limit
/// allows once its soft limit is raised to the hard one (see [`run`]).
fn connections_allowed(wanted: usize) -> usize {
    let needed = wanted.saturating_add(DESCRIPTORS_OTHER);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the plain C struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        // Unknown: an accept out of descriptors is retried on the tick.
        return wanted;
    }
    if descriptors(limit.rlim_cur) < needed && limit.rlim_max > limit.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the plain C struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            crate::log!(
                "dynamodb_descriptors",
                "raised the open files limit from {} to {} for the DynamoDB endpoint's connections",
                limit.rlim_cur,
                raised.rlim_cur
            );
            limit = raised;
        }
    }
    let allowed = connections_within(wanted, descriptors(limit.rlim_cur));
    if allowed < wanted {
        crate::log!(
            "dynamodb_connections_capped",
            "the DynamoDB endpoint takes at most {allowed} connections, not {wanted}: \
             the process may open {} files (hard limit {})",
            limit.rlim_cur,
            limit.rlim_max
        );
    }
    allowed
}

/// A descriptor limit as a count (`RLIM_INFINITY` is the largest).
fn descriptors(limit: libc::rlim_t) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// The connections `soft` descriptors leave room for: `wanted` at most,
/// one at least (without any, every client would be turned away).
fn connections_within(wanted: usize, soft: usize) -> usize {
    wanted.min(soft.saturating_sub(DESCRIPTORS_OTHER).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;
    use std::net::{SocketAddr, TcpStream as StdStream};
    use std::thread;

    /// How long a test waits for any one answer before it fails.
    const PATIENCE: Duration = Duration::from_secs(5);

    fn limits(connections_max: usize) -> EndpointLimits {
        EndpointLimits {
            connections_max,
            http: http::Limits::default(),
            idle_ms: 60_000,
            request_ms: 60_000,
            // Far more than the tests below send, past the lead's room
            // (`head_bytes_max + body_bytes_max`, 16 MiB here).
            buffered_bytes_max: 64 * 1024 * 1024,
        }
    }

    /// A target whose answer is larger than the kernel's socket buffers.
    const BIG: &str = "Big";

    /// The test executor's answer: `{"target":"<the request's X-Amz-Target>"}`
    /// (padded to 16 MiB for [`BIG`]).
    fn answer(job: &Job) -> Done {
        let target = job.request.header("x-amz-target").unwrap_or_default();
        let body = if target == BIG {
            format!("{{\"target\":\"{target}\",\"pad\":\"{}\"}}", "x".repeat(16 << 20))
        } else {
            format!("{{\"target\":\"{target}\"}}")
        };
        let keep_alive = job.request.keep_alive;
        let mut response = Vec::new();
        http::json_response("TEST", body.as_bytes(), keep_alive, now_unix_ms(), &mut response);
        Done {
            connection: job.connection,
            held: response.len(),
            response,
            keep_alive,
        }
    }

    struct Harness {
        address: SocketAddr,
        /// Another sender of the loop's job queue, to fill it.
        jobs: Sender<Job>,
        /// Lets a gated executor start taking jobs.
        go: Sender<()>,
        /// The connection of each job the executor took.
        taken: Receiver<u64>,
        /// The loop's budget.
        gauge: Arc<Gauge>,
        /// The answers the executor built and the loop has not written.
        answers: Arc<AnswerBytes>,
    }

    /// A loop on a port of 127.0.0.1 with a job queue of `capacity`, and an
    /// executor that answers every job (once told to, if `gated`).
    fn start(limits: EndpointLimits, capacity: usize, gated: bool) -> Harness {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let poll = Poll::new().unwrap();
        let waker = waker(&poll).unwrap();
        let (jobs, queue) = bounded::<Job>(capacity);
        let (done_sender, done) = bounded::<Done>(64);
        let (go, gate) = bounded::<()>(1);
        let (taken_sender, taken) = bounded::<u64>(64);
        if !gated {
            go.send(()).unwrap();
        }
        let answers = Arc::new(AnswerBytes::default());
        let executor_answers = answers.clone();
        let executor = move || {
            if gate.recv().is_err() {
                return;
            }
            for job in queue {
                let _ = taken_sender.try_send(job.connection);
                let done = answer(&job);
                executor_answers.hold(done.held);
                if done_sender.send(done).is_err() {
                    return;
                }
                waker.wake().unwrap();
            }
        };
        let name = |what: &str| format!("test-endpoint-{what}");
        thread::Builder::new().name(name("executor")).spawn(executor).unwrap();
        let loop_jobs = jobs.clone();
        let gauge = Arc::new(Gauge::default());
        let loop_gauge = gauge.clone();
        let loop_answers = answers.clone();
        let event_loop = move || serve(listener, limits, (loop_jobs, done), poll, (loop_gauge, loop_answers));
        thread::Builder::new().name(name("loop")).spawn(event_loop).unwrap();
        Harness {
            address,
            jobs,
            go,
            taken,
            gauge,
            answers,
        }
    }

    fn request(target: &str) -> String {
        format!(
            "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: {target}\r\n\
             Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{{}}"
        )
    }

    fn echoed(target: &str) -> Vec<u8> {
        format!("{{\"target\":\"{target}\"}}").into_bytes()
    }

    /// A client reading raw HTTP answers.
    struct Client {
        stream: StdStream,
        received: Vec<u8>,
    }

    impl Client {
        fn connect(address: SocketAddr) -> Client {
            let stream = StdStream::connect(address).unwrap();
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            Client {
                stream,
                received: Vec::new(),
            }
        }

        fn send(&mut self, bytes: &str) {
            self.stream.write_all(bytes.as_bytes()).unwrap();
        }

        /// Reads once more; false at the end of the stream.
        fn fill(&mut self) -> bool {
            let mut chunk = [0u8; 4096];
            let read = self.stream.read(&mut chunk).expect("an answer in time");
            self.received.extend_from_slice(&chunk[..read]);
            read > 0
        }

        /// The next answer: its status, head and body.
        fn response(&mut self) -> (u16, String, Vec<u8>) {
            let head_end = loop {
                if let Some(at) = self.received.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                assert!(self.fill(), "closed before a whole head");
            };
            let head = String::from_utf8(self.received[..head_end].to_vec()).unwrap();
            let status = head.split(' ').nth(1).unwrap().parse().unwrap();
            let length = (head.lines())
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while self.received.len() < head_end + length {
                assert!(self.fill(), "closed before a whole body");
            }
            let body = self.received[head_end..head_end + length].to_vec();
            self.received.drain(..head_end + length);
            (status, head, body)
        }

        /// Whether the server closed the connection, once what it sent is read.
        fn closed(&mut self) -> bool {
            let mut chunk = [0u8; 64];
            match self.stream.read(&mut chunk) {
                Ok(read) => read == 0 && self.received.is_empty(),
                Err(error) => error.kind() == io::ErrorKind::ConnectionReset,
            }
        }
    }

    #[test]
    fn an_answer_counts_until_it_is_written_or_its_unread_connection_closes() {
        let harness = start(limits(8), 8, false);
        let mut reader = Client::connect(harness.address);
        reader.send(&request(BIG));
        let (status, _, body) = reader.response();
        assert_eq!((status, body.len() > 16 << 20), (200, true));
        // The connection stays open (idle for a minute at most).
        until("a written answer is given back", || harness.answers.held() == 0);
        let mut limits = limits(8);
        limits.idle_ms = 300;
        let harness = start(limits, 8, false);
        let held = || harness.answers.held();
        let mut unread = Client::connect(harness.address);
        unread.send(&request(BIG));
        until("the answer is built", || held() > 16 << 20);
        // The client reads nothing: the answer waits in the loop until the
        // connection has been idle for `idle_ms`.
        until("the idle connection closes and gives it back", || held() == 0);
        drop(unread);
    }

    #[test]
    fn answers_two_requests_on_one_connection_in_order() {
        let harness = start(limits(8), 16, false);
        let mut client = Client::connect(harness.address);
        for target in ["DynamoDB_20120810.ListTables", "DynamoDB_20120810.GetItem"] {
            client.send(&request(target));
            let (status, head, body) = client.response();
            assert_eq!(status, 200, "{head}");
            assert!(head.contains("Connection: keep-alive"), "{head}");
            assert_eq!(body, echoed(target));
        }
    }

    #[test]
    fn answers_pipelined_requests_in_order() {
        let harness = start(limits(8), 16, false);
        let mut client = Client::connect(harness.address);
        client.send(&(request("First") + &request("Second") + &request("Third")));
        for target in ["First", "Second", "Third"] {
            let (status, _, body) = client.response();
            assert_eq!((status, body), (200, echoed(target)));
        }
    }

    #[test]
    fn answers_a_malformed_head_400_and_closes() {
        let harness = start(limits(8), 16, false);
        let mut client = Client::connect(harness.address);
        client.send("GET  / HTTP/1.1\r\nHost: h\r\n\r\n");
        let (status, head, body) = client.response();
        assert_eq!(status, 400, "{head}");
        assert!(head.contains("Connection: close"), "{head}");
        assert_eq!(body, b"Malformed request head");
        assert!(client.closed());
    }

    #[test]
    fn refuses_a_connection_past_the_limit() {
        let harness = start(limits(2), 16, false);
        let mut open: Vec<Client> = (0..2).map(|_| Client::connect(harness.address)).collect();
        // An answer on each proves the loop has taken both.
        for client in &mut open {
            client.send(&request("Open"));
            assert_eq!(client.response().0, 200);
        }
        let mut third = Client::connect(harness.address);
        while third.fill() {}
        let said = String::from_utf8_lossy(&third.received).to_string();
        assert!(said.is_empty() || said.starts_with("HTTP/1.1 503 "), "{said}");
        assert!(
            said.is_empty() || said.contains("ServiceUnavailableException"),
            "{said}"
        );
        for client in &mut open {
            client.send(&request("Still"));
            let (status, _, body) = client.response();
            assert_eq!((status, body), (200, echoed("Still")));
        }
    }

    #[test]
    fn answers_provisioned_throughput_exceeded_when_the_job_queue_is_full() {
        let harness = start(limits(8), 1, true);
        // The queue's one place is taken by a job of no connection; the
        // executor waits to be told to start.
        let filler = Request {
            method: "POST".to_string(),
            target: "/".to_string(),
            minor_version: 1,
            headers: Vec::new(),
            body: Vec::new(),
            keep_alive: true,
            expects_continue: false,
        };
        harness
            .jobs
            .send(Job {
                connection: u64::MAX,
                request: filler,
            })
            .unwrap();
        let mut client = Client::connect(harness.address);
        client.send(&request("Refused"));
        let (status, head, body) = client.response();
        assert_eq!(status, 400, "{head}");
        assert!(head.contains("Connection: keep-alive"), "{head}");
        let body = String::from_utf8(body).unwrap();
        assert!(body.contains("#ProvisionedThroughputExceededException"), "{body}");
        // Once the executor has taken the filler (whose answer is dropped:
        // no connection has its id), the same connection is served.
        harness.go.send(()).unwrap();
        assert_eq!(harness.taken.recv_timeout(PATIENCE), Ok(u64::MAX));
        client.send(&request("Served"));
        let (status, _, body) = client.response();
        assert_eq!((status, body), (200, echoed("Served")));
    }

    #[test]
    fn sends_100_continue_before_the_answer() {
        let harness = start(limits(8), 16, false);
        let mut client = Client::connect(harness.address);
        client.send(
            "POST / HTTP/1.1\r\nHost: h\r\nX-Amz-Target: Continued\r\nExpect: 100-continue\r\n\
             Content-Length: 2\r\n\r\n",
        );
        let (status, head, body) = client.response();
        assert_eq!(head, "HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!((status, body.len()), (100, 0));
        client.send("{}");
        let (status, _, body) = client.response();
        assert_eq!((status, body), (200, echoed("Continued")));
    }

    #[test]
    fn answers_408_to_a_request_sent_too_slowly_and_closes_idle_connections() {
        let harness = start(
            EndpointLimits {
                idle_ms: 100,
                request_ms: 100,
                ..limits(8)
            },
            16,
            false,
        );
        let mut slow = Client::connect(harness.address);
        let mut idle = Client::connect(harness.address);
        slow.send("POST / HTTP/1.1\r\nHost");
        let (status, head, body) = slow.response();
        assert_eq!(
            (status, body.as_slice()),
            (408, b"Request Timeout".as_slice()),
            "{head}"
        );
        assert!(slow.closed());
        assert!(idle.closed());
    }

    #[test]
    fn closes_after_an_answer_that_says_so() {
        let harness = start(limits(8), 16, false);
        let mut client = Client::connect(harness.address);
        let last = request("Last").replace("Host: localhost\r\n", "Host: localhost\r\nConnection: close\r\n");
        client.send(&(last + &request("Never")));
        let (status, head, body) = client.response();
        assert_eq!((status, body), (200, echoed("Last")));
        assert!(head.contains("Connection: close"), "{head}");
        assert!(client.closed());
    }

    /// Head and body bytes the loop may hold of one connection:
    /// `head_bytes_max` (16 KiB) and a body of at most 48 KiB.
    const INBOX_MAX: usize = 16 * 1024 + 48 * 1024;

    /// Limits whose budget keeps `shared` bytes for all connections, past
    /// the lead's room of a whole request and one read.
    fn budget_limits(shared: usize) -> EndpointLimits {
        EndpointLimits {
            http: http::Limits {
                body_bytes_max: 48 * 1024,
                ..http::Limits::default()
            },
            buffered_bytes_max: shared + INBOX_MAX + READ_CHUNK_BYTES,
            ..limits(16)
        }
    }

    /// A request with a body of `body_bytes`, cut in two after
    /// `first_body_bytes` of its body.
    fn big_request(target: &str, body_bytes: usize, first_body_bytes: usize) -> (String, String) {
        let mut whole = format!(
            "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: {target}\r\n\
             Content-Type: application/x-amz-json-1.0\r\nContent-Length: {body_bytes}\r\n\r\n"
        );
        let head_bytes = whole.len();
        whole.push_str(&"x".repeat(body_bytes));
        let rest = whole.split_off(head_bytes + first_body_bytes);
        (whole, rest)
    }

    /// Waits for the loop to reach a state the tests can only observe.
    fn until(what: &str, reached: impl Fn() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !reached() {
            assert!(Instant::now() < deadline, "not in time: {what}");
            thread::yield_now();
        }
    }

    #[test]
    fn holds_at_most_the_budget_and_answers_every_request() {
        const CLIENTS: usize = 6;
        const SHARED: usize = 64 * 1024;
        let limits = budget_limits(SHARED);
        let harness = start(limits, 16, false);
        let gauge = harness.gauge.clone();
        let mut clients: Vec<Client> = (0..CLIENTS).map(|_| Client::connect(harness.address)).collect();
        let halves: Vec<_> = (0..CLIENTS)
            .map(|i| big_request(&format!("Big{i}"), 40 * 1024, 20 * 1024))
            .collect();
        // Six first halves (about 121 KiB) pass the shared part: the lead
        // takes one more, and some connection must stop for the budget.
        for (client, (first, _)) in clients.iter_mut().zip(&halves) {
            client.send(first);
        }
        until("a connection stopped for the budget", || {
            gauge.waiting.load(Ordering::Relaxed) > 0
        });
        for (client, (_, rest)) in clients.iter_mut().zip(&halves) {
            client.send(rest);
        }
        for (i, client) in clients.iter_mut().enumerate() {
            let (status, head, body) = client.response();
            assert_eq!((status, body), (200, echoed(&format!("Big{i}"))), "{head}");
        }
        // Past the budget by one read at most, and by the header fields of
        // the requests at the executors (a few dozen bytes each).
        let peak = gauge.peak.load(Ordering::Relaxed);
        let bound = limits.buffered_bytes_max + READ_CHUNK_BYTES + CLIENTS * 1024;
        assert!(peak <= bound, "held {peak} bytes, more than {bound}");
        assert!(peak >= SHARED, "held {peak} bytes: the budget was never reached");
        // Every byte counted is given back once the connections close.
        drop(clients);
        until("the budget emptied", || gauge.held.load(Ordering::Relaxed) == 0);
    }

    #[test]
    fn resumes_a_connection_stopped_for_the_budget_once_another_request_completes() {
        let harness = start(budget_limits(16 * 1024), 16, false);
        let gauge = harness.gauge.clone();
        let mut first = Client::connect(harness.address);
        let (begun, rest) = big_request("First", 40 * 1024, 30 * 1024);
        first.send(&begun);
        // Past the shared part: the first connection is the lead.
        until("the first request's start held", || {
            gauge.held.load(Ordering::Relaxed) >= 30 * 1024
        });
        let mut second = Client::connect(harness.address);
        second.send(&request("Second"));
        until("the second connection stopped for the budget", || {
            gauge.waiting.load(Ordering::Relaxed) == 1
        });
        first.send(&rest);
        let (status, _, body) = first.response();
        assert_eq!((status, body), (200, echoed("First")));
        let (status, _, body) = second.response();
        assert_eq!((status, body), (200, echoed("Second")));
        assert_eq!(gauge.waiting.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn answers_408_to_a_lead_that_never_finishes_and_serves_the_others() {
        let harness = start(
            EndpointLimits {
                request_ms: 200,
                ..budget_limits(16 * 1024)
            },
            16,
            false,
        );
        let gauge = harness.gauge.clone();
        let mut stuck = Client::connect(harness.address);
        stuck.send(&big_request("Stuck", 40 * 1024, 30 * 1024).0);
        until("the stuck request's start held", || {
            gauge.held.load(Ordering::Relaxed) >= 30 * 1024
        });
        let mut waiting = Client::connect(harness.address);
        waiting.send(&request("Waiting"));
        until("the second connection stopped for the budget", || {
            gauge.waiting.load(Ordering::Relaxed) == 1
        });
        let (status, head, _) = stuck.response();
        assert_eq!(status, 408, "{head}");
        assert!(stuck.closed());
        let (status, _, body) = waiting.response();
        assert_eq!((status, body), (200, echoed("Waiting")));
    }

    #[test]
    fn takes_the_connections_the_descriptors_allow() {
        assert_eq!(connections_within(1024, 20_000), 1024);
        assert_eq!(connections_within(1024, 1024), 1024 - DESCRIPTORS_OTHER);
        assert_eq!(connections_within(1024, 10), 1);
        // The process's limit here lets a test's few connections through.
        assert_eq!(connections_allowed(8), 8);
    }
}
