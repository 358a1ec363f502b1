//! Verification of AWS Signature Version 4 on the endpoint's requests, as
//! the AWS General Reference's "Signature Version 4 signing process"
//! defines it, and the credentials it checks them against.
//!
//! [`verify`] rebuilds the canonical request (method, URI-encoded path,
//! canonical query, the signed header fields trimmed and with inner
//! whitespace collapsed, the signed header names, the payload's SHA-256),
//! the string to sign and the signing key (HMAC chain over date, region,
//! service and `aws4_request`), and compares signatures in constant time.
//!
//! A request is checked in the order DynamoDB checks it, so a client sees
//! the error DynamoDB would give first, with DynamoDB's words: the
//! `Authorization` field is there and starts with `AWS4-`; its parameters
//! are `key=value` pairs, with `Credential`, `Signature`, `SignedHeaders`
//! and a date; the date is ISO 8601 basic format and within 15 minutes of
//! the server's time; `host` is signed; the algorithm is
//! `AWS4-HMAC-SHA256`; the credential has five parts and its scope is
//! right; the access key is known; the signature matches; and the request
//! carries no session token (the endpoint's keys are long-term ones).
//!
//! The time is a parameter, never read from a clock.

use crate::error::{ApiError, ErrorKind};
use crate::http::{Request, SECONDS_PER_DAY, civil_from_days, decimal, parse_http_date, unix_seconds};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// The only algorithm DynamoDB takes.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service a credential's scope must name.
pub const SERVICE: &str = "dynamodb";
/// The last part of a credential's scope.
pub const TERMINATOR: &str = "aws4_request";
/// How far a request's date may be from the server's time, either way.
pub const CLOCK_SKEW_MINUTES_MAX: i64 = 15;
/// Credentials a [`Credentials`] may hold.
pub const CREDENTIALS_MAX: usize = 10_000;
/// Lines a credentials file may have, comments and blank lines included.
pub const CREDENTIALS_LINES_MAX: usize = 100_000;
/// Bytes of an access key id (AWS's are 16 to 128 characters).
pub const ACCESS_KEY_ID_BYTES_MAX: usize = 128;
/// Bytes of a secret access key.
pub const SECRET_ACCESS_KEY_BYTES_MAX: usize = 128;
/// Header names a request's `SignedHeaders` may list.
pub const SIGNED_HEADERS_MAX: usize = 128;
/// Bytes of a region name in a credential's scope.
pub const REGION_BYTES_MAX: usize = 64;

const SECONDS_PER_MINUTE: i64 = 60;
const MILLISECONDS_PER_SECOND: u64 = 1_000;

/// The access keys the endpoint knows, each with its secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    secrets: BTreeMap<String, String>,
}

/// Why a credentials file was refused: the line (counting from 1) and what
/// is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialsError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "credentials line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for CredentialsError {}

impl fmt::Debug for Credentials {
    /// Names the access keys, never their secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_ids", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Credentials {
    /// Reads a credentials file: one `ACCESS_KEY_ID SECRET_ACCESS_KEY` pair a
    /// line, separated by spaces or tabs; blank lines and lines starting with
    /// `#` are skipped. Anything else is refused, naming its line.
    pub fn parse(text: &str) -> Result<Credentials, CredentialsError> {
        let mut secrets = BTreeMap::new();
        let mut first_lines = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let refuse = |reason: String| CredentialsError { line: number, reason };
            if number > CREDENTIALS_LINES_MAX {
                return Err(refuse(format!("more than {CREDENTIALS_LINES_MAX} lines")));
            }
            let Some((id, secret)) = credential_line(line).map_err(|reason| refuse(reason.to_string()))? else {
                continue;
            };
            if let Some(first) = first_lines.get(id) {
                return Err(refuse(format!("access key id {id} is already on line {first}")));
            }
            if secrets.len() == CREDENTIALS_MAX {
                return Err(refuse(format!("more than {CREDENTIALS_MAX} credentials")));
            }
            first_lines.insert(id, number);
            secrets.insert(id.to_string(), secret.to_string());
        }
        Ok(Credentials { secrets })
    }

    /// How many access keys are known.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The known access key id equal to `id`, and its secret.
    fn lookup(&self, id: &str) -> Option<(&str, &str)> {
        self.secrets
            .get_key_value(id)
            .map(|(id, secret)| (id.as_str(), secret.as_str()))
    }
}

/// A line's credential, `None` for a blank or comment line.
fn credential_line(line: &str) -> Result<Option<(&str, &str)>, &'static str> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut fields = line.split_ascii_whitespace();
    let (Some(id), Some(secret), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err("expected ACCESS_KEY_ID SECRET_ACCESS_KEY");
    };
    // The id is read back out of `Credential=ID/date/...`: no separator of
    // that syntax may be in it.
    let id_allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.';
    if id.len() > ACCESS_KEY_ID_BYTES_MAX || !id.bytes().all(id_allowed) {
        return Err("the access key id must be 1 to 128 letters, digits, '_', '-' or '.'");
    }
    if secret.len() > SECRET_ACCESS_KEY_BYTES_MAX || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the secret access key must be 1 to 128 printable ASCII characters");
    }
    Ok(Some((id, secret)))
}

/// Checks the signature of `request` against `credentials` at the server's
/// time `now_unix_ms`; answers the access key id that signed it, or the
/// error DynamoDB answers.
pub fn verify<'c>(request: &Request, credentials: &'c Credentials, now_unix_ms: u64) -> Result<&'c str, ApiError> {
    verify_for_service(request, credentials, now_unix_ms, SERVICE)
}

