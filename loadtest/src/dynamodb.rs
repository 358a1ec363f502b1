//! DynamoDB load: closed-loop load on any server speaking the DynamoDB JSON
//! 1.0 protocol over HTTP/1.1 (dynakv's endpoint, dynalite, DynamoDB Local).
//!
//! This module owns the whole run: the endpoints' URLs; a minimal HTTP/1.1
//! keep-alive client (requests carrying a fixed dummy SigV4-looking
//! `Authorization`, since the servers under test take unsigned requests but
//! some want the header; answers framed by `Content-Length`, every request
//! under a 5 s deadline and every answer under a 16 MiB bound); the table's
//! life (CreateTable, DescribeTable until ACTIVE, the fill with PutItem,
//! DeleteTable); the load (one thread per connection, each a GetItem or a
//! PutItem of a random existing key at a time); the classification of the
//! answers; and the report, as text and as JSON.

use crate::histogram::Histogram;
use crate::rng::Rng;
use rand::{Rng as _, RngCore as _};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Longest a request may take, connecting, sending and reading included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of a response head, at most.
pub const HEAD_BYTES_MAX: usize = 16 * 1024;
/// Bytes of a response body, at most.
pub const BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;
/// Longest the table may take to become ACTIVE.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two DescribeTable calls while the table is created.
const DESCRIBE_INTERVAL: Duration = Duration::from_millis(100);
/// Tries of one PutItem of the fill before the run is given up.
const FILL_ATTEMPTS_MAX: u32 = 20;
/// Distinct failures kept for the report.
const FAILURES_KEPT: usize = 8;
/// Characters of a failed answer's body quoted in the report.
const QUOTED_BODY_CHARS: usize = 160;
/// A SigV4-looking `Authorization` value: no server under test checks the
/// signature, some (dynalite) want the header and its parts to be there.
pub const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=load/20260101/us-east-1/dynamodb/aws4_request, \
                                 SignedHeaders=host, Signature=00";
pub const AMZ_DATE: &str = "20260101T000000Z";
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// A DynamoDB endpoint: its URL, the `Host` header it takes, its address.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub url: String,
    pub host: String,
    pub addr: SocketAddr,
}

impl Endpoint {
    /// `http://HOST[:PORT][/]` (port 80 when none), resolved now.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = (url.strip_prefix("http://")).ok_or_else(|| format!("{url}: expected http://HOST:PORT"))?;
        let host = rest.strip_suffix('/').unwrap_or(rest);
        if host.is_empty() || host.contains('/') {
            return Err(format!("{url}: expected http://HOST:PORT"));
        }
        let with_port = if has_port(host) {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        let addr = (with_port.to_socket_addrs().map_err(|e| format!("{url}: {e}"))?)
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        Ok(Endpoint {
            url: url.to_string(),
            host: host.to_string(),
            addr,
        })
    }
}

/// Whether an authority ends with `:PORT` (an IPv6 address is bracketed).
fn has_port(host: &str) -> bool {
    host.rsplit_once(':').is_some_and(|(name, port)| {
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && (!name.contains(':') || name.ends_with(']'))
    })
}

#[derive(Clone, Debug)]
pub struct DynamoConfig {
    pub endpoints: Vec<Endpoint>,
    pub connections: usize,
    pub duration: Duration,
    pub items: usize,
    pub value_bytes: usize,
    /// Each request is a read with this probability (in %), else a PutItem.
    pub reads_percent: u32,
    pub read_as: ReadAs,
    pub seed: u64,
}

/// How the load reads an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadAs {
    /// GetItem, eventually consistent.
    Get,
    /// GetItem with ConsistentRead.
    GetConsistent,
    /// Query of the item's partition, eventually consistent.
    Query,
    /// Query with ConsistentRead.
    QueryConsistent,
}

