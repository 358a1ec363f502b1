//! HTTP/1.1 framing for the DynamoDB endpoint, free of sockets: an
//! incremental parser of requests over a connection's receive buffer, and
//! the writers of the responses the endpoint sends (JSON 1.0 answers, API
//! errors, framing errors and `100 Continue`).
//!
//! [`parse`] keeps no state: the connection calls it with everything it has
//! buffered since the last request it took, gets `None` until a whole
//! request (head and body) is in, then the request and the bytes it took;
//! pipelined requests are taken one at a time from the front of the buffer.
//! Each call reads the head again (at most [`Limits::head_bytes_max`]) and,
//! for a chunked body, the chunk lines again (at most [`CHUNKS_COUNT_MAX`]);
//! a `Content-Length` body is not looked at until it is whole.
//!
//! Framing follows RFC 9112: a body is framed by `Content-Length` or by
//! `Transfer-Encoding: chunked` (the only transfer coding taken), never by
//! both, since a request with both is how requests are smuggled past a proxy
//! that reads the other one. Every size is checked as soon as it is known:
//! a head past its limit is refused before its end arrives, a declared body
//! past its limit before its first byte.
//!
//! Every refusal is an [`HttpError`]: its status and a short reason. The
//! connection closes after answering one, because after a framing error the
//! first byte of the next request cannot be found.

use crate::error::ApiError;

/// Bytes a request head (request line, header fields, blank line) may take.
/// A DynamoDB request's head is well under 2 KiB; 16 KiB leaves room for
/// long user agents and session tokens.
pub const HEAD_BYTES_MAX: usize = 16 * 1024;
/// Header fields a request head may have; the SDKs send about ten.
pub const HEADERS_COUNT_MAX: usize = 64;
/// Bytes a request body may have. The largest DynamoDB request is a
/// BatchWriteItem: "a single call to BatchWriteItem can transmit up to 16MB
/// of data over the network" (API reference, BatchWriteItem). The larger
/// reading of "MB", 16 MiB, so that nothing the API takes is refused here;
/// the request layer checks the API's own limits.
pub const BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Header fields [`Limits::headers_count_max`] may allow at most: the
/// parser's slots for them are on the stack.
pub const HEADERS_COUNT_CAP: usize = 256;
/// Bytes a chunk's size line may take, with its extensions and CRLF.
pub const CHUNK_LINE_BYTES_MAX: usize = 1024;
/// Chunks a chunked body may have: each parse call walks them all again, so
/// their count bounds its cost.
pub const CHUNKS_COUNT_MAX: usize = 1 << 16;
/// Bytes the trailer section of a chunked body may take.
pub const TRAILER_BYTES_MAX: usize = 8 * 1024;
/// Fields the trailer section of a chunked body may have.
pub const TRAILERS_COUNT_MAX: usize = 32;

/// The media type of DynamoDB's requests and answers.
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// How much of a request the parser takes before refusing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the head; a larger one is answered 431.
    pub head_bytes_max: usize,
    /// Header fields; more are answered 431. At most [`HEADERS_COUNT_CAP`].
    pub headers_count_max: usize,
    /// Bytes of the body (decoded, for a chunked one); a larger one is
    /// answered 413.
    pub body_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            head_bytes_max: HEAD_BYTES_MAX,
            headers_count_max: HEADERS_COUNT_MAX,
            body_bytes_max: BODY_BYTES_MAX,
        }
    }
}

/// A request the framing refuses: the status to answer and why. The
/// connection closes after the answer (see [`http_error_response`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub reason: &'static str,
}

const fn refuse(status: u16, reason: &'static str) -> HttpError {
    HttpError { status, reason }
}

const HEAD_TOO_LARGE: HttpError = refuse(431, "Request head too large");
const TOO_MANY_HEADERS: HttpError = refuse(431, "Too many header fields");
const MALFORMED_HEAD: HttpError = refuse(400, "Malformed request head");
const VERSION_NOT_SUPPORTED: HttpError = refuse(505, "HTTP version not supported");
const BAD_TARGET: HttpError = refuse(400, "The request target must be a path");
const HEADER_NOT_UTF8: HttpError = refuse(400, "Header field value is not UTF-8");
const HOST_NOT_ONE: HttpError = refuse(400, "An HTTP/1.1 request needs exactly one Host header field");
const BODY_TOO_LARGE: HttpError = refuse(413, "Request body too large");
const LENGTH_REQUIRED: HttpError = refuse(411, "Length required");
const BAD_CONTENT_LENGTH: HttpError = refuse(400, "Invalid Content-Length");
const LENGTH_AND_CHUNKED: HttpError = refuse(400, "Both Content-Length and Transfer-Encoding");
const CHUNKED_IN_HTTP_1_0: HttpError = refuse(400, "Transfer-Encoding in an HTTP/1.0 request");
const UNSUPPORTED_CODING: HttpError = refuse(501, "Unsupported transfer coding");
const BAD_TRANSFER_ENCODING: HttpError = refuse(400, "Invalid Transfer-Encoding");
const BAD_CHUNK: HttpError = refuse(400, "Malformed chunk");
const CHUNK_LINE_TOO_LONG: HttpError = refuse(400, "Chunk size line too long");
const TOO_MANY_CHUNKS: HttpError = refuse(413, "Too many chunks");
const TRAILER_TOO_LARGE: HttpError = refuse(431, "Trailer section too large");
const TOO_MANY_TRAILERS: HttpError = refuse(431, "Too many trailer fields");
const MALFORMED_TRAILER: HttpError = refuse(400, "Malformed trailer section");

/// A whole request, as the connection hands it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// As sent (methods are case-sensitive).
    pub method: String,
    /// The request target as sent: its path and, after `?`, its query.
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The header fields in the order received, names lowercased, values as
    /// sent (without the whitespace around them).
    pub headers: Vec<(String, String)>,
    /// The body, decoded if it was chunked.
    pub body: Vec<u8>,
    /// Whether the connection stays open after the answer.
    pub keep_alive: bool,
    /// Whether the client asked for `100 Continue` before sending the body.
    pub expects_continue: bool,
}

impl Request {
    /// The first value of the header field `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of the header field `name` (lowercase), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// The target's path (before any `?`).
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(path, _)| path)
    }

    /// The target's query (after the first `?`; empty if none).
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, query)| query)
    }
}

