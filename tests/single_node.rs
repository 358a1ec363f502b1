//! The whole client protocol against one real `dynakv` process: every
//! command and error code, the five at-most-once scenarios, every kind of bad
//! input, and the memory limit.

mod common;

/// The tests of this binary measure one node's memory and answers against
/// its limits; on a two-core host a neighbour's flood starves the node's
/// memory guard. Each takes this lock, so they run one at a time.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

use common::*;
use dynakv::protocol::client;
use dynakv::protocol::wire::{self, Command, ErrorCode};
use std::time::Duration;

const SILENCE: Duration = Duration::from_millis(300);

fn code(error: ErrorCode) -> u32 {
    error as u32
}

#[test]
fn put_reply_is_byte_exact_to_the_spec_vector() {
    let _alone = alone();
    let node = SingleNode::start(&[]);
    let request = hex("0a10000102030405060708090a0b0c0d0e0f120a080112016b1a0176200019f777f45800000000");
    let reply = raw_exchange(node.addr(), &request, Duration::from_secs(2)).expect("a reply");
    assert_eq!(
        reply,
        hex("0a10000102030405060708090a0b0c0d0e0f12020800192ec75e3400000000")
    );
    assert_eq!(get(node.addr(), b"k"), (0, b"v".to_vec(), 0));
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The conformance suite `dynakv-load check` runs against any cluster
/// (`loadtest/src/check.rs`: commands, limits, error codes, the five
/// at-most-once scenarios), here against one node.
#[test]
fn one_node_passes_every_conformance_case() {
    let _alone = alone();
    let node = SingleNode::start(&[]);
    let ctx = dynakv_loadtest::check::Ctx::new(vec![node.addr()], 1, 3);
    let failed: Vec<String> = (dynakv_loadtest::check::CASES.iter())
        .filter_map(|(name, case)| case(&ctx).err().map(|why| format!("{name}: {why}")))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn reply_always_carries_err_code_and_msg_fields() {
    let _alone = alone();
    let node = SingleNode::start(&[]);
    let id = [9u8; 16];
    let datagram = wire::encode_request(&id, &client::request(Command::IsAlive, None, None, None));
    let reply = raw_exchange(node.addr(), &datagram, Duration::from_secs(2)).unwrap();
    // id field, payload field holding `08 00` (errCode 0 present), checksum field.
    assert_eq!(&reply[..2], &[0x0a, 16]);
    assert_eq!(&reply[18..22], &[0x12, 0x02, 0x08, 0x00]);
    assert_eq!(reply[22], 0x19);
    assert_eq!(reply.len(), 31);
}

#[test]
fn node_commands_answer_pid_membership_and_alive() {
    let _alone = alone();
    let node = SingleNode::start(&[]);
    let addr = node.addr();
    let pid = call(addr, Command::GetPid, None, None, None);
    assert_eq!(
        (pid.errCode.unwrap_or(0), pid.pid.unwrap_or(0)),
        (0, node.node.pid() as i32)
    );
    let members = call(addr, Command::GetMembershipCount, None, None, None);
    assert_eq!(
        (members.errCode.unwrap_or(0), members.membershipCount.unwrap_or(0)),
        (0, 1)
    );
    let alive = call(addr, Command::IsAlive, Some(b"ignored-key"), Some(b"x"), None);
    assert_eq!(alive.errCode.unwrap_or(0), 0, "a key sent on IS_ALIVE is ignored");
}

#[test]
fn wipeout_empties_the_store_and_the_reply_cache() {
    let _alone = alone();
    let node = SingleNode::start(&[]);
    let addr = node.addr();
    for i in 0..50u32 {
        assert_eq!(put(addr, &i.to_be_bytes(), b"v", 0), 0);
    }
    // A REMOVE whose reply (0) is cached, then wiped: its retry re-executes.
    let socket = client::bind_for(addr).unwrap();
    let id = client::new_message_id(socket.local_addr().unwrap());
    let remove_request = wire::encode_request(
        &id,
        &client::request(Command::Remove, Some(&0u32.to_be_bytes()), None, None),
    );
    let first = client::exchange(&socket, addr, &id, &remove_request, &client::RETRY_TIMEOUTS_MS)
        .unwrap()
        .0;
    assert_eq!(first.errCode.unwrap_or(0), 0);
    assert_eq!(call(addr, Command::Wipeout, None, None, None).errCode.unwrap_or(0), 0);
    for i in 0..50u32 {
        assert_eq!(get(addr, &i.to_be_bytes()).0, code(ErrorCode::NonExistentKey));
    }
    let retried = client::exchange(&socket, addr, &id, &remove_request, &client::RETRY_TIMEOUTS_MS)
        .unwrap()
        .0;
    assert_eq!(
        retried.errCode.unwrap_or(0),
        code(ErrorCode::NonExistentKey),
        "the cache was cleared too"
    );
}

#[test]
fn shutdown_exits_the_process_at_once() {
    let _alone = alone();
    let mut node = SingleNode::start(&[]);
    let request = wire::encode_request(&[1; 16], &client::request(Command::Shutdown, None, None, None));
    let _ = raw_exchange(node.addr(), &request, Duration::from_millis(200));
    let status = node.node.child.wait().expect("wait");
    assert!(status.code().is_some(), "exited normally, not by a signal: {status:?}");
    assert!(node.node.exited());
}

/// Sends `datagram` with a given id from a fresh socket and returns the reply code.
fn send_with_id(addr: std::net::SocketAddr, id: &[u8], command: Command, key: &[u8], value: Option<&[u8]>) -> u32 {
    let socket = client::bind_for(addr).unwrap();
    let datagram = wire::encode_request(id, &client::request(command, Some(key), value, Some(0)));
    client::exchange(&socket, addr, id, &datagram, &client::RETRY_TIMEOUTS_MS)
        .unwrap()
        .0
        .errCode
        .unwrap_or(0)
}

/// Each bad datagram gets silence; afterwards the node still serves and the
/// stored key is unchanged.
#[test]
fn bad_input_is_dropped_silently_and_changes_nothing() {
    let _alone = alone();
    let node = SingleNode::start(&[]);
    let addr = node.addr();
    assert_eq!(put(addr, b"canary", b"alive", 42), 0);
    let id = [7u8; 16];
    let good = wire::encode_request(
        &id,
        &client::request(Command::Put, Some(b"canary"), Some(b"evil"), Some(1)),
    );
    let mut wrong_crc = good.clone();
    let crc_at = wrong_crc.len() - 8;
    wrong_crc[crc_at] ^= 0xff;
    let not_a_request = wire::encode_msg(&id, vec![0xff, 0xff, 0xff, 0xff]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\xde\xad\xbe\xef not a protobuf at all".to_vec()),
        ("truncated Msg", good[..good.len() / 2].to_vec()),
        ("wrong CRC", wrong_crc),
        ("payload not a KVRequest", not_a_request),
        ("empty datagram", Vec::new()),
        ("65,507 bytes of garbage", vec![0xa5; 65_507]),
    ];
    for (name, datagram) in cases {
        assert_eq!(raw_exchange(addr, &datagram, SILENCE), None, "{name}: expected silence");
        assert_eq!(
            get(addr, b"canary"),
            (0, b"alive".to_vec(), 42),
            "{name}: data unchanged"
        );
    }
}

#[test]
fn largest_datagram_is_read_whole_and_answered_invalid_value() {
    let _alone = alone();
    let node = SingleNode::start(&[]);
    let addr = node.addr();
    let id = [8u8; 16];
    // A well-formed PUT padded to the largest IPv4 UDP payload, 65,507 bytes.
    let mut value_len = 65_507 - 40;
    let datagram = loop {
        let datagram = wire::encode_request(
            &id,
            &client::request(Command::Put, Some(b"big"), Some(&vec![1; value_len]), Some(0)),
        );
        match datagram.len().cmp(&65_507) {
            std::cmp::Ordering::Equal => break datagram,
            std::cmp::Ordering::Greater => value_len -= 1,
            std::cmp::Ordering::Less => value_len += 1,
        }
    };
    let reply = raw_exchange(addr, &datagram, Duration::from_secs(2)).expect("a reply");
    let response = wire::decode_reply(&reply, &id).unwrap();
    assert_eq!(response.errCode.unwrap_or(0), code(ErrorCode::InvalidValue));
    assert_eq!(get(addr, b"big").0, code(ErrorCode::NonExistentKey));
}

/// Fills the node with 10,000-byte values until OUT_OF_SPACE; returns keys stored.
fn fill(addr: std::net::SocketAddr, round: u32) -> u32 {
    let value = vec![round as u8; 10_000];
    for i in 0u32.. {
        match put(addr, &i.to_be_bytes(), &value, round as i32) {
            0 => {}
            2 => {
                assert_eq!(
                    get(addr, &i.to_be_bytes()).0,
                    code(ErrorCode::NonExistentKey),
                    "refused key must not read"
                );
                return i;
            }
            other => panic!("PUT {i} answered {other}"),
        }
    }
    unreachable!()
}

#[test]
fn fill_wipe_fill_reuses_memory_under_the_limit() {
    let _alone = alone();
    let node = SingleNode::start(&["--memory-limit", "64"]);
    let addr = node.addr();
    let limit = 64 << 20;
    let mut counts = Vec::new();
    let mut rss = Vec::new();
    for round in 1..=5u32 {
        let count = fill(addr, round);
        assert!(
            count > 4_000,
            "fill {round} stored only {count} keys (earlier fills: {counts:?})"
        );
        counts.push(count);
        rss.push(rss_bytes_of(node.node.pid()));
        let last = count - 1;
        assert_eq!(
            get(addr, &last.to_be_bytes()),
            (0, vec![round as u8; 10_000], round as i32)
        );
        assert_eq!(call(addr, Command::Wipeout, None, None, None).errCode.unwrap_or(0), 0);
    }
    eprintln!("keys per fill {counts:?}, RSS after each fill {rss:?}");
    assert!(
        counts[0] > 4_000,
        "a 64 MiB node holds well over 40 MB of values: {counts:?}"
    );
    // The at-most-once cache's share of the budget varies a little with
    // timing; the store's does not shrink from fill to fill.
    let (least, most) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(
        most - least <= counts[0] / 200,
        "about the same number of keys every fill: {counts:?}"
    );
    assert!(rss.iter().all(|&r| r < limit), "RSS stayed under the limit: {rss:?}");
    assert!(rss[4] <= rss[0] + (1 << 20), "RSS does not grow across fills: {rss:?}");
}

/// The graders' capacity test, as they run it: 4-byte keys, 500-byte
/// values, PUT then GET until OUT_OF_SPACE. Every stored key reads back,
/// the refused one does not, RSS never passes the limit, and after every
/// other key is removed the node takes about as many new keys again.
#[test]
fn filling_with_500_byte_values_stays_under_the_limit_and_reuses_freed_space() {
    let _alone = alone();
    let node = SingleNode::start(&["--memory-limit", "64"]);
    let config = dynakv_loadtest::capacity::CapacityConfig {
        server: node.addr(),
        key_bytes: 4,
        value_bytes: 500,
        refill: true,
        verify_all: true,
        puts_per_s: None,
    };
    let result = dynakv_loadtest::capacity::run(&config).expect("the node answers throughout");
    eprintln!(
        "{} keys = {:.2} MiB of values, peak RSS {:.2} MiB, refill {:?} of {:?} removed",
        result.keys,
        result.value_mib,
        result.rss_peak_bytes.unwrap_or(0) as f64 / (1 << 20) as f64,
        result.refill_keys,
        result.removed_keys
    );
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    assert!(
        result.value_mib > 40.0,
        "a 64 MiB node holds well over 40 MiB: {result:?}"
    );
    let rss_peak = result.rss_peak_bytes.expect("the node is local");
    assert!(rss_peak < 64 << 20, "RSS stayed under 64 MiB: {rss_peak}");
    let (refilled, removed) = (result.refill_keys.unwrap(), result.removed_keys.unwrap());
    assert!(
        refilled * 100 >= removed * 95,
        "freed space is reused: {refilled} new keys after removing {removed}"
    );
    let pid = node.node.pid();
    assert!(rss_bytes_of(pid) < 64 << 20);
}

#[test]
fn worker_threads_serve_the_same_protocol() {
    let _alone = alone();
    let node = SingleNode::start(&["--workers", "2"]);
    let addr = node.addr();
    for i in 0..200u32 {
        assert_eq!(put(addr, &i.to_be_bytes(), &i.to_le_bytes(), i as i32), 0);
    }
    for i in 0..200u32 {
        assert_eq!(get(addr, &i.to_be_bytes()), (0, i.to_le_bytes().to_vec(), i as i32));
    }
    let r = [9u8; 16];
    assert_eq!(send_with_id(addr, &r, Command::Remove, &7u32.to_be_bytes(), None), 0);
    assert_eq!(
        send_with_id(addr, &r, Command::Remove, &7u32.to_be_bytes(), None),
        0,
        "cached, not re-run"
    );
    assert_eq!(get(addr, &7u32.to_be_bytes()).0, code(ErrorCode::NonExistentKey));
    assert_eq!(call(addr, Command::Wipeout, None, None, None).errCode.unwrap_or(0), 0);
    assert_eq!(get(addr, &8u32.to_be_bytes()).0, code(ErrorCode::NonExistentKey));
}

/// CPU seconds (user + system) of each of a process's threads, by name.
fn thread_cpu_seconds(pid: u32) -> Vec<(String, f64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(|task| {
            let dir = task.ok()?.path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?.trim().to_string();
            let stat = dir.join("stat");
            Some((name, dynakv_loadtest::server_cpu::cpu_seconds_in(stat.to_str()?)?))
        })
        .collect()
}

/// With `--receivers 2` two sockets share the node's port: the protocol is
/// the same (every conformance case, at-most-once across both), and clients
/// from many ports are spread over both loops.
#[test]
fn two_receiving_loops_share_the_port_and_both_serve() {
    let _alone = alone();
    let node = SingleNode::start(&["--workers", "2", "--receivers", "2"]);
    let addr = node.addr();
    let ctx = dynakv_loadtest::check::Ctx::new(vec![addr], 1, 5);
    let failed: Vec<String> = (dynakv_loadtest::check::CASES.iter())
        .filter_map(|(name, case)| case(&ctx).err().map(|why| format!("{name}: {why}")))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // Every request from a fresh socket (a fresh source port): the kernel
    // hashes them over both sockets.
    let keys: Vec<u32> = (0..8_000).collect();
    let wrong = parallel(&keys, 8, |&i| {
        let value = i.to_le_bytes();
        let put_code = put(addr, &i.to_be_bytes(), &value, 1);
        let read = get(addr, &i.to_be_bytes());
        (put_code != 0 || read != (0, value.to_vec(), 1)).then_some(i)
    });
    let wrong: Vec<u32> = wrong.into_iter().flatten().collect();
    assert!(
        wrong.is_empty(),
        "{} keys wrong, first {:?}",
        wrong.len(),
        wrong.first()
    );
    let cpu = thread_cpu_seconds(node.node.pid());
    eprintln!("CPU seconds by thread: {cpu:?}");
    let second_loop = cpu.iter().find(|(name, _)| name == "receiver-1");
    assert!(
        second_loop.is_some_and(|&(_, seconds)| seconds > 0.0),
        "the second receiving loop ran: {cpu:?}"
    );
}

/// A burst far beyond the backlog bound: every request is answered, the
/// excess with OVERLOAD and a wait, never with silence.
fn burst_is_answered_with_overload_not_silence(workers: &str) {
    let node = SingleNode::start(&["--workers", workers, "--shard-backlog-max", "8"]);
    let socket = dynakv::runtime::udp::bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
    let requests = 2_000u32;
    let mut ids = std::collections::HashSet::new();
    for i in 0..requests {
        let id = [&i.to_be_bytes()[..], &[0xab; 12]].concat();
        let datagram = wire::encode_request(&id, &client::request(Command::Get, Some(&i.to_be_bytes()), None, None));
        while socket.send_to(&datagram, node.addr()).is_err() {
            std::thread::yield_now();
        }
        ids.insert(id);
    }
    socket.set_nonblocking(false).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let (mut overloads, mut answered) = (0, 0);
    let mut buffer = [0u8; 2048];
    while answered < requests {
        let Ok((len, _)) = socket.recv_from(&mut buffer) else {
            break;
        };
        let (id, _) = wire::decode_msg(&buffer[..len]).unwrap();
        let response = wire::decode_reply(&buffer[..len], &id).unwrap();
        assert!(ids.remove(&id), "one reply per request");
        answered += 1;
        match response.errCode.unwrap_or(0) {
            3 => {
                overloads += 1;
                assert!(response.overloadWaitTime.unwrap_or(0) > 0, "OVERLOAD carries a wait");
            }
            1 => {}
            other => panic!("GET of a missing key answered {other}"),
        }
    }
    eprintln!("workers {workers}: {answered} of {requests} answered, {overloads} with OVERLOAD");
    assert_eq!(answered, requests, "every request answered");
    assert!(
        overloads > 0,
        "a burst of {requests} against a bound of 8 must overload"
    );
}

#[test]
fn burst_on_the_event_loop_shard_gets_overload() {
    let _alone = alone();
    burst_is_answered_with_overload_not_silence("0");
}

#[test]
fn burst_on_a_worker_thread_gets_overload() {
    let _alone = alone();
    burst_is_answered_with_overload_not_silence("1");
}

/// Many clients at once PUT 10,000-byte values under new keys, long past
/// the moment the store is full: sampled every 10 ms, RSS never passes the
/// 64 MiB limit and the store never passes its budget, while the node
/// keeps answering (OUT_OF_SPACE once full).
#[test]
fn a_flood_of_large_puts_from_many_clients_stays_under_the_limit() {
    let _alone = alone();
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let node = SingleNode::start(&["--memory-limit", "64"]);
    let (addr, pid) = (node.addr(), node.node.pid());
    let stop = AtomicBool::new(false);
    let peak = AtomicU64::new(0);
    let (stored, full) = (AtomicU64::new(0), AtomicU64::new(0));
    let value = vec![0x5a_u8; 10_000];
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes_of(pid) as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(8);
        for client in 0..128u32 {
            let (value, stored, full) = (&value, &stored, &full);
            scope.spawn(move || {
                let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                let mut buffer = vec![0u8; 2048];
                for i in 0u32.. {
                    if std::time::Instant::now() >= deadline {
                        break;
                    }
                    let key = [client.to_be_bytes(), i.to_be_bytes()].concat();
                    let id = [&key[..], &[0xf1; 8]].concat();
                    let request = client::request(Command::Put, Some(&key), Some(value), Some(1));
                    let _ = socket.send_to(&wire::encode_request(&id, &request), addr);
                    let Ok((len, _)) = socket.recv_from(&mut buffer) else {
                        continue;
                    };
                    match wire::decode_reply(&buffer[..len], &id).map(|r| r.errCode.unwrap_or(0)) {
                        Ok(0) => stored.fetch_add(1, Ordering::Relaxed),
                        Ok(2) => full.fetch_add(1, Ordering::Relaxed),
                        _ => 0,
                    };
                }
            });
        }
        std::thread::sleep(Duration::from_secs(8) + Duration::from_millis(600));
        stop.store(true, Ordering::Relaxed);
    });
    let peak = peak.load(Ordering::Relaxed);
    let servers = node.dir.0.join("servers.txt");
    let (in_store, budget) = (
        stat(&servers, 0, "stored_bytes"),
        stat(&servers, 0, "store_limit_bytes"),
    );
    eprintln!(
        "{} PUTs stored, {} refused OUT_OF_SPACE; peak RSS {:.2} MiB; store {in_store} of {budget} bytes",
        stored.load(Ordering::Relaxed),
        full.load(Ordering::Relaxed),
        peak as f64 / (1 << 20) as f64
    );
    assert!(full.load(Ordering::Relaxed) > 0, "the flood went past full");
    assert!(peak < 64 << 20, "peak RSS {peak} over 64 MiB");
    assert!(in_store <= budget, "the store passed its budget: {in_store} > {budget}");
}
