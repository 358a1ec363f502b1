//! `check`: the protocol spec as named conformance cases, run against one node
//! or a cluster with a random front-end per request. Each case prints PASS or
//! FAIL with the reason.

use crate::rng::Rng;
use dynakv::protocol::client;
use dynakv::protocol::proto::kv::KVResponse;
use dynakv::protocol::wire::{self, Command, ErrorCode};
use rand::{Rng as _, RngCore as _};
use std::cell::RefCell;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

pub struct Ctx {
    pub servers: Vec<SocketAddr>,
    pub expect_members: i32,
    rng: RefCell<Rng>,
    nonce: u64,
}

type CaseResult = Result<(), String>;

impl Ctx {
    pub fn new(servers: Vec<SocketAddr>, expect_members: i32, seed: u64) -> Ctx {
        Ctx {
            servers,
            expect_members,
            rng: RefCell::new(crate::rng::seeded(seed)),
            nonce: dynakv::storage::hash::fmix64(seed ^ u64::from(std::process::id())),
        }
    }

    fn node(&self) -> SocketAddr {
        let n = self.servers.len();
        self.servers[self.rng.borrow_mut().random_range(0..n)]
    }

    /// A key unique to this run and `name`.
    fn key(&self, name: &str) -> Vec<u8> {
        let mut key = format!("{:016x}", self.nonce).into_bytes();
        key.extend_from_slice(name.as_bytes());
        key.truncate(32);
        key
    }

    fn call(
        &self,
        command: Command,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        version: Option<i32>,
    ) -> Result<KVResponse, String> {
        let node = self.node();
        let request = client::request(command, key, value, version);
        client::call(node, &request)
            .map(|(response, _)| response)
            .map_err(|error| format!("{command:?} via {node}: {error}"))
    }

    /// Sends with a chosen message id to a chosen node (for at-most-once).
    fn call_with_id(
        &self,
        node: SocketAddr,
        id: &[u8],
        command: Command,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<u32, String> {
        let socket = client::bind_for(node).map_err(|e| e.to_string())?;
        let datagram = wire::encode_request(id, &client::request(command, Some(key), value, Some(0)));
        client::exchange(&socket, node, id, &datagram, &client::RETRY_TIMEOUTS_MS)
            .map(|(response, _)| response.errCode.unwrap_or(0))
            .map_err(|error| format!("{command:?} via {node}: {error}"))
    }

    fn fresh_id(&self) -> [u8; 16] {
        let mut id = [0u8; 16];
        self.rng.borrow_mut().fill_bytes(&mut id);
        id
    }
}

fn expect_code(what: &str, response: &KVResponse, code: ErrorCode) -> CaseResult {
    let got = response.errCode.unwrap_or(u32::MAX);
    if got == code as u32 {
        Ok(())
    } else {
        Err(format!("{what}: expected code {} ({code:?}), got {got}", code as u32))
    }
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> CaseResult {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?}, got {got:?}"))
    }
}

fn put_get(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("put-get");
    expect_code(
        "PUT",
        &ctx.call(Command::Put, Some(&key), Some(b"value"), Some(7))?,
        ErrorCode::Success,
    )?;
    let got = ctx.call(Command::Get, Some(&key), None, None)?;
    expect_code("GET", &got, ErrorCode::Success)?;
    expect_eq("GET value", got.value.as_deref(), Some(&b"value"[..]))?;
    expect_eq("GET version", got.version, Some(7))
}

fn overwrite(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("overwrite");
    ctx.call(Command::Put, Some(&key), Some(b"one"), Some(1))?;
    ctx.call(Command::Put, Some(&key), Some(b"two"), Some(2))?;
    let got = ctx.call(Command::Get, Some(&key), None, None)?;
    expect_eq("GET", (got.value.as_deref(), got.version), (Some(&b"two"[..]), Some(2)))
}

fn negative_version_and_empty_value(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("negative-version");
    expect_code(
        "PUT",
        &ctx.call(Command::Put, Some(&key), Some(b""), Some(-12))?,
        ErrorCode::Success,
    )?;
    let got = ctx.call(Command::Get, Some(&key), None, None)?;
    expect_code("GET", &got, ErrorCode::Success)?;
    expect_eq(
        "GET",
        (got.value.unwrap_or_default().len(), got.version),
        (0, Some(-12)),
    )
}

