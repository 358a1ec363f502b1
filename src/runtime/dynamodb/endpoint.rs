//! The HTTP/1.1 event loop of a node's DynamoDB endpoint. One thread owns
//! the listening socket and every client connection: their receive and
//! send buffers and their timers. It cuts whole requests out of each byte
//! stream with [`http::parse`], hands each to the executors as a [`Job`]
//! over a bounded channel, and writes back the [`Done`] answers they return
//! on another channel, woken by the [`mio::Waker`] made by [`waker`].
//!
//! Everything is bounded. At most `connections_max` connections are open.
//! A connection has at most one request at an executor, and the next one
//! is taken from its buffer only once the answer before it is written, so
//! answers go out in order and a client that does not read them stops being
//! served instead of growing the send buffer. A receive buffer stops
//! growing past `head_bytes_max + body_bytes_max`: the rest waits in the
//! kernel, whose TCP window pushes back on the client.
//!
//! Every refusal is answered: a framing error with its status (then the
//! connection closes), a full job queue with
//! `ProvisionedThroughputExceededException` (the SDKs back off and retry),
//! a request sent too slowly with 408, one connection too many with 503.
//! After an answer that closes the connection, the loop shuts its sending
//! side and reads what the client still sends for a moment ("lingering
//! close"): closing at once with unread bytes would reset the connection
//! and could destroy the answer before the client reads it.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use dynakv_dynamo::error::{ApiError, ErrorKind};
use dynakv_dynamo::http::{self, HttpError, Request};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LISTENER: Token = Token(0);
/// An executor sent a [`Done`]: the token of the [`waker`].
pub const WAKE: Token = Token(1);
/// Connection tokens are their slot plus this.
const FIRST_CONNECTION: usize = 2;
/// How often timeouts are checked (and a failed accept retried).
const TICK: Duration = Duration::from_millis(250);
const EVENTS_CAPACITY: usize = 256;
/// Bytes taken from a socket per read call.
const READ_CHUNK_BYTES: usize = 64 * 1024;
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
pub fn run(
    listener: std::net::TcpListener,
    limits: EndpointLimits,
    jobs: Sender<Job>,
    done: Receiver<Done>,
    poll: Poll,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut endpoint = Endpoint::new(TcpListener::from_std(listener), limits, jobs, done, poll)?;
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
    /// Reading stopped at the inbox's bound, not because the kernel had
    /// nothing more: no event will say there is more to read.
    read_paused: bool,
    /// When the partial request at the front of the inbox was first seen.
    request_started: Option<Instant>,
    /// Last byte read or written, or last answer received.
    last_active: Instant,
    /// In [`Endpoint::ready`].
    queued: bool,
}