impl ReadAs {
    /// The operation and body of a read of item `key` of `table`.
    pub fn request(self, table: &str, key: usize) -> (&'static str, String) {
        let consistent = matches!(self, ReadAs::GetConsistent | ReadAs::QueryConsistent);
        match self {
            ReadAs::Get | ReadAs::GetConsistent => (
                "GetItem",
                format!(
                    "{{\"TableName\":\"{table}\",\"Key\":{{\"pk\":{{\"S\":\"k{key}\"}}}},\"ConsistentRead\":{consistent}}}"
                ),
            ),
            ReadAs::Query | ReadAs::QueryConsistent => (
                "Query",
                format!(
                    "{{\"TableName\":\"{table}\",\"KeyConditionExpression\":\"pk = :k\",\
                     \"ExpressionAttributeValues\":{{\":k\":{{\"S\":\"k{key}\"}}}},\"ConsistentRead\":{consistent}}}"
                ),
            ),
        }
    }
}

/// Answers counted by [`Outcome`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: u64,
    pub throttled: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    /// No answer: connection errors, malformed answers, timeouts.
    pub errors: u64,
    /// Of `errors`, the requests that passed their deadline.
    pub timeouts: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.ok + self.throttled + self.client_errors + self.server_errors + self.errors
    }

    fn merge(&mut self, other: &Counts) {
        self.ok += other.ok;
        self.throttled += other.throttled;
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
    }
}

#[derive(Clone, Default)]
pub struct DynamoResult {
    pub table: String,
    pub elapsed: Duration,
    pub counts: Counts,
    /// Latency of the 200 OK answers.
    pub latency: Histogram,
    /// The first few distinct failures.
    pub failures: Vec<String>,
}

impl DynamoResult {
    /// Successful (200 OK) requests per second.
    pub fn throughput(&self) -> f64 {
        self.counts.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

// ---------------------------------------------------------------------------
// Requests and answers

/// The bytes of a POST of `body` to DynamoDB operation `op`.
pub fn request(host: &str, op: &str, body: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(400 + body.len());
    let _ = write!(
        out,
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: {JSON_CONTENT_TYPE}\r\nX-Amz-Target: {TARGET_PREFIX}{op}\r\n\
         X-Amz-Date: {AMZ_DATE}\r\nAuthorization: {AUTHORIZATION}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    out.extend_from_slice(body.as_bytes());
    out
}

pub fn create_table_body(table: &str) -> String {
    format!(
        "{{\"TableName\":\"{table}\",\"AttributeDefinitions\":[{{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"}}],\
         \"KeySchema\":[{{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"}}],\"BillingMode\":\"PAY_PER_REQUEST\"}}"
    )
}

/// The body of DescribeTable and DeleteTable.
pub fn table_body(table: &str) -> String {
    format!("{{\"TableName\":\"{table}\"}}")
}

/// `value` must need no JSON escaping (see [`value`]).
pub fn put_item_body(table: &str, key: usize, value: &str) -> String {
    format!("{{\"TableName\":\"{table}\",\"Item\":{{\"pk\":{{\"S\":\"k{key}\"}},\"v\":{{\"S\":\"{value}\"}}}}}}")
}

/// `len` random lowercase letters.
pub fn value(rng: &mut Rng, len: usize) -> String {
    (0..len).map(|_| char::from(b'a' + rng.random_range(0..26u8))).collect()
}

/// What a response head says about the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head, blank line included: where the body starts.
    pub head_len: usize,
    pub content_length: usize,
    /// The server closes the connection after this response.
    pub close: bool,
}

/// The head at the start of `buf`: `None` until its blank line is in.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let window = &buf[..buf.len().min(HEAD_BYTES_MAX)];
    let Some(end) = window.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() >= HEAD_BYTES_MAX {
            return Err(format!("response head over {HEAD_BYTES_MAX} bytes"));
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "response head not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let (http_10, status) = parse_status_line(lines.next().unwrap_or(""))?;
    let (mut content_length, mut close, mut keep_alive) = (None, false, false);
    for line in lines {
        let (name, field) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        let (name, field) = (name.trim(), field.trim());
        if name.eq_ignore_ascii_case("content-length") {
            let length: usize = field.parse().map_err(|_| format!("bad Content-Length {field:?}"))?;
            if content_length.is_some_and(|l| l != length) {
                return Err("conflicting Content-Length fields".into());
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!(
                "Transfer-Encoding {field:?} not supported (Content-Length only)"
            ));
        } else if name.eq_ignore_ascii_case("connection") {
            let token = |t: &str| field.split(',').any(|f| f.trim().eq_ignore_ascii_case(t));
            close |= token("close");
            keep_alive |= token("keep-alive");
        }
    }
    let content_length = match content_length {
        Some(length) => length,
        None if status == 204 || status == 304 => 0,
        None => return Err(format!("{status} answer without Content-Length")),
    };
    if content_length > BODY_BYTES_MAX {
        return Err(format!(
            "response body of {content_length} bytes, over {BODY_BYTES_MAX}"
        ));
    }
    Ok(Some(Head {
        status,
        head_len: end + 4,
        content_length,
        close: close || (http_10 && !keep_alive),
    }))
}