fn missing_key(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("never-written");
    expect_code(
        "GET missing",
        &ctx.call(Command::Get, Some(&key), None, None)?,
        ErrorCode::NonExistentKey,
    )?;
    expect_code(
        "REMOVE missing",
        &ctx.call(Command::Remove, Some(&key), None, None)?,
        ErrorCode::NonExistentKey,
    )
}

fn remove(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("remove");
    ctx.call(Command::Put, Some(&key), Some(b"v"), Some(0))?;
    expect_code(
        "REMOVE",
        &ctx.call(Command::Remove, Some(&key), None, None)?,
        ErrorCode::Success,
    )?;
    expect_code(
        "GET after REMOVE",
        &ctx.call(Command::Get, Some(&key), None, None)?,
        ErrorCode::NonExistentKey,
    )?;
    expect_code(
        "second REMOVE",
        &ctx.call(Command::Remove, Some(&key), None, None)?,
        ErrorCode::NonExistentKey,
    )
}

fn value_limits(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("value-limit");
    expect_code(
        "10,000-byte value",
        &ctx.call(Command::Put, Some(&key), Some(&vec![1; 10_000]), Some(0))?,
        ErrorCode::Success,
    )?;
    for len in [10_001, 12_000, 60_000] {
        let response = ctx.call(Command::Put, Some(&key), Some(&vec![2; len]), Some(0))?;
        expect_code(&format!("{len}-byte value"), &response, ErrorCode::InvalidValue)?;
    }
    let got = ctx.call(Command::Get, Some(&key), None, None)?;
    expect_eq("value after refused PUTs", got.value.map(|v| v.len()), Some(10_000))
}

fn key_limits(ctx: &Ctx) -> CaseResult {
    for len in [0usize, 33, 64, 128] {
        let key = vec![b'k'; len];
        for command in [Command::Put, Command::Get, Command::Remove] {
            let response = ctx.call(command, Some(&key), Some(b"v"), Some(0))?;
            expect_code(
                &format!("{command:?} with {len}-byte key"),
                &response,
                ErrorCode::InvalidKey,
            )?;
        }
    }
    let response = ctx.call(Command::Put, Some(&[b'k'; 33]), Some(&vec![0; 60_000]), Some(0))?;
    expect_code("bad key and bad value", &response, ErrorCode::InvalidKey)?;
    let key = ctx.key("32");
    let key = [key.as_slice(), &[b'x'; 32]].concat()[..32].to_vec();
    expect_code(
        "32-byte key",
        &ctx.call(Command::Put, Some(&key), Some(b"v"), Some(0))?,
        ErrorCode::Success,
    )
}

fn put_without_version(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("no-version");
    expect_code(
        "PUT without a version field",
        &ctx.call(Command::Put, Some(&key), Some(b"v"), None)?,
        ErrorCode::Success,
    )?;
    let got = ctx.call(Command::Get, Some(&key), None, None)?;
    expect_eq("GET", (got.value.as_deref(), got.version), (Some(&b"v"[..]), Some(0)))
}

fn absent_key_field(ctx: &Ctx) -> CaseResult {
    for command in [Command::Put, Command::Get, Command::Remove] {
        let response = ctx.call(command, None, Some(b"v"), Some(0))?;
        expect_code(
            &format!("{command:?} without a key field"),
            &response,
            ErrorCode::InvalidKey,
        )?;
    }
    Ok(())
}

fn unknown_command(ctx: &Ctx) -> CaseResult {
    for command in [0u32, 9, 0x1f, 0x20, 0x23, 99, 1000] {
        let mut request = client::request(Command::IsAlive, None, None, None);
        request.command = command;
        let node = ctx.node();
        let (response, _) = client::call(node, &request).map_err(|e| format!("command {command} via {node}: {e}"))?;
        expect_code(&format!("command {command}"), &response, ErrorCode::UnrecognizedCommand)?;
    }
    Ok(())
}

fn node_commands(ctx: &Ctx) -> CaseResult {
    expect_code(
        "IS_ALIVE",
        &ctx.call(Command::IsAlive, None, None, None)?,
        ErrorCode::Success,
    )?;
    expect_code(
        "IS_ALIVE with a key",
        &ctx.call(Command::IsAlive, Some(b"key"), None, None)?,
        ErrorCode::Success,
    )?;
    let pid = ctx.call(Command::GetPid, None, None, None)?;
    expect_code("GET_PID", &pid, ErrorCode::Success)?;
    if pid.pid.unwrap_or(0) <= 0 {
        return Err(format!("GET_PID: pid {:?}", pid.pid));
    }
    Ok(())
}