/// [`verify`] for any service: the AWS documentation's worked example signs
/// for IAM.
fn verify_for_service<'c>(
    request: &Request,
    credentials: &'c Credentials,
    now_unix_ms: u64,
    service: &str,
) -> Result<&'c str, ApiError> {
    let authorization = authorization_field(request)?;
    let fields = AuthorizationFields::parse(authorization)?;
    let amz_date = request.header("x-amz-date");
    let date_text = amz_date.or_else(|| request.header("date"));
    let (credential, signature, signed_headers, date_text) = fields.require(authorization, date_text)?;
    let time = RequestTime::parse(date_text, amz_date.is_none())?;
    check_clock(&time, now_unix_ms)?;
    let signed_headers = signed_header_names(signed_headers)?;
    if fields.algorithm != ALGORITHM {
        let message = format!(
            "Unsupported AWS 'algorithm': '{}' (only {ALGORITHM} for now). ",
            fields.algorithm
        );
        return Err(ApiError::new(ErrorKind::IncompleteSignature, message));
    }
    let scope = Scope::parse(credential)?;
    scope.check(&time, service)?;
    let Some((access_key_id, secret)) = credentials.lookup(scope.access_key_id) else {
        return Err(unrecognized_client(
            "The security token included in the request is invalid.",
        ));
    };
    let payload_hash = payload_hash(request)?;
    let canonical = canonical_request(request, &signed_headers, &payload_hash)?;
    let string_to_sign = string_to_sign(&time.basic, &scope.text(), &canonical);
    let key = signing_key(secret, scope.date, scope.region, scope.service).ok_or_else(internal_error)?;
    let expected = hex(&hmac_sha256(&key, string_to_sign.as_bytes()).ok_or_else(internal_error)?);
    if !constant_time_eq::constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(signature_mismatch(&canonical, &string_to_sign));
    }
    if request.header("x-amz-security-token").is_some() {
        return Err(unrecognized_client(
            "The security token included in the request is invalid",
        ));
    }
    Ok(access_key_id)
}

fn incomplete_signature(message: String) -> ApiError {
    ApiError::new(ErrorKind::IncompleteSignature, message)
}

fn invalid_signature(message: String) -> ApiError {
    ApiError::new(ErrorKind::InvalidSignature, message)
}

fn unrecognized_client(message: &str) -> ApiError {
    ApiError::new(ErrorKind::UnrecognizedClient, message)
}

/// HMAC takes keys of any length, so computing one cannot fail; were the
/// library ever to refuse, the request is refused rather than checked
/// against a key that is not its own.
fn internal_error() -> ApiError {
    ApiError::new(
        ErrorKind::InternalServerError,
        "The server encountered an internal error trying to fulfill the request.",
    )
}

/// The `Authorization` field, if there is one and it is a SigV4 one.
fn authorization_field(request: &Request) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::new(
            ErrorKind::MissingAuthenticationToken,
            "Request is missing Authentication Token",
        )
    };
    let mut values = request.header_values("authorization");
    let Some(authorization) = values.next() else {
        return Err(missing());
    };
    if values.next().is_some() {
        return Err(incomplete_signature("More than one Authorization header.".to_string()));
    }
    if authorization.trim_start().starts_with("AWS4-") {
        Ok(authorization)
    } else {
        Err(missing())
    }
}

/// The parts of an `Authorization` field: the algorithm, then `key=value`
/// parameters separated by commas or whitespace.
struct AuthorizationFields<'a> {
    algorithm: &'a str,
    credential: Option<&'a str>,
    signed_headers: Option<&'a str>,
    signature: Option<&'a str>,
}