/// `HTTP/1.x NNN reason`: whether it is HTTP/1.0, and the status.
fn parse_status_line(line: &str) -> Result<(bool, u16), String> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(format!("bad status line {line:?}"));
    }
    let status = code.parse().map_err(|_| format!("bad status line {line:?}"))?;
    Ok((version == "HTTP/1.0", status))
}

/// The string value of the first `"name":"..."` in a JSON text (escapes
/// are kept as they are), without parsing the rest.
pub fn json_string<'a>(json: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(json).ok()?;
    let quoted = format!("\"{name}\"");
    let after = &text[text.find(&quoted)? + quoted.len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in after.char_indices() {
        match c {
            '"' if !escaped => return Some(&after[..i]),
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
    }
    None
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// 400 with a `__type` of ProvisionedThroughputExceeded or Throttling.
    Throttled,
    ClientError,
    ServerError,
    /// No usable answer (or a status that is none of the above).
    Error,
}

pub fn classify(status: u16, body: &[u8]) -> Outcome {
    let throttled = || {
        json_string(body, "__type")
            .is_some_and(|t| t.contains("ProvisionedThroughputExceeded") || t.contains("Throttling"))
    };
    match status {
        200 => Outcome::Ok,
        400 if throttled() => Outcome::Throttled,
        400..=499 => Outcome::ClientError,
        500..=599 => Outcome::ServerError,
        _ => Outcome::Error,
    }
}

/// A status and a short quote of the body, for error messages.
fn describe(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let quote: String = match json_string(body, "__type") {
        Some(kind) => kind.rsplit('#').next().unwrap_or(kind).to_string(),
        None => text.chars().take(QUOTED_BODY_CHARS).collect(),
    };
    format!("{status} {quote}")
}

// ---------------------------------------------------------------------------
// The connection

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    Timeout,
    /// The connection could not be made: nothing was sent.
    NotSent(String),
    Failed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout => write!(f, "timeout after {REQUEST_TIMEOUT:?}"),
            CallError::NotSent(why) | CallError::Failed(why) => f.write_str(why),
        }
    }
}

fn io_error(what: &str, e: &std::io::Error) -> CallError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => CallError::Timeout,
        _ => CallError::Failed(format!("{what}: {e}")),
    }
}

/// The time left before `deadline`; a timeout when there is none.
fn left(deadline: Instant) -> Result<Duration, CallError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(CallError::Timeout)
    } else {
        Ok(left)
    }
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One keep-alive connection to an endpoint, opened when first needed and
/// again after any error or a `Connection: close`.
pub struct Conn {
    endpoint: Endpoint,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(endpoint: Endpoint) -> Conn {
        Conn {
            endpoint,
            stream: None,
            buf: Vec::new(),
        }
    }

    /// One request and its answer, within [`REQUEST_TIMEOUT`].
    pub fn call(&mut self, op: &str, body: &str) -> Result<Response, CallError> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let result = self.exchange(op, body, deadline);
        if result.is_err() {
            self.stream = None;
        }
        // A large answer's buffer is not kept for the next.
        if self.buf.capacity() > 4 * READ_CHUNK {
            self.buf = Vec::new();
        }
        result
    }

    fn exchange(&mut self, op: &str, body: &str, deadline: Instant) -> Result<Response, CallError> {
        let bytes = request(&self.endpoint.host, op, body);
        let stream = match &mut self.stream {
            Some(stream) => stream,
            slot => slot.insert(connect(self.endpoint.addr, deadline)?),
        };
        stream
            .set_write_timeout(Some(left(deadline)?))
            .map_err(|e| io_error("send", &e))?;
        stream.write_all(&bytes).map_err(|e| io_error("send", &e))?;
        let head = read_response(stream, &mut self.buf, deadline)?;
        let end = head.head_len + head.content_length;
        if self.buf.len() > end {
            return Err(CallError::Failed("bytes after the response".into()));
        }
        if head.close {
            self.stream = None;
        }
        Ok(Response {
            status: head.status,
            body: self.buf[head.head_len..end].to_vec(),
        })
    }
}