fn membership_count(ctx: &Ctx) -> CaseResult {
    for &node in &ctx.servers {
        let request = client::request(Command::GetMembershipCount, None, None, None);
        let (response, _) = client::call(node, &request).map_err(|e| format!("{node}: {e}"))?;
        expect_code("GET_MEMBERSHIP_COUNT", &response, ErrorCode::Success)?;
        expect_eq(
            &format!("membership count of {node}"),
            response.membershipCount,
            Some(ctx.expect_members),
        )?;
    }
    Ok(())
}

fn amo_1_cached_remove(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("amo-1");
    let node = ctx.node();
    ctx.call(Command::Put, Some(&key), Some(b"v"), Some(0))?;
    let r = ctx.fresh_id();
    expect_eq("REM(r)", ctx.call_with_id(node, &r, Command::Remove, &key, None)?, 0)?;
    expect_eq(
        "resent REM(r)",
        ctx.call_with_id(node, &r, Command::Remove, &key, None)?,
        0,
    )
}

fn amo_2_missing_remove(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("amo-2");
    let node = ctx.node();
    let r = ctx.fresh_id();
    expect_eq(
        "REM(r) of missing key",
        ctx.call_with_id(node, &r, Command::Remove, &key, None)?,
        1,
    )?;
    expect_eq(
        "resent REM(r)",
        ctx.call_with_id(node, &r, Command::Remove, &key, None)?,
        1,
    )
}

fn amo_3_put_between(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("amo-3");
    let node = ctx.node();
    let r = ctx.fresh_id();
    expect_eq("REM(r)", ctx.call_with_id(node, &r, Command::Remove, &key, None)?, 1)?;
    expect_code(
        "PUT",
        &ctx.call(Command::Put, Some(&key), Some(b"v"), Some(0))?,
        ErrorCode::Success,
    )?;
    expect_eq(
        "resent REM(r)",
        ctx.call_with_id(node, &r, Command::Remove, &key, None)?,
        1,
    )?;
    expect_code(
        "GET after resend",
        &ctx.call(Command::Get, Some(&key), None, None)?,
        ErrorCode::Success,
    )
}

fn amo_4_after_many_puts(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("amo-4");
    let node = ctx.node();
    ctx.call(Command::Put, Some(&key), Some(b"v"), Some(0))?;
    let r = ctx.fresh_id();
    expect_eq("REM(r)", ctx.call_with_id(node, &r, Command::Remove, &key, None)?, 0)?;
    for i in 0..40 {
        ctx.call(Command::Put, Some(&ctx.key(&format!("amo-4-{i}"))), Some(b"x"), Some(0))?;
    }
    expect_eq(
        "resent REM(r) after 40 PUTs",
        ctx.call_with_id(node, &r, Command::Remove, &key, None)?,
        0,
    )
}

fn amo_5_resent_put(ctx: &Ctx) -> CaseResult {
    let key = ctx.key("amo-5");
    let node = ctx.node();
    let a = ctx.fresh_id();
    expect_eq(
        "PUT1(a)",
        ctx.call_with_id(node, &a, Command::Put, &key, Some(b"v1"))?,
        0,
    )?;
    ctx.call(Command::Put, Some(&key), Some(b"v2"), Some(0))?;
    expect_eq(
        "resent PUT1(a)",
        ctx.call_with_id(node, &a, Command::Put, &key, Some(b"v1"))?,
        0,
    )?;
    let got = ctx.call(Command::Get, Some(&key), None, None)?;
    expect_eq("GET", got.value.as_deref(), Some(&b"v2"[..]))
}

fn silent(node: SocketAddr, datagram: &[u8]) -> Result<bool, String> {
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    socket.send_to(datagram, node).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .map_err(|e| e.to_string())?;
    let mut buffer = [0u8; 2048];
    Ok(socket.recv_from(&mut buffer).is_err())
}

