//! The graders' capacity test: one node, small keys, fixed-size values, PUT
//! then GET until the first OUT_OF_SPACE; optionally delete every other key
//! and refill to measure how much freed space is reused.

use crate::rng::Rng;
use dynakv::protocol::client::{self, ClientError};
use dynakv::protocol::wire::{Command, ErrorCode};
use rand::RngCore as _;
use std::net::SocketAddr;
use std::time::Instant;

pub struct CapacityConfig {
    pub server: SocketAddr,
    pub key_bytes: usize,
    pub value_bytes: usize,
    pub refill: bool,
    pub verify_all: bool,
    /// PUTs per second at most (None: as fast as the node answers).
    pub puts_per_s: Option<u32>,
}

#[derive(Debug, Default)]
pub struct CapacityResult {
    pub keys: u64,
    pub value_mib: f64,
    pub rss_peak_bytes: Option<usize>,
    pub seconds: f64,
    /// Keys stored by the refill after deleting every other key.
    pub refill_keys: Option<u64>,
    pub removed_keys: Option<u64>,
    pub failures: Vec<String>,
}

fn key(i: u64, len: usize) -> Vec<u8> {
    let bytes = i.to_be_bytes();
    let mut key = vec![0u8; len.max(1)];
    let n = key.len().min(8);
    let from = 8 - n;
    let start = key.len() - n;
    key[start..].copy_from_slice(&bytes[from..]);
    key
}

fn call(
    server: SocketAddr,
    command: Command,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(u32, Vec<u8>), ClientError> {
    let request = client::request(command, key, value, Some(0));
    let (response, _) = client::call(server, &request)?;
    Ok((response.errCode.unwrap_or(0), response.value.unwrap_or_default()))
}

/// RSS of a local process from /proc, if it is local and readable.
pub fn rss_of(pid: i32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Fills from key `first` until OUT_OF_SPACE; returns the first refused index.
fn fill(
    config: &CapacityConfig,
    first: u64,
    rng: &mut Rng,
    pid: Option<i32>,
    result: &mut CapacityResult,
) -> Result<u64, ClientError> {
    let mut value = vec![0u8; config.value_bytes];
    let mut i = first;
    let started = Instant::now();
    loop {
        if let Some(rate) = config.puts_per_s {
            // Paced: PUT number n leaves no sooner than n / rate seconds in.
            let due = std::time::Duration::from_secs_f64((i - first) as f64 / f64::from(rate.max(1)));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        rng.fill_bytes(&mut value);
        let k = key(i, config.key_bytes);
        let (code, _) = call(config.server, Command::Put, Some(&k), Some(&value))?;
        if code == ErrorCode::OutOfSpace as u32 {
            let (get_code, _) = call(config.server, Command::Get, Some(&k), None)?;
            if get_code != ErrorCode::NonExistentKey as u32 {
                result
                    .failures
                    .push(format!("refused key {i} reads back with code {get_code}"));
            }
            return Ok(i);
        }
        if code != 0 {
            result.failures.push(format!("PUT {i} answered {code}"));
            return Ok(i);
        }
        let (get_code, got) = call(config.server, Command::Get, Some(&k), None)?;
        if get_code != 0 || got != value {
            result
                .failures
                .push(format!("key {i} read back code {get_code}, {} bytes", got.len()));
        }
        if i.is_multiple_of(1024)
            && let Some(rss) = pid.and_then(rss_of)
        {
            result.rss_peak_bytes = Some(result.rss_peak_bytes.unwrap_or(0).max(rss));
        }
        i += 1;
    }
}

pub fn run(config: &CapacityConfig) -> Result<CapacityResult, ClientError> {
    let started = Instant::now();
    let mut result = CapacityResult::default();
    let mut rng = crate::rng::seeded(0x5eed);
    let pid = client::call(config.server, &client::request(Command::GetPid, None, None, None))
        .ok()
        .and_then(|(response, _)| response.pid);
    let refused = fill(config, 0, &mut rng, pid, &mut result)?;
    result.keys = refused;
    result.value_mib = (refused as f64 * config.value_bytes as f64) / (1 << 20) as f64;
    if config.verify_all {
        for i in 0..refused {
            let (code, got) = call(config.server, Command::Get, Some(&key(i, config.key_bytes)), None)?;
            if code != 0 || got.len() != config.value_bytes {
                result
                    .failures
                    .push(format!("stored key {i} reads back with code {code}"));
                break;
            }
        }
    }
    if config.refill {
        let mut removed = 0;
        for i in (0..refused).step_by(2) {
            if call(config.server, Command::Remove, Some(&key(i, config.key_bytes)), None)?.0 == 0 {
                removed += 1;
            }
        }
        let next = fill(config, refused + 1, &mut rng, pid, &mut result)?;
        result.removed_keys = Some(removed);
        result.refill_keys = Some(next - refused - 1);
    }
    if let Some(rss) = pid.and_then(rss_of) {
        result.rss_peak_bytes = Some(result.rss_peak_bytes.unwrap_or(0).max(rss));
    }
    result.seconds = started.elapsed().as_secs_f64();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn keys_are_big_endian_counters_of_the_asked_length() {
        assert_eq!(key(0x0102_0304, 4), vec![1, 2, 3, 4]);
        assert_eq!(key(1, 10), vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_ne!(key(1, 4), key(2, 4));
    }
}