impl<'a> AuthorizationFields<'a> {
    fn parse(authorization: &'a str) -> Result<AuthorizationFields<'a>, ApiError> {
        let trimmed = authorization.trim();
        let (algorithm, parameters) = trimmed.split_once([' ', '\t']).unwrap_or((trimmed, ""));
        let mut fields = AuthorizationFields {
            algorithm,
            credential: None,
            signed_headers: None,
            signature: None,
        };
        let separator = |c: char| c == ',' || c == ' ' || c == '\t';
        for parameter in parameters.split(separator).filter(|parameter| !parameter.is_empty()) {
            let Some((key, value)) = parameter.split_once('=') else {
                return Err(incomplete_signature(format!(
                    "'{parameter}' not a valid key=value pair (missing equal-sign) in Authorization header: \
                     '{authorization}'."
                )));
            };
            match key {
                "Credential" => fields.credential = Some(value),
                "SignedHeaders" => fields.signed_headers = Some(value),
                "Signature" => fields.signature = Some(value),
                _ => {}
            }
        }
        Ok(fields)
    }

    /// The credential, signature, signed headers and date, or DynamoDB's
    /// error naming all of those missing. An empty `SignedHeaders` is taken
    /// here and refused later, for not signing `host`.
    fn require(
        &self,
        authorization: &str,
        date_text: Option<&'a str>,
    ) -> Result<(&'a str, &'a str, &'a str, &'a str), ApiError> {
        let credential = self.credential.filter(|value| !value.is_empty());
        let signature = self.signature.filter(|value| !value.is_empty());
        let mut message = String::new();
        if credential.is_none() {
            message.push_str("Authorization header requires 'Credential' parameter. ");
        }
        if signature.is_none() {
            message.push_str("Authorization header requires 'Signature' parameter. ");
        }
        if self.signed_headers.is_none() {
            message.push_str("Authorization header requires 'SignedHeaders' parameter. ");
        }
        if date_text.is_none() {
            message.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
        }
        match (credential, signature, self.signed_headers, date_text) {
            (Some(credential), Some(signature), Some(signed_headers), Some(date_text)) => {
                Ok((credential, signature, signed_headers, date_text))
            }
            _ => Err(incomplete_signature(format!("{message}Authorization={authorization}"))),
        }
    }
}

/// The request's date: seconds since the Unix epoch, and the ISO 8601 basic
/// form (`20260101T000000Z`) the string to sign and the scope use.
struct RequestTime {
    unix_seconds: i64,
    basic: String,
}

impl RequestTime {
    /// ISO 8601 basic format; in a `Date` field (`http_date`), HTTP's
    /// IMF-fixdate (`Thu, 01 Jan 2026 00:00:00 GMT`) too.
    fn parse(text: &str, http_date: bool) -> Result<RequestTime, ApiError> {
        let imf_fixdate = || parse_http_date(text).filter(|_| http_date);
        let unix_seconds = parse_basic_time(text).or_else(imf_fixdate).ok_or_else(|| {
            incomplete_signature(format!(
                "Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })?;
        Ok(RequestTime {
            unix_seconds,
            basic: format_basic_time(unix_seconds),
        })
    }

    /// `YYYYMMDD`, the date of the scope.
    fn day(&self) -> &str {
        self.basic.get(..8).unwrap_or_default()
    }
}

/// A request signed more than [`CLOCK_SKEW_MINUTES_MAX`] before or after
/// the server's time (to the second) is refused with DynamoDB's words.
fn check_clock(time: &RequestTime, now_unix_ms: u64) -> Result<(), ApiError> {
    let now = i64::try_from(now_unix_ms / MILLISECONDS_PER_SECOND).unwrap_or(i64::MAX);
    let skew_seconds = CLOCK_SKEW_MINUTES_MAX * SECONDS_PER_MINUTE;
    let earliest = now.saturating_sub(skew_seconds);
    let latest = now.saturating_add(skew_seconds);
    if time.unix_seconds < earliest {
        return Err(invalid_signature(format!(
            "Signature expired: {} is now earlier than {} ({} - {CLOCK_SKEW_MINUTES_MAX} min.)",
            time.basic,
            format_basic_time(earliest),
            format_basic_time(now)
        )));
    }
    if time.unix_seconds > latest {
        return Err(invalid_signature(format!(
            "Signature not yet current: {} is still later than {} ({} + {CLOCK_SKEW_MINUTES_MAX} min.)",
            time.basic,
            format_basic_time(latest),
            format_basic_time(now)
        )));
    }
    Ok(())
}

/// The signed header names, lowercased, sorted and without repeats, as the
/// canonical request lists them; `host` must be among them.
fn signed_header_names(list: &str) -> Result<Vec<String>, ApiError> {
    let mut names = Vec::new();
    for name in list.split(';') {
        if names.len() == SIGNED_HEADERS_MAX {
            return Err(incomplete_signature(format!(
                "Authorization header names more than {SIGNED_HEADERS_MAX} SignedHeaders."
            )));
        }
        names.push(name.to_ascii_lowercase());
    }
    names.sort_unstable();
    names.dedup();
    if names.iter().any(|name| name == "host") {
        Ok(names)
    } else {
        Err(invalid_signature(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".to_string(),
        ))
    }
}

/// A credential: `ACCESS_KEY_ID/YYYYMMDD/region/service/aws4_request`.
struct Scope<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
}

impl<'a> Scope<'a> {
    /// Five parts separated by `/` (trailing slashes ignored, as DynamoDB
    /// does).
    fn parse(credential: &'a str) -> Result<Scope<'a>, ApiError> {
        let mut parts = credential.trim_end_matches('/').split('/');
        let (Some(access_key_id), Some(date), Some(region), Some(service), Some(terminator), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(incomplete_signature(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, \
                 got '{credential}'"
            )));
        };
        Ok(Scope {
            access_key_id,
            date,
            region,
            service,
            terminator,
        })
    }

    /// Every wrong part of the scope, in one error as DynamoDB gives it. Any
    /// region name is taken (the endpoint serves whatever region a client is
    /// configured with) as long as it is one.
    fn check(&self, time: &RequestTime, service: &str) -> Result<(), ApiError> {
        let mut problems = Vec::new();
        let region_valid = !self.region.is_empty()
            && self.region.len() <= REGION_BYTES_MAX
            && self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_valid {
            problems.push(format!(
                "Credential should be scoped to a valid region, not '{}'.",
                self.region
            ));
        }
        if self.service != service {
            problems.push(format!("Credential should be scoped to correct service: '{service}'."));
        }
        if self.terminator != TERMINATOR {
            problems.push(format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
                self.terminator
            ));
        }
        if self.date != time.day() {
            problems.push(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
                 '{}' != '{}', from '{}'.",
                self.date,
                time.day(),
                time.basic
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(invalid_signature(problems.join(" ")))
        }
    }

    /// `YYYYMMDD/region/service/aws4_request`.
    fn text(&self) -> String {
        format!("{}/{}/{}/{}", self.date, self.region, self.service, self.terminator)
    }
}

/// The SHA-256 of the body, in hex. A client may send it in
/// `x-amz-content-sha256`; then it must be the body's, or the body would
/// not be covered by the signature.
fn payload_hash(request: &Request) -> Result<String, ApiError> {
    let computed = hex(&sha256(&request.body));
    match request.header("x-amz-content-sha256") {
        Some(claimed) if claimed != computed => Err(invalid_signature(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".to_string(),
        )),
        _ => Ok(computed),
    }
}

/// The canonical request: method, canonical URI, canonical query, canonical
/// headers, signed header names and payload hash, one a line.
fn canonical_request(request: &Request, signed_headers: &[String], payload_hash: &str) -> Result<String, ApiError> {
    let mut canonical = String::with_capacity(512);
    canonical.push_str(&request.method);
    canonical.push('\n');
    canonical.push_str(&canonical_uri(request.path()));
    canonical.push('\n');
    canonical.push_str(&canonical_query(request.query()));
    canonical.push('\n');
    for name in signed_headers {
        let mut values = request.header_values(name).peekable();
        if values.peek().is_none() {
            return Err(incomplete_signature(format!(
                "'{name}' is named as a SignedHeader, but it does not exist in the HTTP request."
            )));
        }
        canonical.push_str(name);
        canonical.push(':');
        for (index, value) in values.enumerate() {
            if index > 0 {
                canonical.push(',');
            }
            push_collapsed(value, &mut canonical);
        }
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed_headers.join(";"));
    canonical.push('\n');
    canonical.push_str(payload_hash);
    Ok(canonical)
}

/// A header value trimmed, each run of spaces and tabs inside it made one
/// space.
fn push_collapsed(value: &str, out: &mut String) {
    for (index, word) in value.split([' ', '\t']).filter(|word| !word.is_empty()).enumerate() {
        if index > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// The path with `.` and `..` segments resolved and empty segments dropped,
/// then URI-encoded: the path as sent is already encoded once, so this is
/// the encoding twice that every service but S3 signs.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    normalized.push('/');
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    let mut encoded = String::with_capacity(normalized.len());
    push_uri_encoded(normalized.as_bytes(), true, &mut encoded);
    encoded
}

/// The query's parameters, each name and value decoded then URI-encoded,
/// sorted by name then value, joined by `&`. A parameter without `=` has an
/// empty value.
fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .map(|parameter| {
            let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            (reencode(name), reencode(value))
        })
        .collect();
    pairs.sort_unstable();
    let joined: Vec<String> = pairs
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    joined.join("&")
}

fn reencode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    push_uri_encoded(&percent_decode(text), false, &mut encoded);
    encoded
}

/// `%XX` sequences decoded; a `%` not followed by two hex digits is kept.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = bytes.get(index + 1..index + 3).and_then(|hex| {
            let high = char::from(*hex.first()?).to_digit(16)?;
            let low = char::from(*hex.get(1)?).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        });
        match (byte, escaped) {
            (b'%', Some(value)) => {
                decoded.push(value);
                index += 3;
            }
            _ => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    decoded
}

/// URI encoding as SigV4 defines it: every byte but the unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) as `%XX` with upper-case hex, and `/`
/// kept in paths.
fn push_uri_encoded(bytes: &[u8], keep_slash: bool, out: &mut String) {
    for &byte in bytes {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(hex_digit(byte >> 4).to_ascii_uppercase());
            out.push(hex_digit(byte & 0xf).to_ascii_uppercase());
        }
    }
}