fn junk_gets_silence(ctx: &Ctx) -> CaseResult {
    let node = ctx.node();
    let id = ctx.fresh_id();
    let good = wire::encode_request(&id, &client::request(Command::IsAlive, None, None, None));
    let mut bad_crc = good.clone();
    let at = bad_crc.len() - 8;
    bad_crc[at] ^= 0x55;
    let cases: [(&str, Vec<u8>); 4] = [
        ("wrong checksum", bad_crc),
        ("garbage", b"\x07\x07garbage".to_vec()),
        ("empty datagram", Vec::new()),
        ("payload not a KVRequest", wire::encode_msg(&id, vec![0xff; 6])),
    ];
    for (name, datagram) in cases {
        if !silent(node, &datagram)? {
            return Err(format!("{name}: {node} answered, expected silence"));
        }
    }
    expect_code(
        "IS_ALIVE after junk",
        &ctx.call(Command::IsAlive, None, None, None)?,
        ErrorCode::Success,
    )
}

fn reply_has_all_fields(ctx: &Ctx) -> CaseResult {
    let node = ctx.node();
    let id = ctx.fresh_id();
    let socket = client::bind_for(node).map_err(|e| e.to_string())?;
    let datagram = wire::encode_request(&id, &client::request(Command::IsAlive, None, None, None));
    socket.send_to(&datagram, node).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut buffer = [0u8; 2048];
    let (len, _) = socket.recv_from(&mut buffer).map_err(|e| format!("no reply: {e}"))?;
    let (reply_id, payload) =
        wire::decode_msg(&buffer[..len]).map_err(|e| format!("reply is not a valid Msg: {e:?}"))?;
    expect_eq("echoed id", reply_id.as_slice(), &id[..])?;
    expect_eq("payload starts with errCode", payload.first().copied(), Some(0x08))
}

pub type Case = (&'static str, fn(&Ctx) -> CaseResult);

pub const CASES: &[Case] = &[
    ("put_then_get_returns_value_and_version", put_get),
    ("overwrite_returns_newest", overwrite),
    ("negative_version_and_empty_value", negative_version_and_empty_value),
    ("missing_key_get_and_remove_return_1", missing_key),
    ("remove_then_get_returns_1", remove),
    ("value_limit_10000_and_code_7", value_limits),
    ("key_limit_32_and_code_6_on_every_command", key_limits),
    ("absent_key_field_returns_6", absent_key_field),
    ("put_without_version_stores_version_0", put_without_version),
    ("unknown_command_returns_5", unknown_command),
    ("is_alive_and_get_pid", node_commands),
    ("membership_count_matches", membership_count),
    ("at_most_once_1_cached_remove", amo_1_cached_remove),
    ("at_most_once_2_missing_remove", amo_2_missing_remove),
    ("at_most_once_3_put_between", amo_3_put_between),
    ("at_most_once_4_after_40_puts", amo_4_after_many_puts),
    ("at_most_once_5_resent_put", amo_5_resent_put),
    ("junk_gets_silence", junk_gets_silence),
    ("reply_has_id_payload_checksum_errcode", reply_has_all_fields),
];

/// Runs every case, prints PASS/FAIL lines, returns the number of failures.
pub fn run(ctx: &Ctx) -> usize {
    let mut failures = 0;
    for (name, case) in CASES {
        match case(ctx) {
            Ok(()) => println!("PASS {name}"),
            Err(why) => {
                failures += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
    println!("{} passed, {failures} failed", CASES.len() - failures);
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynakv::protocol::wire::Reply;

    /// A broken node: answers every request with success and value "x".
    fn liar() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65_536];
            while let Ok((len, from)) = socket.recv_from(&mut buffer) {
                if let Ok((id, _)) = wire::decode_request(&buffer[..len]) {
                    let reply = Reply::Value {
                        value: b"x".to_vec(),
                        version: 0,
                    };
                    let _ = socket.send_to(&reply.encode(&id), from);
                }
            }
        });
        addr
    }

    #[test]
    fn cases_fail_against_a_broken_node() {
        let ctx = Ctx::new(vec![liar()], 1, 1);
        let missing = missing_key(&ctx).unwrap_err();
        assert!(missing.contains("expected code 1"), "{missing}");
        assert!(put_get(&ctx).is_err());
        assert!(key_limits(&ctx).is_err());
        assert!(node_commands(&ctx).is_err(), "pid missing");
        assert!(node_commands(&ctx).unwrap_err().contains("pid"));
    }
}