fn connect(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, CallError> {
    let stream =
        TcpStream::connect_timeout(&addr, left(deadline)?).map_err(|e| CallError::NotSent(format!("connect: {e}")))?;
    stream.set_nodelay(true).map_err(|e| io_error("connect", &e))?;
    Ok(stream)
}

/// Reads one whole response into `buf` (cleared first) and returns its head.
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<Head, CallError> {
    buf.clear();
    // Each turn reads at least a byte or fails, and the head is refused past
    // HEAD_BYTES_MAX: the loop ends.
    let head = loop {
        if let Some(head) = parse_head(buf).map_err(CallError::Failed)? {
            break head;
        }
        read_some(stream, buf, deadline)?;
    };
    // The body is bounded by parse_head, the loop by the deadline.
    while buf.len() < head.head_len + head.content_length {
        read_some(stream, buf, deadline)?;
    }
    Ok(head)
}

/// Appends what the socket has to `buf`, waiting until `deadline` at most.
fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<(), CallError> {
    stream
        .set_read_timeout(Some(left(deadline)?))
        .map_err(|e| io_error("receive", &e))?;
    let start = buf.len();
    buf.resize(start + READ_CHUNK, 0);
    let read = stream.read(&mut buf[start..]);
    buf.truncate(start + read.as_ref().map_or(0, |n| *n));
    match read {
        Ok(0) => Err(CallError::Failed("connection closed before the whole answer".into())),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
        Err(e) => Err(io_error("receive", &e)),
    }
}

// ---------------------------------------------------------------------------
// The table

/// A table name unique to the run.
pub fn table_name(seed: u64) -> String {
    format!("dynakv-load-{:016x}", crate::rng::seeded(seed).next_u64())
}

/// A seed from the clock and the process id.
pub fn random_seed() -> u64 {
    let nanos = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}

/// CreateTable through `endpoint`; the table's status in the answer.
fn create_table(endpoint: &Endpoint, table: &str) -> Result<String, String> {
    let mut conn = Conn::new(endpoint.clone());
    let answer = (conn.call("CreateTable", &create_table_body(table))).map_err(|e| format!("CreateTable: {e}"))?;
    if answer.status != 200 {
        return Err(format!("CreateTable: {}", describe(answer.status, &answer.body)));
    }
    Ok(json_string(&answer.body, "TableStatus").unwrap_or("").to_string())
}

/// Polls DescribeTable until the table is ACTIVE, for
/// [`TABLE_ACTIVE_TIMEOUT`] at most.
fn wait_active(endpoint: &Endpoint, table: &str, mut status: String) -> Result<(), String> {
    let mut conn = Conn::new(endpoint.clone());
    let started = Instant::now();
    while status != "ACTIVE" {
        if started.elapsed() > TABLE_ACTIVE_TIMEOUT {
            return Err(format!(
                "table {table} not ACTIVE after {TABLE_ACTIVE_TIMEOUT:?}: {status}"
            ));
        }
        std::thread::sleep(DESCRIBE_INTERVAL);
        status = match conn.call("DescribeTable", &table_body(table)) {
            Ok(answer) if answer.status == 200 => (json_string(&answer.body, "TableStatus").unwrap_or("?")).to_string(),
            Ok(answer) => format!("DescribeTable: {}", describe(answer.status, &answer.body)),
            Err(e) => format!("DescribeTable: {e}"),
        };
    }
    Ok(())
}

fn delete_table(endpoint: &Endpoint, table: &str) -> Result<(), String> {
    let mut conn = Conn::new(endpoint.clone());
    match conn.call("DeleteTable", &table_body(table)) {
        Ok(answer) if answer.status == 200 => Ok(()),
        Ok(answer) => Err(describe(answer.status, &answer.body)),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes every item, the connections' threads taking every `workers`-th.
fn fill(config: &DynamoConfig, table: &str) -> Result<(), String> {
    let workers = config.connections.clamp(1, config.items.max(1));
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers);
        for n in 0..workers {
            let handle = std::thread::Builder::new()
                .name(format!("fill-{n}"))
                .spawn_scoped(scope, move || fill_part(config, table, n, workers))
                .map_err(|e| format!("cannot start a fill thread: {e}"))?;
            handles.push(handle);
        }
        for handle in handles {
            handle.join().map_err(|_| "a fill thread panicked".to_string())??;
        }
        Ok(())
    })
}