/// How the body of a request is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(usize),
    /// Chunks, up to the last (empty) one and its trailer section.
    Chunked,
}

/// A request head, parsed and checked.
struct Head {
    method: String,
    target: String,
    minor_version: u8,
    headers: Vec<(String, String)>,
    /// Bytes of the head, blank line included.
    length: usize,
    framing: Framing,
    keep_alive: bool,
    expects_continue: bool,
}

/// Takes the first request from `buf`, the bytes a connection has received
/// since its last request: `None` while the request is not whole, else the
/// request and the bytes of `buf` it took (the next request starts there).
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Option<(Request, usize)>, HttpError> {
    let Some(head) = parse_head(buf, limits)? else {
        return Ok(None);
    };
    let wire = buf.get(head.length..).unwrap_or_default();
    let (body, body_wire_bytes) = match head.framing {
        Framing::Empty => (Vec::new(), 0),
        Framing::Length(length) => match wire.get(..length) {
            Some(body) => (body.to_vec(), length),
            None => return Ok(None),
        },
        Framing::Chunked => match decode_chunked(wire, limits)? {
            Some(decoded) => decoded,
            None => return Ok(None),
        },
    };
    let consumed = head.length + body_wire_bytes;
    let request = Request {
        method: head.method,
        target: head.target,
        minor_version: head.minor_version,
        headers: head.headers,
        body,
        keep_alive: head.keep_alive,
        expects_continue: head.expects_continue,
    };
    Ok(Some((request, consumed)))
}

/// Whether the connection should now send [`continue_response`]: `buf`
/// holds the whole head of a request that asks for `100 Continue`, its
/// declared body is acceptable, and none of the body has arrived. Call it
/// when [`parse`] answered `None`, and send the answer once per request.
/// An unacceptable body is the error [`parse`] gives too, to answer instead.
pub fn should_send_continue(buf: &[u8], limits: &Limits) -> Result<bool, HttpError> {
    let Some(head) = parse_head(buf, limits)? else {
        return Ok(false);
    };
    let body_wanted = matches!(head.framing, Framing::Chunked | Framing::Length(1..));
    Ok(head.expects_continue && body_wanted && buf.len() == head.length)
}

/// The head at the front of `buf`, once it is whole.
fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, HttpError> {
    let mut slots = [httparse::EMPTY_HEADER; HEADERS_COUNT_CAP];
    let slots_allowed = limits.headers_count_max.min(HEADERS_COUNT_CAP);
    let mut parsed = httparse::Request::new(slots.get_mut(..slots_allowed).unwrap_or_default());
    let length = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(length)) => length,
        // A head not whole at the limit can only end past it.
        Ok(httparse::Status::Partial) if buf.len() >= limits.head_bytes_max => return Err(HEAD_TOO_LARGE),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(head_error(error)),
    };
    if length > limits.head_bytes_max {
        return Err(HEAD_TOO_LARGE);
    }
    let (Some(method), Some(target), Some(minor_version)) = (parsed.method, parsed.path, parsed.version) else {
        return Err(MALFORMED_HEAD);
    };
    // Only the origin form (`/path?query`): the absolute form is for
    // proxies, which this endpoint is not, and the path is what is signed.
    if !target.starts_with('/') {
        return Err(BAD_TARGET);
    }
    let headers = collect_headers(parsed.headers)?;
    if minor_version == 1 && headers.iter().filter(|(name, _)| name == "host").count() != 1 {
        return Err(HOST_NOT_ONE);
    }
    let framing = body_framing(method, minor_version, &headers, limits)?;
    Ok(Some(Head {
        method: method.to_string(),
        target: target.to_string(),
        minor_version,
        keep_alive: keep_alive(minor_version, &headers),
        expects_continue: expects_continue(minor_version, &headers),
        headers,
        length,
        framing,
    }))
}

fn head_error(error: httparse::Error) -> HttpError {
    match error {
        httparse::Error::TooManyHeaders => TOO_MANY_HEADERS,
        httparse::Error::Version => VERSION_NOT_SUPPORTED,
        _ => MALFORMED_HEAD,
    }
}

fn collect_headers(fields: &[httparse::Header<'_>]) -> Result<Vec<(String, String)>, HttpError> {
    let mut headers = Vec::with_capacity(fields.len());
    for field in fields {
        let value = std::str::from_utf8(field.value).map_err(|_| HEADER_NOT_UTF8)?;
        headers.push((
            field.name.to_ascii_lowercase(),
            value.trim_matches(is_whitespace).to_string(),
        ));
    }
    Ok(headers)
}

/// Optional whitespace of HTTP: space and horizontal tab.
fn is_whitespace(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The comma-separated elements of every value of a list-valued field,
/// trimmed, empty ones skipped (RFC 9110 section 5.6.1).
fn list_elements<'a>(headers: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(field, _)| field == name)
        .flat_map(|(_, value)| value.split(','))
        .map(|element| element.trim_matches(is_whitespace))
        .filter(|element| !element.is_empty())
}

fn has_field(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(field, _)| field == name)
}

/// HTTP/1.1 keeps the connection unless told to close it; HTTP/1.0 closes it
/// unless told to keep it.
fn keep_alive(minor_version: u8, headers: &[(String, String)]) -> bool {
    let mut close = false;
    let mut keep = false;
    for option in list_elements(headers, "connection") {
        close |= option.eq_ignore_ascii_case("close");
        keep |= option.eq_ignore_ascii_case("keep-alive");
    }
    !close && (minor_version >= 1 || keep)
}

/// An HTTP/1.0 client cannot wait for `100 Continue` (RFC 9110 section
/// 10.1.1 has the server ignore its expectation); other expectations than
/// `100-continue` are ignored too, as RFC 9110 allows, so the request is
/// served as if it had none.
fn expects_continue(minor_version: u8, headers: &[(String, String)]) -> bool {
    minor_version >= 1 && list_elements(headers, "expect").any(|value| value.eq_ignore_ascii_case("100-continue"))
}

