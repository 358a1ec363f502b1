//! `dynakv ctl exporter`: a long-running process that Prometheus scrapes
//! over HTTP, as it scrapes redis_exporter or memcached_exporter. `GET
//! /metrics` asks every node for its counters at that moment (each node
//! bounded by a timeout, so a dead node costs no more than that) and
//! answers in the text format of [`crate::ops::metrics`], with
//! `dynakv_up` per node and the scrape's own duration; `GET /` is a short
//! page naming the endpoint.
//!
//! The HTTP side is a few dozen lines of the standard library: one GET
//! with no body is all a scraper sends, and a server crate would bring
//! an async runtime for it. Everything a client controls is bounded:
//! connections at once ([`CONNECTIONS_MAX`]), scrapes at once
//! ([`SCRAPES_MAX`]), the request head's size ([`HEAD_BYTES_MAX`]) and
//! the time it may take to arrive (`request_timeout`). A bad request gets
//! a 4xx and the connection is closed.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The port `--listen` takes when given a host alone (9431: for the CPEN
/// 431 protocol, clear of the ports of the common exporters).
pub const DEFAULT_PORT: u16 = 9431;
/// Connections served at once; more are answered 503 and closed.
pub const CONNECTIONS_MAX: usize = 32;
/// Scrapes of the cluster at once; more are answered 503.
pub const SCRAPES_MAX: usize = 2;
/// The longest request head taken (request line and headers).
pub const HEAD_BYTES_MAX: usize = 8 << 10;
/// How long writing a response may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the exporter serves and its limits.
pub struct Exporter<F> {
    /// The cluster's metrics text, asked at each scrape.
    pub scrape: F,
    /// How long a client may take to send its request head.
    pub request_timeout: Duration,
}

/// Counts held while a connection or a scrape is in progress.
#[derive(Default)]
struct Slots {
    connections: Arc<AtomicUsize>,
    scrapes: Arc<AtomicUsize>,
}

/// One place of a bounded count, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        let taken = count.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(count.clone());
        (taken < max).then_some(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response: status line, content type, body.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: &'static str, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{body}\n"),
        }
    }
}

impl<F: Fn() -> String + Send + Sync + 'static> Exporter<F> {
    /// Serves `listener` until accepting fails for good; each connection on
    /// a thread of its own, up to [`CONNECTIONS_MAX`].
    pub fn serve(self, listener: TcpListener) -> io::Error {
        let exporter = Arc::new(self);
        let slots = Arc::new(Slots::default());
        loop {
            let mut stream = match listener.accept() {
                Ok((stream, _)) => stream,
                // Out of descriptors, or a connection reset before it was
                // taken: the listener itself is fine.
                Err(e) if is_transient(&e) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                Err(e) => return e,
            };
            let Some(slot) = Slot::take(&slots.connections, CONNECTIONS_MAX) else {
                let busy = Response::text("503 Service Unavailable", "too many connections");
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = write_response(&mut stream, &busy);
                continue;
            };
            let (exporter, slots) = (exporter.clone(), slots.clone());
            let spawned = std::thread::Builder::new().name("exporter-http".into()).spawn(move || {
                exporter.handle(stream, &slots);
                drop(slot);
            });
            if spawned.is_err() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn handle(&self, mut stream: TcpStream, slots: &Slots) {
        let response = match read_head(&mut stream, self.request_timeout) {
            Ok(head) => self.respond(&head, slots),
            Err(HeadError::TooLarge) => Response::text("431 Request Header Fields Too Large", "request head too large"),
            Err(HeadError::TimedOut) => Response::text("408 Request Timeout", "request not received in time"),
            Err(HeadError::Closed) => return,
        };
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let _ = write_response(&mut stream, &response);
    }

    fn respond(&self, head: &[u8], slots: &Slots) -> Response {
        let Some((method, path)) = request_line(head) else {
            return Response::text("400 Bad Request", "not an HTTP/1 request");
        };
        if method != "GET" {
            return Response::text("405 Method Not Allowed", "only GET is served");
        }
        match path.split('?').next().unwrap_or_default() {
            "/metrics" => self.metrics(slots),
            "/" => Response {
                status: "200 OK",
                content_type: "text/html; charset=utf-8",
                body: "<html><head><title>dynakv exporter</title></head><body><h1>dynakv exporter</h1>\
                       <p><a href=\"/metrics\">/metrics</a>: every node's counters, scraped when asked.</p>\
                       </body></html>\n"
                    .into(),
            },
            _ => Response::text("404 Not Found", "not found: the metrics are at /metrics"),
        }
    }

    fn metrics(&self, slots: &Slots) -> Response {
        let Some(_slot) = Slot::take(&slots.scrapes, SCRAPES_MAX) else {
            return Response::text("503 Service Unavailable", "too many scrapes at once");
        };
        let started = Instant::now();
        let mut body = (self.scrape)();
        body.push_str(&format!(
            "# HELP dynakv_scrape_duration_seconds How long asking every node for its counters took.\n\
             # TYPE dynakv_scrape_duration_seconds gauge\n\
             dynakv_scrape_duration_seconds {:.6}\n",
            started.elapsed().as_secs_f64()
        ));
        Response {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body,
        }
    }
}

fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    ) || matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    TooLarge,
    TimedOut,
    Closed,
}

/// Reads up to the blank line that ends the request head, within
/// `timeout` in all (a client sending a byte at a time gets no longer).
fn read_head(stream: &mut TcpStream, timeout: Duration) -> Result<Vec<u8>, HeadError> {
    let deadline = Instant::now() + timeout;
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::TimedOut);
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buffer) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => head.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(HeadError::TimedOut);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(HeadError::Closed),
        }
        if let Some(end) = find(&head, b"\r\n\r\n").or_else(|| find(&head, b"\n\n")) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > HEAD_BYTES_MAX {
            return Err(HeadError::TooLarge);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// The method and path of `METHOD PATH HTTP/1.x`, the head's first line.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = parts.next().is_none()
        && version.starts_with("HTTP/1.")
        && path.starts_with('/')
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase());
    valid.then_some((method, path))
}

fn write_response(stream: &mut TcpStream, response: &Response) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(response.body.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_http1_request_line_is_taken() {
        assert_eq!(
            request_line(b"GET /metrics HTTP/1.1\r\nHost: x"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(request_line(b"POST / HTTP/1.0"), Some(("POST", "/")));
        for bad in [
            &b""[..],
            b"GET",
            b"GET /metrics",
            b"GET metrics HTTP/1.1",
            b"GET /metrics HTTP/2",
            b"GET /metrics HTTP/1.1 extra",
            b"get /metrics HTTP/1.1",
            b"\xff\xfe /metrics HTTP/1.1",
        ] {
            assert_eq!(request_line(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_slot_is_given_back_and_never_more_are_held_than_allowed() {
        let count = Arc::new(AtomicUsize::new(0));
        let first = Slot::take(&count, 2);
        let second = Slot::take(&count, 2);
        assert!(first.is_some() && second.is_some());
        assert!(Slot::take(&count, 2).is_none());
        drop(first);
        assert!(Slot::take(&count, 2).is_some());
        assert_eq!(count.load(Ordering::Acquire), 1);
    }
}