/// Items `n`, `n + workers`, ... on one connection.
fn fill_part(config: &DynamoConfig, table: &str, n: usize, workers: usize) -> Result<(), String> {
    let mut conn = Conn::new(config.endpoints[n % config.endpoints.len()].clone());
    let mut rng = crate::rng::seeded(config.seed ^ 0xf111 ^ ((n as u64) << 20));
    for key in (n..config.items).step_by(workers) {
        let body = put_item_body(table, key, &value(&mut rng, config.value_bytes));
        put_retried(&mut conn, &body)
            .map_err(|last| format!("PutItem k{key}: {FILL_ATTEMPTS_MAX} tries, last {last}"))?;
    }
    Ok(())
}

/// A PutItem tried up to [`FILL_ATTEMPTS_MAX`] times, with a growing pause
/// between tries; the last failure when none succeeded.
fn put_retried(conn: &mut Conn, body: &str) -> Result<(), String> {
    let mut attempt = 0;
    loop {
        let last = match conn.call("PutItem", body) {
            Ok(answer) if answer.status == 200 => return Ok(()),
            Ok(answer) => describe(answer.status, &answer.body),
            Err(e) => e.to_string(),
        };
        attempt += 1;
        if attempt >= FILL_ATTEMPTS_MAX {
            return Err(last);
        }
        std::thread::sleep(Duration::from_millis(10 << attempt.min(5)));
    }
}

// ---------------------------------------------------------------------------
// The load

/// What one connection's thread saw.
#[derive(Default)]
struct Tally {
    counts: Counts,
    latency: Histogram,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, op: &str, answer: Result<Response, CallError>, took: Duration) {
        let failure = match answer {
            Ok(answer) => {
                let outcome = classify(answer.status, &answer.body);
                let counter = match outcome {
                    Outcome::Ok => {
                        self.latency.record(took.as_micros() as u64);
                        &mut self.counts.ok
                    }
                    Outcome::Throttled => &mut self.counts.throttled,
                    Outcome::ClientError => &mut self.counts.client_errors,
                    Outcome::ServerError => &mut self.counts.server_errors,
                    Outcome::Error => &mut self.counts.errors,
                };
                *counter += 1;
                (outcome != Outcome::Ok).then(|| describe(answer.status, &answer.body))
            }
            Err(e) => {
                self.counts.errors += 1;
                self.counts.timeouts += u64::from(e == CallError::Timeout);
                Some(e.to_string())
            }
        };
        if let Some(failure) = failure {
            keep_failure(&mut self.failures, format!("{op}: {failure}"));
        }
    }
}

fn keep_failure(failures: &mut Vec<String>, failure: String) {
    if failures.len() < FAILURES_KEPT && !failures.contains(&failure) {
        failures.push(failure);
    }
}

/// The load phase: one thread per connection until the run's end.
fn load(config: &DynamoConfig, table: &str) -> Result<DynamoResult, String> {
    let started = Instant::now();
    let deadline = started + config.duration;
    let tallies = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(config.connections);
        for n in 0..config.connections {
            let handle = std::thread::Builder::new()
                .name(format!("load-{n}"))
                .spawn_scoped(scope, move || load_part(config, table, n, deadline))
                .map_err(|e| format!("cannot start a load thread: {e}"))?;
            handles.push(handle);
        }
        let joined = handles.into_iter().map(|handle| handle.join());
        joined
            .collect::<Result<Vec<Tally>, _>>()
            .map_err(|_| "a load thread panicked".to_string())
    })?;
    let mut result = DynamoResult {
        table: table.to_string(),
        elapsed: started.elapsed(),
        ..DynamoResult::default()
    };
    for tally in tallies {
        result.counts.merge(&tally.counts);
        result.latency.merge(&tally.latency);
        for failure in tally.failures {
            keep_failure(&mut result.failures, failure);
        }
    }
    Ok(result)
}