fn body_framing(
    method: &str,
    minor_version: u8,
    headers: &[(String, String)],
    limits: &Limits,
) -> Result<Framing, HttpError> {
    if has_field(headers, "transfer-encoding") {
        if minor_version == 0 {
            return Err(CHUNKED_IN_HTTP_1_0);
        }
        if has_field(headers, "content-length") {
            return Err(LENGTH_AND_CHUNKED);
        }
        check_transfer_coding(headers)?;
        return Ok(Framing::Chunked);
    }
    match declared_length(headers)? {
        Some(length) if length > limits.body_bytes_max => Err(BODY_TOO_LARGE),
        Some(length) => Ok(Framing::Length(length)),
        // A body without framing would be read as the next request.
        None if matches!(method, "POST" | "PUT" | "PATCH") => Err(LENGTH_REQUIRED),
        None => Ok(Framing::Empty),
    }
}

/// `chunked`, once, is the only transfer coding taken.
fn check_transfer_coding(headers: &[(String, String)]) -> Result<(), HttpError> {
    let mut codings = 0;
    for coding in list_elements(headers, "transfer-encoding") {
        if !coding.eq_ignore_ascii_case("chunked") {
            return Err(UNSUPPORTED_CODING);
        }
        codings += 1;
    }
    if codings == 1 {
        Ok(())
    } else {
        Err(BAD_TRANSFER_ENCODING)
    }
}

/// The body length that `Content-Length` declares: every value (and every
/// element of a list value) must be the same decimal number.
fn declared_length(headers: &[(String, String)]) -> Result<Option<usize>, HttpError> {
    let mut declared = None;
    for value in headers
        .iter()
        .filter(|(name, _)| name == "content-length")
        .map(|(_, value)| value)
    {
        for element in value.split(',').map(|element| element.trim_matches(is_whitespace)) {
            let length = decimal_length(element)?;
            if declared.is_some_and(|seen| seen != length) {
                return Err(BAD_CONTENT_LENGTH);
            }
            declared = Some(length);
        }
    }
    Ok(declared)
}

/// A decimal length; one past `usize` saturates (it is refused as too large).
fn decimal_length(text: &str) -> Result<usize, HttpError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD_CONTENT_LENGTH);
    }
    Ok(text.bytes().fold(0usize, |length, digit| {
        length.saturating_mul(10).saturating_add(usize::from(digit - b'0'))
    }))
}

/// A chunked body from `wire` (the bytes after the head): the decoded body
/// and the bytes it took, once the last chunk and trailer section are in.
/// The chunks are walked once to find the end without copying, then once to
/// copy them out.
fn decode_chunked(wire: &[u8], limits: &Limits) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let Some(end) = walk_chunks(wire, limits, None)? else {
        return Ok(None);
    };
    let mut body = Vec::with_capacity(end.body_bytes);
    walk_chunks(wire, limits, Some(&mut body))?;
    Ok(Some((body, end.wire_bytes)))
}

/// Where a whole chunked body ends.
struct ChunkedEnd {
    /// Bytes of the chunked body on the wire, trailer section included.
    wire_bytes: usize,
    /// Bytes of the decoded body.
    body_bytes: usize,
}

fn walk_chunks(wire: &[u8], limits: &Limits, mut sink: Option<&mut Vec<u8>>) -> Result<Option<ChunkedEnd>, HttpError> {
    let mut position = 0usize;
    let mut body_bytes = 0usize;
    for _ in 0..CHUNKS_COUNT_MAX {
        let Some((line_bytes, size)) = chunk_line(wire.get(position..).unwrap_or_default())? else {
            return Ok(None);
        };
        position += line_bytes;
        if size == 0 {
            let Some(trailer_bytes) = trailer_section(wire.get(position..).unwrap_or_default())? else {
                return Ok(None);
            };
            let wire_bytes = position + trailer_bytes;
            return Ok(Some(ChunkedEnd { wire_bytes, body_bytes }));
        }
        body_bytes = body_bytes
            .checked_add(size)
            .filter(|total| *total <= limits.body_bytes_max)
            .ok_or(BODY_TOO_LARGE)?;
        let data_end = position.checked_add(size).ok_or(BODY_TOO_LARGE)?;
        let chunk_end = data_end.checked_add(2).ok_or(BODY_TOO_LARGE)?;
        let (Some(data), Some(terminator)) = (wire.get(position..data_end), wire.get(data_end..chunk_end)) else {
            return Ok(None);
        };
        if terminator != b"\r\n" {
            return Err(BAD_CHUNK);
        }
        if let Some(body) = sink.as_deref_mut() {
            body.extend_from_slice(data);
        }
        position = chunk_end;
    }
    Err(TOO_MANY_CHUNKS)
}

/// A chunk's size line at the front of `wire`: the bytes it takes (CRLF
/// included) and the chunk's size, once the line is whole. Only CRLF ends
/// it: a bare LF is refused, since an intermediary that took it for a line
/// end would frame the body differently.
fn chunk_line(wire: &[u8]) -> Result<Option<(usize, usize)>, HttpError> {
    let window = wire.get(..CHUNK_LINE_BYTES_MAX).unwrap_or(wire);
    let Some(line_feed) = window.iter().position(|b| *b == b'\n') else {
        return if window.len() >= CHUNK_LINE_BYTES_MAX {
            Err(CHUNK_LINE_TOO_LONG)
        } else {
            Ok(None)
        };
    };
    let Some(line) = line_feed.checked_sub(1).and_then(|end| window.get(..end)) else {
        return Err(BAD_CHUNK);
    };
    if window.get(line.len()) != Some(&b'\r') {
        return Err(BAD_CHUNK);
    }
    Ok(Some((line_feed + 1, chunk_size(line)?)))
}

/// `chunk-size [ chunk-ext ]`: hexadecimal digits, then optional whitespace
/// and extensions after `;`, which are ignored (RFC 9112 section 7.1.1).
fn chunk_size(line: &[u8]) -> Result<usize, HttpError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (Some(hex), Some(rest)) = (line.get(..digits), line.get(digits..)) else {
        return Err(BAD_CHUNK);
    };
    if hex.is_empty() {
        return Err(BAD_CHUNK);
    }
    let mut size = 0usize;
    for digit in hex {
        let value = char::from(*digit).to_digit(16).ok_or(BAD_CHUNK)?;
        size = size
            .checked_mul(16)
            .and_then(|size| size.checked_add(value as usize))
            .ok_or(BODY_TOO_LARGE)?;
    }
    let extensions = rest.trim_ascii_start();
    let well_formed = extensions.is_empty()
        || (extensions.first() == Some(&b';') && extensions.iter().all(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f)));
    if well_formed { Ok(size) } else { Err(BAD_CHUNK) }
}