enum ReadEnd {
    Open,
    Closed,
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
            outbox: Vec::new(),
            sent: 0,
            in_flight: false,
            continue_sent: false,
            closing: false,
            lingering_since: None,
            read_paused: false,
            request_started: None,
            last_active: now,
            queued: false,
        }
    }

    /// The bytes received and not yet taken as a request.
    fn pending(&self) -> &[u8] {
        self.inbox.get(self.taken..).unwrap_or_default()
    }

    /// Drops the first `bytes` of [`Connection::pending`]. The buffer is
    /// compacted only once half of it is taken, so each byte is moved at
    /// most about once however many pipelined requests it holds.
    fn take(&mut self, bytes: usize) {
        self.taken = self.taken.saturating_add(bytes).min(self.inbox.len());
        if self.taken == self.inbox.len() {
            self.inbox.clear();
            self.taken = 0;
        } else if self.taken * 2 >= self.inbox.len() {
            self.inbox.drain(..self.taken);
            self.taken = 0;
        }
    }

    /// Reads until the kernel has nothing more or the inbox holds more than
    /// `inbox_max` bytes. While lingering, what is read is discarded, and
    /// a client that sends more than `inbox_max` meanwhile is cut off.
    fn read_more(&mut self, scratch: &mut [u8], inbox_max: usize, now: Instant) -> ReadEnd {
        let mut discarded = 0usize;
        loop {
            if self.lingering_since.is_none() && self.pending().len() > inbox_max {
                self.read_paused = true;
                return ReadEnd::Open;
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
                        self.inbox.extend_from_slice(scratch.get(..read).unwrap_or_default());
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.read_paused = false;
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
        self.outbox.clear();
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
}

impl Endpoint {
    fn new(
        mut listener: TcpListener,
        limits: EndpointLimits,
        jobs: Sender<Job>,
        done: Receiver<Done>,
        poll: Poll,
    ) -> io::Result<Endpoint> {
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
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
        })
    }

    fn has_leftovers(&self) -> bool {
        self.accept_pending || self.done_pending || !self.ready.is_empty()
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
        let inbox_max = self.inbox_max();
        let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        match connection.read_more(&mut self.scratch, inbox_max, now) {
            ReadEnd::Open => self.drive(slot, now),
            ReadEnd::Closed => self.close(slot),
        }
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
        let inbox_max = self.inbox_max();
        let limits = self.limits.http;
        let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return Step::Wait;
        };
        if !connection.flush(now) {
            return Step::Close;
        }
        if !connection.outbox.is_empty() || connection.lingering_since.is_some() || connection.in_flight {
            return Step::Wait;
        }
        if connection.closing {
            connection.linger(now);
            return Step::Wait;
        }
        if connection.read_paused && matches!(connection.read_more(&mut self.scratch, inbox_max, now), ReadEnd::Closed)
        {
            return Step::Close;
        }
        match http::parse(connection.pending(), &limits) {
            Ok(Some((request, used))) => {
                connection.take(used);
                connection.continue_sent = false;
                connection.request_started = None;
                let id = connection.id;
                self.dispatch(slot, id, request)
            }
            Ok(None) => connection.await_rest(&limits, inbox_max, now),
            Err(error) => {
                connection.refuse(&error);
                Step::Again
            }
        }
    }

    /// Hands a request to the executors, or answers at once that it cannot.
    fn dispatch(&mut self, slot: usize, connection: u64, request: Request) -> Step {
        let keep_alive = request.keep_alive;
        let (error, keep_alive) = match self.jobs.try_send(Job { connection, request }) {
            Ok(()) => {
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
        // A connection closed meanwhile: the answer has no one to go to.
        let Some(&slot) = self.ids.get(&done.connection) else {
            return;
        };
        let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if !connection.in_flight {
            return;
        }
        connection.in_flight = false;
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
        self.free.push(slot);
    }
}

/// The wall clock for the `Date` of answers.
fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
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
        }
    }

    /// The test executor's answer: `{"target":"<the request's X-Amz-Target>"}`.
    fn answer(job: &Job) -> Done {
        let target = job.request.header("x-amz-target").unwrap_or_default();
        let body = format!("{{\"target\":\"{target}\"}}");
        let keep_alive = job.request.keep_alive;
        let mut response = Vec::new();
        http::json_response("TEST", body.as_bytes(), keep_alive, now_unix_ms(), &mut response);
        Done {
            connection: job.connection,
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
        let executor = move || {
            if gate.recv().is_err() {
                return;
            }
            for job in queue {
                let _ = taken_sender.try_send(job.connection);
                if done_sender.send(answer(&job)).is_err() {
                    return;
                }
                waker.wake().unwrap();
            }
        };
        let name = |what: &str| format!("test-endpoint-{what}");
        thread::Builder::new().name(name("executor")).spawn(executor).unwrap();
        let loop_jobs = jobs.clone();
        let event_loop = move || run(listener, limits, loop_jobs, done, poll);
        thread::Builder::new().name(name("loop")).spawn(event_loop).unwrap();
        Harness {
            address,
            jobs,
            go,
            taken,
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
}