/// Connection `n`'s closed loop: a request at a time until `deadline`.
fn load_part(config: &DynamoConfig, table: &str, n: usize, deadline: Instant) -> Tally {
    let mut conn = Conn::new(config.endpoints[n % config.endpoints.len()].clone());
    let mut rng = crate::rng::seeded(config.seed ^ ((n as u64 + 1) << 32));
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        let key = rng.random_range(0..config.items.max(1));
        let (op, body) = if rng.random_range(0..100) < config.reads_percent {
            config.read_as.request(table, key)
        } else {
            (
                "PutItem",
                put_item_body(table, key, &value(&mut rng, config.value_bytes)),
            )
        };
        let sent = Instant::now();
        let answer = conn.call(op, &body);
        tally.record(op, answer, sent.elapsed());
    }
    tally
}

/// Creates the table, fills it, runs the load and deletes the table (even
/// when the fill or the load failed).
pub fn run(config: &DynamoConfig) -> Result<DynamoResult, String> {
    let first = config.endpoints.first().ok_or("no endpoints")?;
    if config.connections == 0 {
        return Err("no connections".into());
    }
    let table = table_name(config.seed);
    let status = create_table(first, &table)?;
    eprintln!("created table {table} ({status}) through {}", first.url);
    let outcome = wait_active(first, &table, status).and_then(|()| {
        let filling = Instant::now();
        fill(config, &table)?;
        eprintln!(
            "wrote {} items in {:.1} s",
            config.items,
            filling.elapsed().as_secs_f64()
        );
        load(config, &table)
    });
    match delete_table(first, &table) {
        Ok(()) => eprintln!("deleted table {table}"),
        Err(e) => eprintln!("DeleteTable {table} failed: {e}"),
    }
    outcome
}

// ---------------------------------------------------------------------------
// The report

pub fn summary(label: &str, config: &DynamoConfig, result: &DynamoResult) -> String {
    let (c, l) = (&result.counts, &result.latency);
    let ms = |us: u64| us as f64 / 1000.0;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{label}: {} connections to {} endpoints, {:.1} s, {} items, values {} bytes, {} % reads ({:?})",
        config.connections,
        config.endpoints.len(),
        result.elapsed.as_secs_f64(),
        config.items,
        config.value_bytes,
        config.reads_percent,
        config.read_as
    );
    let urls: Vec<&str> = config.endpoints.iter().map(|e| e.url.as_str()).collect();
    let _ = writeln!(text, "  endpoints: {}", urls.join(" "));
    let _ = writeln!(
        text,
        "  requests {}  throughput {:.0}/s (200 OK)",
        c.total(),
        result.throughput()
    );
    let _ = writeln!(
        text,
        "  latency ms (200 OK): p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        ms(l.quantile_us(0.5)),
        ms(l.quantile_us(0.9)),
        ms(l.quantile_us(0.99)),
        ms(l.quantile_us(0.999)),
        ms(l.max_us())
    );
    let _ = writeln!(
        text,
        "  outcomes: 200 OK {}  throttled {}  other 4xx {}  5xx {}  errors {} (timeouts {})",
        c.ok, c.throttled, c.client_errors, c.server_errors, c.errors, c.timeouts
    );
    for failure in &result.failures {
        let _ = writeln!(text, "    {failure}");
    }
    text
}

/// `text` as a JSON string, quotes included.
pub fn json_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `[...]` of JSON strings.
fn json_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.map(json_quote).collect();
    format!("[{}]", quoted.join(","))
}