/// `AWS4-HMAC-SHA256`, the request's time, the scope and the canonical
/// request's hash, one a line.
fn string_to_sign(request_time: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{request_time}\n{scope}\n{}",
        hex(&sha256(canonical_request.as_bytes()))
    )
}

/// HMAC of `AWS4` and the secret over the date, then the region, the
/// service and `aws4_request`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Option<[u8; 32]> {
    let mut key = Vec::with_capacity(4 + secret.len());
    key.extend_from_slice(b"AWS4");
    key.extend_from_slice(secret.as_bytes());
    let date_key = hmac_sha256(&key, date.as_bytes())?;
    let region_key = hmac_sha256(&date_key, region.as_bytes())?;
    let service_key = hmac_sha256(&region_key, service.as_bytes())?;
    hmac_sha256(&service_key, TERMINATOR.as_bytes())
}

fn signature_mismatch(canonical_request: &str, string_to_sign: &str) -> ApiError {
    invalid_signature(format!(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
         Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String \
         for this request should have been\n'{canonical_request}'\n\nThe String-to-Sign should have been\n\
         '{string_to_sign}'\n"
    ))
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (slot, byte) in out.iter_mut().zip(Sha256::digest(data)) {
        *slot = byte;
    }
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Option<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).ok()?;
    mac.update(data);
    let mut out = [0u8; 32];
    for (slot, byte) in out.iter_mut().zip(mac.finalize().into_bytes()) {
        *slot = byte;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(hex_digit(byte >> 4));
        text.push(hex_digit(byte & 0xf));
    }
    text
}

/// The lower-case hex digit of a nibble.
fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble & 0xf), 16).unwrap_or('0')
}

/// `YYYYMMDDTHHMMSSZ`, as seconds since the Unix epoch.
fn parse_basic_time(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes.get(8) != Some(&b'T') || bytes.get(15) != Some(&b'Z') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| decimal(bytes.get(range)?);
    let date = (number(0..4)?, number(4..6)?, number(6..8)?);
    let clock = (number(9..11)?, number(11..13)?, number(13..15)?);
    unix_seconds(date, clock)
}