/// The trailer section after the last chunk: the bytes it takes (its blank
/// line included) once whole. Its fields are read and dropped, as RFC 9110
/// section 6.5.1 allows.
fn trailer_section(wire: &[u8]) -> Result<Option<usize>, HttpError> {
    let mut slots = [httparse::EMPTY_HEADER; TRAILERS_COUNT_MAX];
    match httparse::parse_headers(wire, &mut slots) {
        Ok(httparse::Status::Complete((length, _))) if length > TRAILER_BYTES_MAX => Err(TRAILER_TOO_LARGE),
        Ok(httparse::Status::Complete((length, _))) => Ok(Some(length)),
        Ok(httparse::Status::Partial) if wire.len() >= TRAILER_BYTES_MAX => Err(TRAILER_TOO_LARGE),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(TOO_MANY_TRAILERS),
        Err(_) => Err(MALFORMED_TRAILER),
    }
}

/// The answer to send before the body of a request that asked for it.
pub fn continue_response() -> &'static [u8] {
    b"HTTP/1.1 100 Continue\r\n\r\n"
}

/// Appends a response to `out`: the status line, `headers`, the body's
/// `Content-Length` and the `Connection` field (`keep-alive` or `close`,
/// written either way so that an HTTP/1.0 client keeps the connection too).
/// Bytes that would break the framing (control characters in a value, bytes
/// outside a token in a name) are left out of the fields.
pub fn write_response(status: u16, headers: &[(&str, &str)], body: &[u8], keep_alive: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        write_field(name, value, out);
    }
    // 1xx, 204 and 304 answers have no body and no length (RFC 9110 8.6).
    let has_body = !(100..200).contains(&status) && status != 204 && status != 304;
    if has_body {
        write_field("Content-Length", &body.len().to_string(), out);
    }
    write_field("Connection", if keep_alive { "keep-alive" } else { "close" }, out);
    out.extend_from_slice(b"\r\n");
    if has_body {
        out.extend_from_slice(body);
    }
}

fn write_field(name: &str, value: &str, out: &mut Vec<u8>) {
    out.extend(name.bytes().filter(|b| is_token_byte(*b)));
    out.extend_from_slice(b": ");
    out.extend(value.bytes().filter(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f)));
    out.extend_from_slice(b"\r\n");
}

/// `tchar` of RFC 9110 section 5.6.2.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        // The reason phrase may be empty (RFC 9112 section 4).
        _ => "",
    }
}

/// Appends a successful DynamoDB answer: `body` (the operation's JSON) with
/// its content type, the request id, the CRC32 of the body that the SDKs
/// check (`x-amz-crc32`, in decimal) and the server's time (`Date`, which
/// the SDKs read to correct their clock after a "Signature expired").
pub fn json_response(request_id: &str, body: &[u8], keep_alive: bool, now_unix_ms: u64, out: &mut Vec<u8>) {
    dynamo_response(200, request_id, body, keep_alive, now_unix_ms, out);
}

/// Appends DynamoDB's answer for `error`: its status, and the body
/// `{"__type": ..., "message": ...}`. The SDKs take the error code from
/// `__type` (the name after `#`) and the message from `message` (botocore
/// and the JavaScript SDK read `message`, falling back to `Message`). Those
/// that read an `x-amzn-ErrorType` header fall back to `__type` without
/// it, so none is sent.
pub fn error_response(error: &ApiError, request_id: &str, keep_alive: bool, now_unix_ms: u64, out: &mut Vec<u8>) {
    let body = error_body(error);
    dynamo_response(
        error.kind.status(),
        request_id,
        body.as_bytes(),
        keep_alive,
        now_unix_ms,
        out,
    );
}

/// Appends a DynamoDB answer of any status with this JSON body (an error
/// whose body carries more than its message: a failed condition's `Item`).
pub fn dynamo_response(
    status: u16,
    request_id: &str,
    body: &[u8],
    keep_alive: bool,
    now_unix_ms: u64,
    out: &mut Vec<u8>,
) {
    let crc32 = crc32fast::hash(body).to_string();
    let date = date_of(now_unix_ms);
    let headers = [
        ("Content-Type", JSON_CONTENT_TYPE),
        ("x-amzn-RequestId", request_id),
        ("x-amz-crc32", crc32.as_str()),
        ("Date", date.as_str()),
    ];
    write_response(status, &headers, body, keep_alive, out);
}

/// The `Date` field's value for the server's time in milliseconds.
fn date_of(now_unix_ms: u64) -> String {
    http_date(i64::try_from(now_unix_ms / 1_000).unwrap_or(i64::MAX))
}

/// The JSON body of an API error.
pub fn error_body(error: &ApiError) -> String {
    let mut body = String::with_capacity(error.message.len() + 96);
    body.push_str("{\"__type\":");
    push_json_string(error.kind.type_name(), &mut body);
    body.push_str(",\"message\":");
    push_json_string(&error.message, &mut body);
    body.push('}');
    body
}

fn push_json_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let code = u32::from(c);
                out.push_str("\\u00");
                out.push(char::from_digit(code >> 4, 16).unwrap_or('0'));
                out.push(char::from_digit(code & 0xf, 16).unwrap_or('0'));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends the answer to a framing error: its status and reason as plain
/// text, the server's time and `Connection: close`.
pub fn http_error_response(error: &HttpError, now_unix_ms: u64, out: &mut Vec<u8>) {
    let date = date_of(now_unix_ms);
    let headers = [("Content-Type", "text/plain; charset=utf-8"), ("Date", date.as_str())];
    write_response(error.status, &headers, error.reason.as_bytes(), false, out);
}

/// Seconds in a day (UTC has no leap seconds in Unix time).
pub(crate) const SECONDS_PER_DAY: i64 = 86_400;
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the Unix epoch as HTTP's IMF-fixdate (`Thu, 01 Jan 2026
/// 00:00:00 GMT`), the form of the `Date` field.
pub fn http_date(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let second_of_day = unix_seconds.rem_euclid(SECONDS_PER_DAY);
    // 1970-01-01 was a Thursday.
    let weekday = usize::try_from((days + 3).rem_euclid(7))
        .ok()
        .and_then(|index| WEEKDAYS.get(index));
    let month_name = usize::try_from(month - 1).ok().and_then(|index| MONTHS.get(index));
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        weekday.unwrap_or(&"Thu"),
        month_name.unwrap_or(&"Jan"),
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60
    )
}