pub fn json(label: &str, config: &DynamoConfig, result: &DynamoResult) -> String {
    let (c, l) = (&result.counts, &result.latency);
    let urls = json_list(config.endpoints.iter().map(|e| e.url.as_str()));
    let failures = json_list(result.failures.iter().map(String::as_str));
    let label = json_quote(label);
    format!(
        "{{\"label\":{label},\"endpoints\":{urls},\"connections\":{},\"items\":{},\"value_bytes\":{},\
         \"reads_percent\":{},\"seconds\":{:.3},\"requests\":{},\"throughput\":{:.1},\"ok\":{},\"throttled\":{},\
         \"client_errors\":{},\"server_errors\":{},\"errors\":{},\"timeouts\":{},\
         \"latency_us\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"p999\":{},\"max\":{}}},\"failures\":{failures}}}\n",
        config.connections,
        config.items,
        config.value_bytes,
        config.reads_percent,
        result.elapsed.as_secs_f64(),
        c.total(),
        result.throughput(),
        c.ok,
        c.throttled,
        c.client_errors,
        c.server_errors,
        c.errors,
        c.timeouts,
        l.quantile_us(0.5),
        l.quantile_us(0.9),
        l.quantile_us(0.99),
        l.quantile_us(0.999),
        l.max_us()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_request_carries_the_headers_and_its_body_length() {
        let (_, body) = ReadAs::Get.request("t", 7);
        assert_eq!(
            body,
            r#"{"TableName":"t","Key":{"pk":{"S":"k7"}},"ConsistentRead":false}"#
        );
        let (op, query) = ReadAs::QueryConsistent.request("t", 7);
        assert_eq!(op, "Query");
        assert!(
            query.contains(r#""KeyConditionExpression":"pk = :k""#) && query.ends_with(r#""ConsistentRead":true}"#)
        );
        let bytes = request("127.0.0.1:8000", "GetItem", &body);
        let text = String::from_utf8(bytes).unwrap();
        let (head, sent_body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(sent_body, body);
        let lines: Vec<&str> = head.split("\r\n").collect();
        assert_eq!(lines[0], "POST / HTTP/1.1");
        assert!(lines.contains(&"Host: 127.0.0.1:8000"));
        assert!(lines.contains(&"Content-Type: application/x-amz-json-1.0"));
        assert!(lines.contains(&"X-Amz-Target: DynamoDB_20120810.GetItem"));
        assert!(lines.contains(&"X-Amz-Date: 20260101T000000Z"));
        assert!(lines.contains(&format!("Content-Length: {}", body.len()).as_str()));
        let authorization = lines.iter().find_map(|l| l.strip_prefix("Authorization: ")).unwrap();
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=load/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00"
        );
    }

    #[test]
    fn item_bodies_are_json_with_the_key_and_value() {
        let mut rng = crate::rng::seeded(1);
        let v = value(&mut rng, 100);
        assert_eq!(v.len(), 100);
        assert!(v.bytes().all(|b| b.is_ascii_lowercase()));
        assert_eq!(
            put_item_body("t", 3, "abc"),
            r#"{"TableName":"t","Item":{"pk":{"S":"k3"},"v":{"S":"abc"}}}"#
        );
        assert!(create_table_body("t").contains(r#""BillingMode":"PAY_PER_REQUEST""#));
        assert_eq!(table_body("t"), r#"{"TableName":"t"}"#);
        let name = table_name(5);
        assert!(name.starts_with("dynakv-load-") && name.len() == 28, "{name}");
    }

    #[test]
    fn heads_are_framed_by_content_length() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\ncontent-length: 2\r\n\r\n{}";
        let head = parse_head(full).unwrap().unwrap();
        assert_eq!(
            head,
            Head {
                status: 200,
                head_len: full.len() - 2,
                content_length: 2,
                close: false
            }
        );
        assert_eq!(parse_head(&full[..20]).unwrap(), None, "head not whole yet");
        let close = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        assert!(parse_head(close).unwrap().unwrap().close);
        let old = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(parse_head(old).unwrap().unwrap().close);
        let old_kept = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n\r\n";
        assert!(!parse_head(old_kept).unwrap().unwrap().close);
    }

    #[test]
    fn heads_without_framing_or_over_the_bounds_are_refused() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err(), "no Content-Length");
        assert_eq!(
            parse_head(b"HTTP/1.1 204 No Content\r\n\r\n")
                .unwrap()
                .unwrap()
                .content_length,
            0
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 16777217\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 16777216\r\n\r\n").is_ok());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(parse_head(b"SMTP 200 OK\r\nContent-Length: 0\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n").is_err());
        assert!(parse_head(&vec![b'a'; HEAD_BYTES_MAX]).is_err(), "endless head");
        assert_eq!(parse_head(&vec![b'a'; HEAD_BYTES_MAX - 1]).unwrap(), None);
    }

    #[test]
    fn outcomes_follow_status_and_error_type() {
        let error = |kind: &str| format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"m"}}"#);
        assert_eq!(classify(200, b"{}"), Outcome::Ok);
        let throughput = error("ProvisionedThroughputExceededException");
        assert_eq!(classify(400, throughput.as_bytes()), Outcome::Throttled);
        assert_eq!(
            classify(400, error("ThrottlingException").as_bytes()),
            Outcome::Throttled
        );
        assert_eq!(
            classify(400, error("ValidationException").as_bytes()),
            Outcome::ClientError
        );
        assert_eq!(classify(400, b"not json"), Outcome::ClientError);
        assert_eq!(classify(413, b""), Outcome::ClientError);
        assert_eq!(
            classify(500, error("ThrottlingException").as_bytes()),
            Outcome::ServerError
        );
        assert_eq!(classify(503, b""), Outcome::ServerError);
        assert_eq!(classify(302, b""), Outcome::Error);
        assert_eq!(
            describe(400, throughput.as_bytes()),
            "400 ProvisionedThroughputExceededException"
        );
    }

    #[test]
    fn json_strings_are_found_and_quoted() {
        assert_eq!(json_string(br#"{"a" : "x\"y","b":"z"}"#, "a"), Some(r#"x\"y"#));
        assert_eq!(
            json_string(br#"{"TableStatus":"ACTIVE"}"#, "TableStatus"),
            Some("ACTIVE")
        );
        assert_eq!(json_string(br#"{"a":1}"#, "a"), None);
        assert_eq!(json_string(br#"{"a":"open"#, "a"), None);
        assert_eq!(json_quote("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
    }

    #[test]
    fn endpoints_are_http_urls() {
        let endpoint = Endpoint::parse("http://127.0.0.1:8000/").unwrap();
        assert_eq!((endpoint.host.as_str(), endpoint.addr.port()), ("127.0.0.1:8000", 8000));
        assert_eq!(Endpoint::parse("http://127.0.0.1").unwrap().addr.port(), 80);
        assert_eq!(Endpoint::parse("http://[::1]:9000").unwrap().addr.port(), 9000);
        assert!(Endpoint::parse("https://127.0.0.1:8000").is_err());
        assert!(Endpoint::parse("127.0.0.1:8000").is_err());
        assert!(Endpoint::parse("http://127.0.0.1:8000/path").is_err());
    }

    /// A server that answers each connection's requests with `answers`, in
    /// order, then closes it.
    fn fake_server(answers: Vec<&'static str>, connections: usize) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::Builder::new()
            .name("fake-server".into())
            .spawn(move || {
                for _ in 0..connections {
                    let (mut stream, _) = listener.accept().unwrap();
                    let mut buf = vec![0u8; 4096];
                    for answer in &answers {
                        let _ = stream.read(&mut buf);
                        let _ = stream.write_all(answer.as_bytes());
                    }
                }
            })
            .unwrap();
        Endpoint::parse(&format!("http://{addr}")).unwrap()
    }

    #[test]
    fn a_connection_keeps_alive_and_reopens_after_close() {
        let answers = vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{\"\"",
        ];
        let mut conn = Conn::new(fake_server(answers, 2));
        for _ in 0..2 {
            let first = conn.call("GetItem", "{}").unwrap();
            assert_eq!((first.status, first.body.as_slice()), (200, &b"{}"[..]));
            let second = conn.call("GetItem", "{}").unwrap();
            assert_eq!((second.status, second.body.len()), (400, 3));
            assert!(conn.stream.is_none(), "closed after Connection: close");
        }
    }

    #[test]
    fn a_short_answer_is_an_error() {
        let mut conn = Conn::new(fake_server(vec!["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}"], 1));
        assert!(matches!(conn.call("GetItem", "{}"), Err(CallError::Failed(_))));
        assert!(conn.stream.is_none());
    }
}