/// Seconds since the Unix epoch as `YYYYMMDDTHHMMSSZ`.
fn format_basic_time(unix_seconds: i64) -> String {
    let (year, month, day) = civil_from_days(unix_seconds.div_euclid(SECONDS_PER_DAY));
    let second_of_day = unix_seconds.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Limits, parse};

    // Requests signed by botocore 1.43.11's own `SigV4Auth` at fixed times,
    // printed as raw HTTP/1.1 by this script:
    //
    //     import datetime
    //     from unittest import mock
    //     import botocore.auth
    //     from botocore.awsrequest import AWSRequest
    //     from botocore.credentials import Credentials
    //
    //     def raw(method, url, host, headers, body, key, secret, region, when, token=None):
    //         request = AWSRequest(method=method, url=url, data=body, headers=headers)
    //         with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
    //             botocore.auth.SigV4Auth(Credentials(key, secret, token), "dynamodb", region).add_auth(request)
    //         lines = [f"{method} {url.split(host, 1)[1]} HTTP/1.1", f"Host: {host}"]
    //         lines += [f"{name}: {value}" for name, value in request.headers.items()]
    //         if body:
    //             lines.append(f"Content-Length: {len(body)}")
    //         return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    //
    //     KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    //     PUT_ITEM = raw("POST", "http://localhost:8000/", "localhost:8000",
    //         {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.PutItem"},
    //         b'{"TableName":"t","Item":{"pk":{"S":"a"},"n":{"N":"1"}}}', KEY, SECRET, "us-east-1",
    //         datetime.datetime(2026, 1, 1, 0, 0, 0))
    //     LIST_TABLES = raw("POST", "http://127.0.0.1:8000/", "127.0.0.1:8000",
    //         {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.ListTables",
    //          "X-Amz-Content-SHA256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    //          "X-Custom": "  a   b \t c  "},
    //         b"{}", "AKIDOTHER", "secret+/with=chars", "local", datetime.datetime(2026, 3, 4, 5, 6, 7))
    //     QUERY_PATH = raw("GET", "http://localhost:8000/a%20b/./c//d/?b=2&a=1&a=0&k=v%2Fx&e",
    //         "localhost:8000", {}, b"", KEY, SECRET, "eu-west-1", datetime.datetime(2026, 12, 31, 23, 59, 59))
    //     SESSION_TOKEN = raw("POST", "http://localhost:8000/", "localhost:8000",
    //         {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.ListTables"},
    //         b"{}", KEY, SECRET, "us-east-1", datetime.datetime(2026, 1, 1, 0, 0, 0), token="SESSIONTOKEN")

    const PUT_ITEM: &[u8] = b"POST / HTTP/1.1\r\n\
        Host: localhost:8000\r\n\
        Content-Type: application/x-amz-json-1.0\r\n\
        X-Amz-Target: DynamoDB_20120810.PutItem\r\n\
        X-Amz-Date: 20260101T000000Z\r\n\
        Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/dynamodb/aws4_request, \
        SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
        Signature=f2e6786ff022b086ef7d26533114cbb61cc7f6e4905f3413f32d3c73ca41f41d\r\n\
        Content-Length: 55\r\n\
        \r\n\
        {\"TableName\":\"t\",\"Item\":{\"pk\":{\"S\":\"a\"},\"n\":{\"N\":\"1\"}}}";
    /// 2026-01-01T00:00:00Z.
    const PUT_ITEM_UNIX_MS: u64 = 1_767_225_600_000;

    const LIST_TABLES: &[u8] = b"POST / HTTP/1.1\r\n\
        Host: 127.0.0.1:8000\r\n\
        Content-Type: application/x-amz-json-1.0\r\n\
        X-Amz-Target: DynamoDB_20120810.ListTables\r\n\
        X-Amz-Content-SHA256: 44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\r\n\
        X-Custom:   a   b \t c  \r\n\
        X-Amz-Date: 20260304T050607Z\r\n\
        Authorization: AWS4-HMAC-SHA256 Credential=AKIDOTHER/20260304/local/dynamodb/aws4_request, \
        SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target;x-custom, \
        Signature=61591e2352c5cfdc8f9bcfa2d181dbf5847a114156b444546c3fe172ae59367f\r\n\
        Content-Length: 2\r\n\
        \r\n\
        {}";
    /// 2026-03-04T05:06:07Z.
    const LIST_TABLES_UNIX_MS: u64 = 1_772_600_767_000;

    const QUERY_PATH: &[u8] = b"GET /a%20b/./c//d/?b=2&a=1&a=0&k=v%2Fx&e HTTP/1.1\r\n\
        Host: localhost:8000\r\n\
        X-Amz-Date: 20261231T235959Z\r\n\
        Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261231/eu-west-1/dynamodb/aws4_request, \
        SignedHeaders=host;x-amz-date, \
        Signature=6001558183e27e1cc07ba8e04e4f3c1b862c48414f55bc4fa6be9709b9bb387d\r\n\
        \r\n";
    /// 2026-12-31T23:59:59Z.
    const QUERY_PATH_UNIX_MS: u64 = 1_798_761_599_000;

    const SESSION_TOKEN: &[u8] = b"POST / HTTP/1.1\r\n\
        Host: localhost:8000\r\n\
        Content-Type: application/x-amz-json-1.0\r\n\
        X-Amz-Target: DynamoDB_20120810.ListTables\r\n\
        X-Amz-Date: 20260101T000000Z\r\n\
        X-Amz-Security-Token: SESSIONTOKEN\r\n\
        Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/dynamodb/aws4_request, \
        SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, \
        Signature=10a85c57fb0d610001440dfd3c9d5cf90983fb3d49604fbb9ac26c75896d3535\r\n\
        Content-Length: 2\r\n\
        \r\n\
        {}";

    /// The worked example of the AWS General Reference's SigV4 pages (IAM
    /// ListUsers, signed 2015-08-30T12:36:00Z).
    const DOCUMENTATION_EXAMPLE: &[u8] = b"GET /?Action=ListUsers&Version=2010-05-08 HTTP/1.1\r\n\
        Host: iam.amazonaws.com\r\n\
        Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n\
        X-Amz-Date: 20150830T123600Z\r\n\
        Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
        SignedHeaders=content-type;host;x-amz-date, \
        Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7\r\n\
        \r\n";
    const DOCUMENTATION_EXAMPLE_UNIX_MS: u64 = 1_440_938_160_000;

    const CREDENTIALS: &str = "# test keys\n\
        AKIDEXAMPLE wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n\
        \n\
        \tAKIDOTHER   secret+/with=chars  \n";

    fn credentials() -> Credentials {
        Credentials::parse(CREDENTIALS).unwrap()
    }

    fn request(wire: &[u8]) -> Request {
        match parse(wire, &Limits::default()) {
            Ok(Some((request, consumed))) if consumed == wire.len() => request,
            other => panic!("not one whole request: {other:?}"),
        }
    }

    /// `wire` with the first occurrence of `from` replaced by `to`.
    fn edited(wire: &[u8], from: &str, to: &str) -> Request {
        let text = std::str::from_utf8(wire).unwrap();
        assert!(text.contains(from), "{from} not in the request");
        request(text.replacen(from, to, 1).as_bytes())
    }

    fn refusal(request: &Request, now_unix_ms: u64) -> (ErrorKind, String) {
        match verify(request, &credentials(), now_unix_ms) {
            Err(error) => (error.kind, error.message),
            Ok(id) => panic!("accepted, signed by {id}"),
        }
    }

    #[test]
    fn the_documentation_example_gives_its_published_values() {
        let request = request(DOCUMENTATION_EXAMPLE);
        let names = signed_header_names("content-type;host;x-amz-date").unwrap();
        let canonical = canonical_request(&request, &names, &hex(&sha256(b""))).unwrap();
        assert_eq!(
            canonical,
            "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
             content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\n\
             x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(canonical.as_bytes())),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        )
        .unwrap();
        assert_eq!(
            hex(&key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        let to_sign = string_to_sign("20150830T123600Z", "20150830/us-east-1/iam/aws4_request", &canonical);
        assert_eq!(
            hex(&hmac_sha256(&key, to_sign.as_bytes()).unwrap()),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
        let credentials = credentials();
        let verified = verify_for_service(&request, &credentials, DOCUMENTATION_EXAMPLE_UNIX_MS, "iam");
        assert_eq!(verified, Ok("AKIDEXAMPLE"));
        // Signed for IAM, so not for DynamoDB.
        let (kind, message) = refusal(&request, DOCUMENTATION_EXAMPLE_UNIX_MS);
        assert_eq!(kind, ErrorKind::InvalidSignature);
        assert_eq!(message, "Credential should be scoped to correct service: 'dynamodb'.");
    }

    #[test]
    fn requests_signed_by_botocore_verify() {
        let credentials = credentials();
        assert_eq!(
            verify(&request(PUT_ITEM), &credentials, PUT_ITEM_UNIX_MS),
            Ok("AKIDEXAMPLE")
        );
        assert_eq!(
            verify(&request(LIST_TABLES), &credentials, LIST_TABLES_UNIX_MS),
            Ok("AKIDOTHER")
        );
        assert_eq!(
            verify(&request(QUERY_PATH), &credentials, QUERY_PATH_UNIX_MS),
            Ok("AKIDEXAMPLE")
        );
    }

    #[test]
    fn canonicalizes_paths_and_queries_as_botocore_signs_them() {
        assert_eq!(canonical_uri("/a%20b/./c//d/"), "/a%2520b/c/d/");
        assert_eq!(canonical_uri("/a/b/../c"), "/a/c");
        assert_eq!(canonical_uri("/../.."), "/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/ü~"), "/%C3%BC~");
        assert_eq!(canonical_query("b=2&a=1&a=0&k=v%2Fx&e"), "a=0&a=1&b=2&e=&k=v%2Fx");
        assert_eq!(canonical_query("x=a+b%2a%zz&y=%7E"), "x=a%2Bb%2A%25zz&y=~");
        assert_eq!(canonical_query(""), "");
        let mut collapsed = String::new();
        push_collapsed("  a   b \t c  ", &mut collapsed);
        assert_eq!(collapsed, "a b c");
    }

    #[test]
    fn every_tampered_byte_of_the_signed_parts_is_refused() {
        let credentials = credentials();
        for (wire, now_unix_ms) in [(PUT_ITEM, PUT_ITEM_UNIX_MS), (LIST_TABLES, LIST_TABLES_UNIX_MS)] {
            // All but the protocol version ("HTTP/1.1" ends the request line),
            // which SigV4 does not sign.
            let version_start = wire.windows(10).position(|w| w == b"HTTP/1.1\r\n").unwrap();
            let unsigned = version_start..version_start + 8;
            let mut verified_count = 0;
            for index in (0..wire.len()).filter(|index| !unsigned.contains(index)) {
                let mut tampered = wire.to_vec();
                tampered[index] ^= 0x01;
                if let Ok(Some((request, _))) = parse(&tampered, &Limits::default()) {
                    let verified = verify(&request, &credentials, now_unix_ms);
                    assert!(verified.is_err(), "byte {index} tampered, still verified");
                    verified_count += 1;
                }
            }
            // Most tampered requests still frame, so the signature is what
            // refuses them.
            assert!(
                verified_count * 4 > wire.len() * 3,
                "{verified_count} of {}",
                wire.len()
            );
        }
    }

    #[test]
    fn a_session_token_is_refused_after_the_signature_is_checked() {
        let (kind, message) = refusal(&request(SESSION_TOKEN), PUT_ITEM_UNIX_MS);
        assert_eq!(kind, ErrorKind::UnrecognizedClient);
        assert_eq!(message, "The security token included in the request is invalid");
    }

    #[test]
    fn refuses_a_request_without_sigv4_credentials() {
        let missing = (
            ErrorKind::MissingAuthenticationToken,
            "Request is missing Authentication Token".to_string(),
        );
        let unsigned = request(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(refusal(&unsigned, PUT_ITEM_UNIX_MS), missing);
        let bearer = edited(PUT_ITEM, "AWS4-HMAC-SHA256 Credential", "Bearer Credential");
        assert_eq!(refusal(&bearer, PUT_ITEM_UNIX_MS), missing);
        let twice = edited(PUT_ITEM, "Content-Length", "Authorization: AWS4-x\r\nContent-Length");
        assert_eq!(
            refusal(&twice, PUT_ITEM_UNIX_MS),
            (
                ErrorKind::IncompleteSignature,
                "More than one Authorization header.".to_string()
            )
        );
    }

    #[test]
    fn refuses_an_incomplete_authorization_with_dynamodb_words() {
        let unpaired = edited(PUT_ITEM, "Credential=", "Credential ");
        let (kind, message) = refusal(&unpaired, PUT_ITEM_UNIX_MS);
        assert_eq!(kind, ErrorKind::IncompleteSignature);
        assert_eq!(
            message,
            format!(
                "'Credential' not a valid key=value pair (missing equal-sign) in Authorization header: '{}'.",
                unpaired.header("authorization").unwrap()
            )
        );
        let sparse = request(
            b"POST / HTTP/1.1\r\nHost: h\r\nAuthorization: AWS4-HMAC-SHA256 Signature=abc, Credential=\r\n\
              Content-Length: 0\r\n\r\n",
        );
        assert_eq!(
            refusal(&sparse, PUT_ITEM_UNIX_MS),
            (
                ErrorKind::IncompleteSignature,
                "Authorization header requires 'Credential' parameter. Authorization header requires \
                 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or \
                 a 'Date' header. Authorization=AWS4-HMAC-SHA256 Signature=abc, Credential="
                    .to_string()
            )
        );
    }

    #[test]
    fn refuses_a_date_not_in_basic_format() {
        let bad = edited(PUT_ITEM, "X-Amz-Date: 20260101T000000Z", "X-Amz-Date: 201");
        assert_eq!(
            refusal(&bad, PUT_ITEM_UNIX_MS),
            (
                ErrorKind::IncompleteSignature,
                "Date must be in ISO-8601 'basic format'. Got '201'. See http://en.wikipedia.org/wiki/ISO_8601"
                    .to_string()
            )
        );
        for text in [
            "20260229T000000Z",
            "20261301T000000Z",
            "20260101T240000Z",
            "20260101 000000Z",
            "+0260101T000000Z",
        ] {
            assert!(RequestTime::parse(text, true).is_err(), "{text}");
        }
    }

    #[test]
    fn takes_the_date_field_when_there_is_no_x_amz_date() {
        let imf = RequestTime::parse("Thu, 01 Jan 2026 00:00:00 GMT", true).unwrap();
        assert_eq!(
            (imf.unix_seconds, imf.basic.as_str()),
            (1_767_225_600, "20260101T000000Z")
        );
        assert!(RequestTime::parse("Thu, 01 Jan 2026 00:00:00 GMT", false).is_err());
        assert!(RequestTime::parse("Thu, 01 Jan 2026 00:00:00 UTC", true).is_err());
        assert!(RequestTime::parse("Thx, 01 Jan 2026 00:00:00 GMT", true).is_err());
        assert!(RequestTime::parse("Thu, 31 Feb 2026 00:00:00 GMT", true).is_err());
        let dated = edited(
            PUT_ITEM,
            "X-Amz-Date: 20260101T000000Z",
            "Date: Thu, 01 Jan 2026 00:00:00 GMT",
        );
        let (kind, message) = refusal(&dated, PUT_ITEM_UNIX_MS);
        // Past the date checks: refused only because x-amz-date was signed.
        assert_eq!(kind, ErrorKind::IncompleteSignature);
        assert_eq!(
            message,
            "'x-amz-date' is named as a SignedHeader, but it does not exist in the HTTP request."
        );
    }

    #[test]
    fn the_clock_window_is_15_minutes_either_way() {
        let put_item = request(PUT_ITEM);
        let fifteen_minutes_ms = 15 * 60 * 1_000;
        let accepted = |now| verify(&put_item, &credentials(), now).is_ok();
        assert!(accepted(PUT_ITEM_UNIX_MS + fifteen_minutes_ms));
        assert!(accepted(PUT_ITEM_UNIX_MS + fifteen_minutes_ms + 999));
        assert!(accepted(PUT_ITEM_UNIX_MS - fifteen_minutes_ms));
        assert_eq!(
            refusal(&put_item, PUT_ITEM_UNIX_MS + fifteen_minutes_ms + 1_000),
            (
                ErrorKind::InvalidSignature,
                "Signature expired: 20260101T000000Z is now earlier than 20260101T000001Z \
                 (20260101T001501Z - 15 min.)"
                    .to_string()
            )
        );
        assert_eq!(
            refusal(&put_item, PUT_ITEM_UNIX_MS - fifteen_minutes_ms - 1_000),
            (
                ErrorKind::InvalidSignature,
                "Signature not yet current: 20260101T000000Z is still later than 20251231T235959Z \
                 (20251231T234459Z + 15 min.)"
                    .to_string()
            )
        );
    }

    #[test]
    fn requires_host_to_be_signed() {
        let unsigned_host = edited(PUT_ITEM, "content-type;host;", "content-type;");
        assert_eq!(
            refusal(&unsigned_host, PUT_ITEM_UNIX_MS),
            (
                ErrorKind::InvalidSignature,
                "'Host' must be a 'SignedHeader' in the AWS Authorization.".to_string()
            )
        );
    }

    #[test]
    fn refuses_other_algorithms() {
        let sha512 = edited(PUT_ITEM, "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512");
        assert_eq!(
            refusal(&sha512, PUT_ITEM_UNIX_MS),
            (
                ErrorKind::IncompleteSignature,
                "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). ".to_string()
            )
        );
    }

    #[test]
    fn refuses_a_malformed_or_wrongly_scoped_credential() {
        let short = edited(
            PUT_ITEM,
            "AKIDEXAMPLE/20260101/us-east-1/dynamodb/aws4_request",
            "a/b/c/d",
        );
        assert_eq!(
            refusal(&short, PUT_ITEM_UNIX_MS),
            (
                ErrorKind::IncompleteSignature,
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, \
                 got 'a/b/c/d'"
                    .to_string()
            )
        );
        let trailing = edited(PUT_ITEM, "dynamodb/aws4_request,", "dynamodb/aws4_request//,");
        assert_eq!(verify(&trailing, &credentials(), PUT_ITEM_UNIX_MS), Ok("AKIDEXAMPLE"));
        let scoped = edited(
            PUT_ITEM,
            "AKIDEXAMPLE/20260101/us-east-1/dynamodb/aws4_request",
            "AKIDEXAMPLE/20251231/Bad_Region/s3/aws5_request",
        );
        assert_eq!(
            refusal(&scoped, PUT_ITEM_UNIX_MS),
            (
                ErrorKind::InvalidSignature,
                "Credential should be scoped to a valid region, not 'Bad_Region'. Credential should be scoped to \
                 correct service: 'dynamodb'. Credential should be scoped with a valid terminator: 'aws4_request', \
                 not 'aws5_request'. Date in Credential scope does not match YYYYMMDD from ISO-8601 version of \
                 date from HTTP: '20251231' != '20260101', from '20260101T000000Z'."
                    .to_string()
            )
        );
    }

    #[test]
    fn refuses_an_unknown_access_key() {
        let stranger = edited(PUT_ITEM, "Credential=AKIDEXAMPLE/", "Credential=AKIDSTRANGER/");
        assert_eq!(
            refusal(&stranger, PUT_ITEM_UNIX_MS),
            (
                ErrorKind::UnrecognizedClient,
                "The security token included in the request is invalid.".to_string()
            )
        );
    }

    #[test]
    fn refuses_a_signed_header_the_request_lacks() {
        let missing = edited(PUT_ITEM, "x-amz-target,", "x-amz-target;x-missing,");
        assert_eq!(
            refusal(&missing, PUT_ITEM_UNIX_MS),
            (
                ErrorKind::IncompleteSignature,
                "'x-missing' is named as a SignedHeader, but it does not exist in the HTTP request.".to_string()
            )
        );
    }

    #[test]
    fn refuses_a_content_hash_that_is_not_the_body_s() {
        let swapped = edited(LIST_TABLES, "\r\n\r\n{}", "\r\n\r\n[]");
        assert_eq!(
            refusal(&swapped, LIST_TABLES_UNIX_MS),
            (
                ErrorKind::InvalidSignature,
                "The provided 'x-amz-content-sha256' header does not match what was computed.".to_string()
            )
        );
    }

    #[test]
    fn a_wrong_secret_gets_the_canonical_request_and_string_to_sign() {
        let other_secret = Credentials::parse("AKIDEXAMPLE not-the-secret").unwrap();
        let error = verify(&request(PUT_ITEM), &other_secret, PUT_ITEM_UNIX_MS).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidSignature);
        assert_eq!(
            error.message,
            "The request signature we calculated does not match the signature you provided. Check your AWS \
             Secret Access Key and signing method. Consult the service documentation for details.\n\n\
             The Canonical String for this request should have been\n'POST\n/\n\n\
             content-type:application/x-amz-json-1.0\nhost:localhost:8000\nx-amz-date:20260101T000000Z\n\
             x-amz-target:DynamoDB_20120810.PutItem\n\ncontent-type;host;x-amz-date;x-amz-target\n\
             79761e1fba62f7f5965cf2d5cf89723441687b6999f0b526de95534d1f04abc0'\n\n\
             The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20260101T000000Z\n\
             20260101/us-east-1/dynamodb/aws4_request\n\
             37d1e5dbbb86f758dd8638c90c1e461eac371aef55f867a5801b3aec801d0117'\n"
        );
    }

    #[test]
    fn reads_credentials_files() {
        let credentials = credentials();
        assert_eq!(credentials.len(), 2);
        assert_eq!(
            credentials.lookup("AKIDOTHER"),
            Some(("AKIDOTHER", "secret+/with=chars"))
        );
        assert_eq!(credentials.lookup("akidother"), None);
        assert_eq!(
            format!("{credentials:?}"),
            "Credentials { access_key_ids: [\"AKIDEXAMPLE\", \"AKIDOTHER\"] }"
        );
        assert!(Credentials::parse("\n# nothing\n").unwrap().is_empty());
    }

    #[test]
    fn refuses_credentials_lines_naming_them() {
        let refused = |text: &str| Credentials::parse(text).unwrap_err();
        let pair = "expected ACCESS_KEY_ID SECRET_ACCESS_KEY";
        assert_eq!(
            refused("A s\nB\n"),
            CredentialsError {
                line: 2,
                reason: pair.into()
            }
        );
        assert_eq!(
            refused("# c\n\nA s extra\n"),
            CredentialsError {
                line: 3,
                reason: pair.into()
            }
        );
        let id_rule = "the access key id must be 1 to 128 letters, digits, '_', '-' or '.'";
        assert_eq!(
            refused("A/B s\n"),
            CredentialsError {
                line: 1,
                reason: id_rule.into()
            }
        );
        assert_eq!(refused(&format!("{} s", "A".repeat(129))).reason, id_rule);
        let secret_rule = "the secret access key must be 1 to 128 printable ASCII characters";
        assert_eq!(refused("A s\u{e9}cret").reason, secret_rule);
        assert_eq!(refused(&format!("A {}", "s".repeat(129))).reason, secret_rule);
        assert_eq!(
            refused("A s\n\nB t\nA u\n"),
            CredentialsError {
                line: 4,
                reason: "access key id A is already on line 1".into()
            }
        );
        assert_eq!(refused("A s\nB\n").to_string(), format!("credentials line 2: {pair}"));
    }

    #[test]
    fn bounds_credentials_files() {
        let full: String = (0..CREDENTIALS_MAX).map(|i| format!("K{i} s\n")).collect();
        assert_eq!(Credentials::parse(&full).unwrap().len(), CREDENTIALS_MAX);
        let over = format!("{full}# comment\nKLAST s\n");
        assert_eq!(
            Credentials::parse(&over).unwrap_err(),
            CredentialsError {
                line: CREDENTIALS_MAX + 2,
                reason: format!("more than {CREDENTIALS_MAX} credentials")
            }
        );
        let long = "\n".repeat(CREDENTIALS_LINES_MAX + 1);
        assert_eq!(Credentials::parse(&long).unwrap_err().line, CREDENTIALS_LINES_MAX + 1);
    }

    #[test]
    fn converts_between_unix_time_and_dates() {
        assert_eq!(format_basic_time(0), "19700101T000000Z");
        assert_eq!(format_basic_time(-1), "19691231T235959Z");
        assert_eq!(format_basic_time(1_709_210_096), "20240229T123456Z");
        assert_eq!(parse_basic_time("20240229T123456Z"), Some(1_709_210_096));
        assert_eq!(parse_basic_time("20000229T000000Z"), Some(951_782_400));
        assert_eq!(parse_basic_time("21000229T000000Z"), None);
        assert_eq!(parse_basic_time("2026010100000Z0"), None);
    }
}