/// HTTP's IMF-fixdate (`Thu, 01 Jan 2026 00:00:00 GMT`), as seconds since the
/// Unix epoch. The weekday is not checked against the date.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let literal = |range: std::ops::Range<usize>, expected: &[u8]| bytes.get(range) == Some(expected);
    let shape = bytes.len() == 29
        && literal(3..5, b", ")
        && literal(7..8, b" ")
        && literal(11..12, b" ")
        && literal(16..17, b" ")
        && literal(19..20, b":")
        && literal(22..23, b":")
        && literal(25..29, b" GMT");
    if !shape || !WEEKDAYS.iter().any(|day| literal(0..3, day.as_bytes())) {
        return None;
    }
    let month = MONTHS.iter().position(|month| literal(8..11, month.as_bytes()))?;
    let number = |range: std::ops::Range<usize>| decimal(bytes.get(range)?);
    let date = (number(12..16)?, i64::try_from(month).ok()? + 1, number(5..7)?);
    let clock = (number(17..19)?, number(20..22)?, number(23..25)?);
    unix_seconds(date, clock)
}

/// Decimal digits only (at most 18, so the value fits).
pub(crate) fn decimal(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0, |value, digit| value * 10 + i64::from(digit - b'0')),
    )
}

/// A valid UTC date and time of day as seconds since the Unix epoch.
pub(crate) fn unix_seconds(
    (year, month, day): (i64, i64, i64),
    (hour, minute, second): (i64, i64, i64),
) -> Option<i64> {
    let day_valid = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    let clock_valid = (0..24).contains(&hour) && (0..60).contains(&minute) && (0..60).contains(&second);
    if !day_valid || !clock_valid {
        return None;
    }
    Some(days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3_600 + minute * 60 + second)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar,
/// counted in 400-year eras of 146,097 days that start on March 1st (so a
/// leap day ends its year).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day counted from 1970-01-01: the inverse of
/// [`days_from_civil`].
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days.saturating_add(719_468);
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era.saturating_mul(400).saturating_add(year_of_era) + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const PUT_ITEM: &[u8] = b"POST / HTTP/1.1\r\n\
        Host: localhost:8000\r\n\
        Content-Type: application/x-amz-json-1.0\r\n\
        X-Amz-Target: DynamoDB_20120810.PutItem\r\n\
        Content-Length: 17\r\n\
        \r\n\
        {\"TableName\":\"t\"}";

    /// A chunked body with an extension, upper- and lower-case hex and a
    /// trailer field: it decodes to `{"TableName":"chunked"}`.
    const CHUNKED: &[u8] = b"POST / HTTP/1.1\r\n\
        Host: h\r\n\
        Transfer-Encoding: chunked\r\n\
        \r\n\
        a;name=value\r\n{\"TableNam\r\n\
        D \r\ne\":\"chunked\"}\r\n\
        0\r\n\
        X-Checksum: abc\r\n\
        \r\n";

    fn limits() -> Limits {
        Limits::default()
    }

    fn parse_whole(buf: &[u8]) -> (Request, usize) {
        match parse(buf, &limits()) {
            Ok(Some(parsed)) => parsed,
            other => panic!("expected a whole request, got {other:?}"),
        }
    }

    fn parse_error(buf: &[u8], limits: &Limits) -> HttpError {
        match parse(buf, limits) {
            Err(error) => error,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn request_with(headers: &str, body: &str) -> Vec<u8> {
        format!("POST / HTTP/1.1\r\nHost: h\r\n{headers}\r\n{body}").into_bytes()
    }

    #[test]
    fn parses_a_request_with_content_length() {
        let (request, consumed) = parse_whole(PUT_ITEM);
        assert_eq!(consumed, PUT_ITEM.len());
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/");
        assert_eq!(request.minor_version, 1);
        assert_eq!(
            request.headers,
            vec![
                ("host".to_string(), "localhost:8000".to_string()),
                ("content-type".to_string(), "application/x-amz-json-1.0".to_string()),
                ("x-amz-target".to_string(), "DynamoDB_20120810.PutItem".to_string()),
                ("content-length".to_string(), "17".to_string()),
            ]
        );
        assert_eq!(request.body, b"{\"TableName\":\"t\"}");
        assert!(request.keep_alive);
        assert!(!request.expects_continue);
        assert_eq!(request.header("x-amz-target"), Some("DynamoDB_20120810.PutItem"));
        assert_eq!(request.header("authorization"), None);
    }

    #[test]
    fn splits_the_target_into_path_and_query() {
        let (request, _) = parse_whole(b"GET /a/b?x=1&y=2?z HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(request.path(), "/a/b");
        assert_eq!(request.query(), "x=1&y=2?z");
        let (request, _) = parse_whole(b"GET /only HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!((request.path(), request.query()), ("/only", ""));
    }

    #[test]
    fn keeps_every_value_of_a_repeated_field_in_order() {
        let (request, _) = parse_whole(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: one \r\nX-B: b\r\nx-a:\ttwo\r\n\r\n");
        assert_eq!(request.header_values("x-a").collect::<Vec<_>>(), ["one", "two"]);
    }

    /// Every proper prefix of a request is "not yet"; the whole is the
    /// request, whichever byte the reads were split at.
    fn assert_whole_only_at_the_end(wire: &[u8], body: &[u8]) {
        for end in 0..wire.len() {
            assert_eq!(parse(&wire[..end], &limits()), Ok(None), "prefix of {end} bytes");
            assert!(should_send_continue(&wire[..end], &limits()).is_ok());
        }
        let (request, consumed) = parse_whole(wire);
        assert_eq!(consumed, wire.len());
        assert_eq!(request.body, body);
    }

    #[test]
    fn a_request_split_at_every_byte_is_whole_only_at_its_end() {
        assert_whole_only_at_the_end(PUT_ITEM, b"{\"TableName\":\"t\"}");
        assert_whole_only_at_the_end(CHUNKED, b"{\"TableName\":\"chunked\"}");
        assert_whole_only_at_the_end(b"GET / HTTP/1.0\r\n\r\n", b"");
    }

    #[test]
    fn decodes_chunked_bodies_and_drops_trailers() {
        let (request, consumed) = parse_whole(CHUNKED);
        assert_eq!(consumed, CHUNKED.len());
        assert_eq!(request.body, b"{\"TableName\":\"chunked\"}");
        assert_eq!(request.header("x-checksum"), None);
        let (request, _) = parse_whole(&request_with("Transfer-Encoding: Chunked\r\n", "0\r\n\r\n"));
        assert_eq!(request.body, b"");
    }

    #[test]
    fn takes_pipelined_requests_one_at_a_time() {
        let get = b"GET /ping HTTP/1.1\r\nHost: h\r\n\r\n".as_slice();
        let mut wire = [get, PUT_ITEM, CHUNKED, get].concat();
        wire.extend_from_slice(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Len");
        let mut offset = 0;
        let mut bodies = Vec::new();
        while let Some((request, consumed)) = parse(&wire[offset..], &limits()).unwrap() {
            bodies.push((request.target, request.body));
            offset += consumed;
        }
        assert_eq!(offset, get.len() * 2 + PUT_ITEM.len() + CHUNKED.len());
        let expected: Vec<(String, Vec<u8>)> = vec![
            ("/ping".into(), b"".to_vec()),
            ("/".into(), b"{\"TableName\":\"t\"}".to_vec()),
            ("/".into(), b"{\"TableName\":\"chunked\"}".to_vec()),
            ("/ping".into(), b"".to_vec()),
        ];
        assert_eq!(bodies, expected);
    }

    #[test]
    fn skips_blank_lines_before_the_request_line() {
        let wire = [b"\r\n\r\n".as_slice(), PUT_ITEM].concat();
        assert_eq!(parse_whole(&wire).1, wire.len());
    }

    fn head_of_bytes(total: usize) -> Vec<u8> {
        let start = b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
        let padding = total - start.len() - 4;
        [start.as_slice(), &vec![b'p'; padding], b"\r\n\r\n"].concat()
    }

    #[test]
    fn a_head_past_its_limit_is_answered_431() {
        let largest = head_of_bytes(HEAD_BYTES_MAX);
        assert_eq!(parse_whole(&largest).1, HEAD_BYTES_MAX);
        assert_eq!(
            parse_error(&head_of_bytes(HEAD_BYTES_MAX + 1), &limits()),
            HEAD_TOO_LARGE
        );
        // Refused before its end arrives: a head not whole at the limit.
        let mut unfinished = largest[..largest.len() - 4].to_vec();
        unfinished.resize(HEAD_BYTES_MAX - 1, b'p');
        assert_eq!(parse(&unfinished, &limits()), Ok(None));
        unfinished.push(b'p');
        assert_eq!(parse_error(&unfinished, &limits()), HEAD_TOO_LARGE);
        assert_eq!(HEAD_TOO_LARGE.status, 431);
    }

    #[test]
    fn too_many_header_fields_are_answered_431() {
        let fields = |count: usize| (0..count).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
        let allowed = format!("GET / HTTP/1.1\r\nHost: h\r\n{}\r\n", fields(HEADERS_COUNT_MAX - 1));
        assert_eq!(parse_whole(allowed.as_bytes()).0.headers.len(), HEADERS_COUNT_MAX);
        let refused = format!("GET / HTTP/1.1\r\nHost: h\r\n{}\r\n", fields(HEADERS_COUNT_MAX));
        let error = parse_error(refused.as_bytes(), &limits());
        assert_eq!((error.status, error.reason), (431, "Too many header fields"));
        let capped = Limits {
            headers_count_max: usize::MAX,
            ..limits()
        };
        let beyond_cap = format!("GET / HTTP/1.1\r\nHost: h\r\n{}\r\n", fields(HEADERS_COUNT_CAP));
        assert_eq!(parse_error(beyond_cap.as_bytes(), &capped), TOO_MANY_HEADERS);
    }

    #[test]
    fn a_declared_body_past_its_limit_is_answered_413_before_it_arrives() {
        let small = Limits {
            body_bytes_max: 10,
            ..limits()
        };
        assert_eq!(parse(&request_with("Content-Length: 10\r\n", ""), &small), Ok(None));
        let error = parse_error(&request_with("Content-Length: 11\r\n", ""), &small);
        assert_eq!((error.status, error.reason), (413, "Request body too large"));
        let declared = format!("Content-Length: {}\r\n", BODY_BYTES_MAX + 1);
        assert_eq!(parse_error(&request_with(&declared, ""), &limits()), BODY_TOO_LARGE);
        let declared = format!("Content-Length: {BODY_BYTES_MAX}\r\n");
        assert_eq!(parse(&request_with(&declared, ""), &limits()), Ok(None));
        let huge = "Content-Length: 99999999999999999999999999999\r\n";
        assert_eq!(parse_error(&request_with(huge, ""), &limits()), BODY_TOO_LARGE);
    }

    #[test]
    fn a_chunked_body_past_its_limit_is_answered_413_at_the_chunk_that_passes_it() {
        let small = Limits {
            body_bytes_max: 10,
            ..limits()
        };
        let te = "Transfer-Encoding: chunked\r\n";
        let (request, _) = parse(&request_with(te, "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n"), &small)
            .unwrap()
            .unwrap();
        assert_eq!(request.body, b"abcdefghij");
        // The size line alone is enough to refuse.
        assert_eq!(
            parse_error(&request_with(te, "6\r\nabcdef\r\n5\r\n"), &small),
            BODY_TOO_LARGE
        );
        let overflow = "1ffffffffffffffffffffffffffff\r\n";
        assert_eq!(parse_error(&request_with(te, overflow), &limits()), BODY_TOO_LARGE);
    }

    #[test]
    fn too_many_chunks_are_answered_413() {
        let te = "Transfer-Encoding: chunked\r\n";
        let mut chunks = "1\r\nx\r\n".repeat(CHUNKS_COUNT_MAX - 1);
        chunks.push_str("0\r\n\r\n");
        let (request, _) = parse_whole(&request_with(te, &chunks));
        assert_eq!(request.body.len(), CHUNKS_COUNT_MAX - 1);
        let chunks = "1\r\nx\r\n".repeat(CHUNKS_COUNT_MAX);
        assert_eq!(parse_error(&request_with(te, &chunks), &limits()), TOO_MANY_CHUNKS);
    }

    #[test]
    fn refuses_malformed_chunks() {
        let te = "Transfer-Encoding: chunked\r\n";
        for body in [
            "\r\n",                   // no size
            ";ext\r\n",               // no size before an extension
            "g\r\n",                  // not hex
            "3 x\r\nabc\r\n",         // junk after the size
            "3\nabc\r\n0\r\n\r\n",    // bare LF
            "3\r\nabcX\r\n0\r\n\r\n", // data longer than its size
            "3;a\x01b\r\n",           // control character in an extension
        ] {
            assert_eq!(parse_error(&request_with(te, body), &limits()), BAD_CHUNK, "{body:?}");
        }
        let long_line = format!("1;{}\r\n", "e".repeat(CHUNK_LINE_BYTES_MAX));
        assert_eq!(
            parse_error(&request_with(te, &long_line), &limits()),
            CHUNK_LINE_TOO_LONG
        );
        let longest_line = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(CHUNK_LINE_BYTES_MAX - 5));
        assert_eq!(parse_whole(&request_with(te, &longest_line)).0.body, b"x");
    }

    #[test]
    fn bounds_the_trailer_section() {
        let te = "Transfer-Encoding: chunked\r\n";
        let many = format!("0\r\n{}\r\n", "T: v\r\n".repeat(TRAILERS_COUNT_MAX + 1));
        assert_eq!(parse_error(&request_with(te, &many), &limits()), TOO_MANY_TRAILERS);
        let large = format!("0\r\nT: {}\r\n\r\n", "v".repeat(TRAILER_BYTES_MAX));
        assert_eq!(parse_error(&request_with(te, &large), &limits()), TRAILER_TOO_LARGE);
        let unfinished = format!("0\r\nT: {}", "v".repeat(TRAILER_BYTES_MAX));
        assert_eq!(
            parse_error(&request_with(te, &unfinished), &limits()),
            TRAILER_TOO_LARGE
        );
        let malformed = "0\r\nno colon here\r\n\r\n";
        assert_eq!(parse_error(&request_with(te, malformed), &limits()), MALFORMED_TRAILER);
    }

    #[test]
    fn refuses_what_cannot_be_framed() {
        let cases: [(&[u8], HttpError); 12] = [
            (b"POST / HTTP/1.1\r\nHost: h\r\n\r\n", LENGTH_REQUIRED),
            (&request_with("Transfer-Encoding: gzip\r\n", ""), UNSUPPORTED_CODING),
            (
                &request_with("Transfer-Encoding: gzip, chunked\r\n", ""),
                UNSUPPORTED_CODING,
            ),
            (
                &request_with("Transfer-Encoding: chunked, chunked\r\n", ""),
                BAD_TRANSFER_ENCODING,
            ),
            (&request_with("Transfer-Encoding: ,\r\n", ""), BAD_TRANSFER_ENCODING),
            (
                &request_with("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", ""),
                LENGTH_AND_CHUNKED,
            ),
            (
                b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                CHUNKED_IN_HTTP_1_0,
            ),
            (
                &request_with("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd"),
                BAD_CONTENT_LENGTH,
            ),
            (&request_with("Content-Length: 3, 4\r\n", "abcd"), BAD_CONTENT_LENGTH),
            (&request_with("Content-Length: +3\r\n", "abc"), BAD_CONTENT_LENGTH),
            (&request_with("Content-Length: -1\r\n", ""), BAD_CONTENT_LENGTH),
            (&request_with("Content-Length:\r\n", ""), BAD_CONTENT_LENGTH),
        ];
        for (wire, expected) in cases {
            assert_eq!(
                parse_error(wire, &limits()),
                expected,
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
        assert_eq!(UNSUPPORTED_CODING.status, 501);
        assert_eq!(LENGTH_REQUIRED.status, 411);
    }

    #[test]
    fn takes_repeated_equal_content_lengths() {
        let (request, _) = parse_whole(&request_with("Content-Length: 3\r\ncontent-length: 3, 3\r\n", "abc"));
        assert_eq!(request.body, b"abc");
    }

    #[test]
    fn a_request_without_a_body_needs_no_length() {
        let (request, consumed) = parse_whole(b"DELETE /x HTTP/1.1\r\nHost: h\r\n\r\nGET");
        assert_eq!((request.body.len(), consumed), (0, 31));
    }

    #[test]
    fn requires_one_host_in_http_1_1_only() {
        assert_eq!(parse_error(b"GET / HTTP/1.1\r\n\r\n", &limits()), HOST_NOT_ONE);
        assert_eq!(
            parse_error(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &limits()),
            HOST_NOT_ONE
        );
        assert_eq!(parse_whole(b"GET / HTTP/1.0\r\n\r\n").0.minor_version, 0);
    }

    #[test]
    fn answers_505_to_other_versions_and_400_to_junk() {
        assert_eq!(
            parse_error(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", &limits()),
            VERSION_NOT_SUPPORTED
        );
        assert_eq!(VERSION_NOT_SUPPORTED.status, 505);
        for junk in [
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".as_slice(),
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n: no name\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n folded: v\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
            b"G\xc3\xa9T / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                parse_error(junk, &limits()),
                MALFORMED_HEAD,
                "{}",
                String::from_utf8_lossy(junk)
            );
        }
        for target in ["*", "http://h/", "h:80", "."] {
            let wire = format!("OPTIONS {target} HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(parse_error(wire.as_bytes(), &limits()), BAD_TARGET, "{target}");
        }
        let latin1 = b"GET / HTTP/1.1\r\nHost: h\r\nX: caf\xe9\r\n\r\n";
        assert_eq!(parse_error(latin1, &limits()), HEADER_NOT_UTF8);
    }

    /// A small deterministic generator (xorshift64) for the junk tests.
    struct Junk(u64);

    impl Junk {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn assert_consistent(wire: &[u8]) {
        if let Ok(Some((request, consumed))) = parse(wire, &limits()) {
            assert!(consumed <= wire.len());
            assert!(request.body.len() <= consumed);
        }
        let _ = should_send_continue(wire, &limits());
    }

    #[test]
    fn random_bytes_and_mutated_requests_never_panic() {
        let mut junk = Junk(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5_000 {
            let length = (junk.next() % 300) as usize;
            let bytes: Vec<u8> = (0..length).map(|_| junk.next() as u8).collect();
            assert_consistent(&bytes);
        }
        for wire in [PUT_ITEM, CHUNKED] {
            for index in 0..wire.len() {
                for replacement in [0u8, b'\r', b'\n', b' ', b':', b';', b'0', b'f', 0x80, 0xff] {
                    let mut mutated = wire.to_vec();
                    mutated[index] = replacement;
                    assert_consistent(&mutated);
                }
            }
        }
    }

    #[test]
    fn follows_the_keep_alive_rules_of_each_version() {
        let keep_alive = |wire: &[u8]| parse_whole(wire).0.keep_alive;
        assert!(keep_alive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!keep_alive(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
        assert!(!keep_alive(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n"
        ));
        assert!(!keep_alive(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(keep_alive(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(keep_alive(
            b"GET / HTTP/1.0\r\nConnection: upgrade\r\nConnection: keep-alive\r\n\r\n"
        ));
    }

    #[test]
    fn says_when_to_send_100_continue() {
        let head = request_with("Expect: 100-continue\r\nContent-Length: 5\r\n", "");
        assert_eq!(parse(&head, &limits()), Ok(None));
        assert_eq!(should_send_continue(&head, &limits()), Ok(true));
        assert_eq!(should_send_continue(&head[..head.len() - 1], &limits()), Ok(false));
        let mut started = head.clone();
        started.extend_from_slice(b"ab");
        assert_eq!(should_send_continue(&started, &limits()), Ok(false));
        started.extend_from_slice(b"cde");
        let (request, consumed) = parse_whole(&started);
        assert!(request.expects_continue);
        assert_eq!(
            (request.body.as_slice(), consumed),
            (b"abcde".as_slice(), started.len())
        );

        let chunked = request_with("Expect: 100-Continue\r\nTransfer-Encoding: chunked\r\n", "");
        assert_eq!(should_send_continue(&chunked, &limits()), Ok(true));
        let empty = request_with("Expect: 100-continue\r\nContent-Length: 0\r\n", "");
        assert_eq!(should_send_continue(&empty, &limits()), Ok(false));
        let old = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(should_send_continue(old, &limits()), Ok(false));
        let other = request_with("Expect: something-else\r\nContent-Length: 5\r\n", "");
        assert_eq!(should_send_continue(&other, &limits()), Ok(false));
        let small = Limits {
            body_bytes_max: 4,
            ..limits()
        };
        assert_eq!(should_send_continue(&head, &small), Err(BODY_TOO_LARGE));
        assert_eq!(continue_response(), b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    /// 2026-03-04T05:06:07Z.
    const NOW_UNIX_MS: u64 = 1_772_600_767_250;

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn writes_responses() {
        let mut out = Vec::new();
        write_response(200, &[("X-A", "1")], b"hi", true, &mut out);
        assert_eq!(
            text(&out),
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"
        );
        out.clear();
        write_response(204, &[], b"ignored", false, &mut out);
        assert_eq!(text(&out), "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        out.clear();
        write_response(299, &[("Bad\r\nName", "v\r\nInjected: yes\x00")], b"", false, &mut out);
        assert_eq!(
            text(&out),
            "HTTP/1.1 299 \r\nBadName: vInjected: yes\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn writes_dynamodb_answers_with_their_crc32() {
        let mut out = Vec::new();
        json_response("REQ1", b"{\"TableNames\":[]}", true, NOW_UNIX_MS, &mut out);
        assert_eq!(
            text(&out),
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-RequestId: REQ1\r\n\
             x-amz-crc32: 1315925753\r\nDate: Wed, 04 Mar 2026 05:06:07 GMT\r\nContent-Length: 17\r\n\
             Connection: keep-alive\r\n\r\n{\"TableNames\":[]}"
        );
    }

    #[test]
    fn writes_api_errors_as_dynamodb_does() {
        let error = ApiError::validation("a \"b\"\n\u{1}");
        let body =
            "{\"__type\":\"com.amazon.coral.validate#ValidationException\",\"message\":\"a \\\"b\\\"\\n\\u0001\"}";
        assert_eq!(error_body(&error), body);
        let mut out = Vec::new();
        error_response(&error, "REQ2", false, NOW_UNIX_MS, &mut out);
        let expected = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-RequestId: REQ2\r\n\
             x-amz-crc32: 971937953\r\nDate: Wed, 04 Mar 2026 05:06:07 GMT\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(text(&out), expected);
        out.clear();
        error_response(
            &ApiError::new(ErrorKind::ServiceUnavailable, "é"),
            "R",
            true,
            NOW_UNIX_MS,
            &mut out,
        );
        assert!(text(&out).starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(text(&out).ends_with("\"message\":\"é\"}"));
    }

    #[test]
    fn writes_framing_errors_and_closes() {
        let mut out = Vec::new();
        http_error_response(&HEAD_TOO_LARGE, NOW_UNIX_MS, &mut out);
        assert_eq!(
            text(&out),
            "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Date: Wed, 04 Mar 2026 05:06:07 GMT\r\nContent-Length: 22\r\nConnection: close\r\n\r\n\
             Request head too large"
        );
    }

    #[test]
    fn writes_and_reads_http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_709_210_096), "Thu, 29 Feb 2024 12:34:56 GMT");
        assert_eq!(http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
        assert_eq!(http_date(4_102_444_800), "Fri, 01 Jan 2100 00:00:00 GMT");
        assert_eq!(parse_http_date("Thu, 29 Feb 2024 12:34:56 GMT"), Some(1_709_210_096));
        assert_eq!(parse_http_date("Thu, 29 Feb 2023 12:34:56 GMT"), None);
        assert_eq!(parse_http_date("Thu, 01 Jan 2026 24:00:00 GMT"), None);
        assert_eq!(parse_http_date("Thu, 01 Xyz 2026 00:00:00 GMT"), None);
        assert_eq!(parse_http_date("Thu, 01 Jan 2026 00:00:00 GMT "), None);
        assert!(!date_of(u64::MAX).is_empty());
        for day in [-800_000i64, -1, 0, 1, 59, 60, 10_956, 2_932_896] {
            let (year, month, date) = civil_from_days(day);
            assert_eq!(days_from_civil(year, month, date), day, "day {day}");
        }
    }
}
