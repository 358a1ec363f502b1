//! Node traffic as an attacker sends it: from outside (no cluster secret)
//! and from inside (the secret, but messages that are old, repeated, meant
//! for another node or out of range). Every such message is refused and
//! counted, never stored, and never answered to an address of the
//! sender's choosing; WIPEOUT stays wiped however replicas are wiped.

mod common;

use common::*;
use dynakv::cluster::internal::{self, Entry, Envelope, Internal};
use dynakv::storage::stamp::{Stamp, wall_millis};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::Duration;

/// Node 0 running, node 1 played by the test (it holds the secret node 0
/// created beside the servers file).
struct Pair {
    node: NodeProcess,
    fake: FakeNode,
    servers: PathBuf,
    _dir: TempDir,
}

fn pair(extra: &[&str]) -> Pair {
    let dir = TempDir::new("trust");
    let addrs = free_addrs(2);
    let servers = dir.0.join("servers.txt");
    std::fs::write(&servers, addrs.iter().map(|a| format!("{a}\n")).collect::<String>()).unwrap();
    // One copy per key: the fake peer never gossips, so it is dead to the
    // node, which would refuse writes that no second replica can store.
    let args: Vec<&str> = ["--replicas", "1"].iter().chain(extra).copied().collect();
    let node = spawn_node(addrs[0], &servers, &args, &dir.0.join("node-0.log"));
    wait_alive(addrs[0], Duration::from_secs(10));
    let fake = FakeNode::bind(&servers, 1);
    Pair {
        node,
        fake,
        servers,
        _dir: dir,
    }
}

impl Pair {
    /// The node a key's only copy belongs on while both nodes are alive.
    fn home_of(&self, key: &[u8]) -> usize {
        use dynakv::cluster::ring::{Liveness, Placement};
        use dynakv::storage::hash::{bucket_of, key_hash};
        let text = std::fs::read_to_string(&self.servers).unwrap();
        let names: Vec<String> = text.lines().map(String::from).collect();
        let view = Placement::new(&names, 1).view(0, Liveness::ready(vec![true; names.len()]));
        usize::from(view.preference(bucket_of(key_hash(key)))[0])
    }

    fn stat(&self, name: &str) -> u64 {
        stat(&self.servers, 0, name)
    }

    fn send(&self, datagram: &[u8]) {
        self.fake.socket.send_to(datagram, self.node.addr).unwrap();
    }

    /// The ReplicateAcks node 0 sends back within `wait`, alone or batched.
    fn acks(&self, wait: Duration) -> Vec<(u64, bool)> {
        self.fake
            .receive(wait)
            .into_iter()
            .flat_map(|m| match m {
                Internal::Batch(messages) => messages,
                m => vec![m],
            })
            .filter_map(|m| match m {
                Internal::ReplicateAck { seq, refused, .. } => Some((seq, refused)),
                _ => None,
            })
            .collect()
    }
}

fn replicate(seq: u64, key: &[u8], value: &[u8], stamp: Stamp) -> Internal {
    Internal::Replicate {
        seq,
        entry: Entry {
            key: key.to_vec(),
            value: value.to_vec(),
            version: 1,
            stamp,
            tombstone: false,
        },
    }
}

fn now_stamp() -> Stamp {
    Stamp::from_millis(wall_millis())
}

#[test]
fn a_signed_write_with_a_stamp_from_the_far_future_is_refused_and_the_key_stays_writable() {
    let mut p = pair(&[]);
    // A stamp near 2^64 once crashed every replica of its bucket.
    let poison = p.fake.sign(0, &replicate(1, b"k", b"evil", Stamp(u64::MAX - 5)));
    p.send(&poison);
    assert_eq!(p.acks(Duration::from_millis(500)), vec![], "no ack: not stored");
    assert_eq!(p.stat("rejected_out_of_range"), 1);
    let ahead = p.fake.sign(
        0,
        &replicate(2, b"k", b"evil", Stamp::from_millis(wall_millis() + 60_000)),
    );
    p.send(&ahead);
    assert_eq!(p.acks(Duration::from_millis(500)), vec![]);
    assert_eq!(p.stat("rejected_out_of_range"), 2, "a minute ahead is too far too");
    assert_eq!(put(p.node.addr, b"k", b"mine", 3), 0);
    assert_eq!(get(p.node.addr, b"k"), (0, b"mine".to_vec(), 3));
    assert!(!p.node.exited());
}

#[test]
fn node_messages_signed_with_a_key_anyone_can_derive_are_refused_and_reflect_nothing() {
    let p = pair(&[]);
    // The key the servers file used to give: anyone with the file has it.
    let public = dynakv::cluster::secret::Secret::from_bytes(&std::fs::read(&p.servers).unwrap());
    let forge = |message: &Internal| {
        let envelope = Envelope {
            sender: 1,
            to: 0,
            incarnation: 1,
            seq: 1,
            sent_unix_ms: dynakv::node::context::unix_millis(),
        };
        internal::encode(&public, &envelope, message)
    };
    p.send(&forge(&replicate(1, b"k", b"forged", now_stamp())));
    let victim = UdpSocket::bind("127.0.0.1:0").unwrap();
    victim.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let get_request = dynakv::protocol::wire::encode_request(
        &[7; 16],
        &dynakv::protocol::client::request(dynakv::protocol::wire::Command::Get, Some(b"k"), None, None),
    );
    p.send(&forge(&Internal::Forward {
        hops: 1,
        client: victim.local_addr().unwrap(),
        datagram: get_request,
    }));
    let admin = Internal::Admin {
        message_id: vec![1; 16],
        command: dynakv::node::admin::BUCKETS,
        arg: vec![],
    };
    let envelope = Envelope {
        sender: internal::OPERATOR,
        to: 0,
        incarnation: 1,
        seq: 1,
        sent_unix_ms: dynakv::node::context::unix_millis(),
    };
    victim
        .send_to(&internal::encode(&public, &envelope, &admin), p.node.addr)
        .unwrap();
    let mut buffer = [0u8; 65_536];
    assert!(
        victim.recv_from(&mut buffer).is_err(),
        "neither forward nor admin answered"
    );
    assert_eq!(p.acks(Duration::from_millis(200)), vec![]);
    assert_eq!(get(p.node.addr, b"k").0, 1, "the forged write was not stored");
    assert_eq!(p.stat("rejected_unsigned"), 3);
}

#[test]
fn a_replayed_or_old_write_is_refused_so_a_deleted_key_stays_deleted() {
    let mut p = pair(&[]);
    let write = replicate(1, b"k", b"v1", now_stamp());
    let captured = p.fake.sign(0, &write);
    p.send(&captured);
    assert_eq!(
        p.acks(Duration::from_millis(500)),
        vec![(1, false)],
        "a fresh write is taken"
    );
    assert_eq!(get(p.node.addr, b"k").1, b"v1");
    assert_eq!(remove(p.node.addr, b"k"), 0);

    p.send(&captured);
    assert_eq!(p.acks(Duration::from_millis(500)), vec![], "the same bytes again");
    let thirty_s_ago = dynakv::node::context::unix_millis() - 30_000;
    let old = p.fake.sign_at(0, &write, thirty_s_ago);
    p.send(&old);
    assert_eq!(p.acks(Duration::from_millis(500)), vec![], "signed 30 s ago");
    assert_eq!(p.stat("rejected_stale"), 2);
    let elsewhere = p.fake.sign(1, &write);
    p.send(&elsewhere);
    assert_eq!(p.acks(Duration::from_millis(500)), vec![], "signed for another node");
    assert_eq!(p.stat("rejected_misdirected"), 1);
    p.fake.incarnation -= 1_000;
    let before_restart = p.fake.sign(0, &write);
    p.send(&before_restart);
    assert_eq!(
        p.acks(Duration::from_millis(500)),
        vec![],
        "from before the sender restarted"
    );
    assert_eq!(p.stat("rejected_stale"), 3);
    assert_eq!(get(p.node.addr, b"k").0, 1, "the key stays deleted");
}

#[test]
fn a_forward_is_answered_once_however_often_it_is_replayed() {
    let mut p = pair(&[]);
    assert_eq!(put(p.node.addr, b"k", &[5; 10_000], 1), 0);
    let victim = UdpSocket::bind("127.0.0.1:0").unwrap();
    victim.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let forward = Internal::Forward {
        hops: 1,
        client: victim.local_addr().unwrap(),
        datagram: dynakv::protocol::wire::encode_request(
            &[9; 16],
            &dynakv::protocol::client::request(dynakv::protocol::wire::Command::Get, Some(b"k"), None, None),
        ),
    };
    let signed = p.fake.sign(0, &forward);
    let mut buffer = [0u8; 65_536];
    p.send(&signed);
    let (len, _) = victim
        .recv_from(&mut buffer)
        .expect("a fresh forward from a peer is served");
    assert!(len > 10_000);
    for _ in 0..10 {
        p.send(&signed);
    }
    assert!(victim.recv_from(&mut buffer).is_err(), "replays send nothing");
    assert_eq!(p.stat("rejected_stale"), 10);
}

#[test]
fn a_full_node_refuses_replicated_writes_and_stays_under_its_limit() {
    let mut p = pair(&["--memory-limit", "16"]);
    let limit: u64 = p.stat("store_limit_bytes");
    let value = vec![3u8; 10_000];
    let mut refused = 0;
    let mut acked = 0;
    // 24 MB of writes at a node whose store holds about 12.
    for round in 0..24u64 {
        for i in 0..100u64 {
            let seq = round * 100 + i + 1;
            let key = format!("forged-{seq:06}");
            let datagram = p.fake.sign(0, &replicate(seq, key.as_bytes(), &value, now_stamp()));
            p.send(&datagram);
        }
        for (_, was_refused) in p.acks(Duration::from_millis(150)) {
            acked += 1;
            refused += usize::from(was_refused);
        }
    }
    for (_, was_refused) in p.acks(Duration::from_millis(500)) {
        acked += 1;
        refused += usize::from(was_refused);
    }
    let stored = p.stat("stored_bytes");
    let rss = rss_bytes_of(p.node.pid()) as u64;
    eprintln!("{acked} acks, {refused} refused; stored {stored} of {limit} bytes; RSS {rss}");
    assert!(refused > 0, "the node said it had no room");
    assert!(stored <= limit, "stored {stored} > limit {limit}");
    assert!(rss <= 16 << 20, "RSS {rss} over 16 MiB");
    // A key node 0 is the home replica of (a full node stands in for none).
    let key = (0..)
        .map(|i| format!("client-{i}").into_bytes())
        .find(|key| p.home_of(key) == 0)
        .unwrap();
    assert_eq!(put(p.node.addr, &key, &value, 1), 2, "and clients hear OUT_OF_SPACE");
}

#[test]
fn wipeout_sticks_when_the_replicas_are_wiped_one_after_another() {
    let cluster = Cluster::start(3, &[], Duration::from_secs(10));
    let all = [0, 1, 2];
    let keys: Vec<usize> = (0..300).collect();
    // Each key is written through its coordinator. Through another node, a
    // client's retry of a write already acknowledged may still wait in that
    // node's socket when the coordinator is wiped; it then arrives as a new
    // request, since WIPEOUT clears the reply cache (the protocol says so),
    // and is executed after the wipe. Sent to the coordinator, every retry
    // is ahead of the WIPEOUT in the one socket they share. Acknowledged
    // without a hop, the last writes reach their third replica in the very
    // millisecond it is wiped in: those must stay out too.
    cluster.wait_all_ready(Duration::from_secs(30));
    let view = cluster.view(&all);
    let codes = parallel(&keys, 8, |&i| {
        let bucket = dynakv::storage::hash::bucket_of(dynakv::storage::hash::key_hash(&key(i)));
        let coordinator = view.coordinator(bucket).expect("three nodes alive");
        put(cluster.nodes[coordinator].addr, &key(i), &value(i, 1), 1)
    });
    assert!(codes.iter().all(|&c| c == 0), "PUTs not acknowledged with 0: {codes:?}");
    for (n, node) in cluster.nodes.iter().enumerate() {
        if n > 0 {
            // Anti-entropy compares every 500 ms: time to refill a wiped
            // node from replicas not wiped yet, if it were allowed.
            std::thread::sleep(Duration::from_millis(400));
        }
        let response = call(node.addr, dynakv::protocol::wire::Command::Wipeout, None, None, None);
        assert_eq!(response.errCode, Some(0));
    }
    std::thread::sleep(Duration::from_secs(3));
    let gone: Vec<(usize, Option<usize>)> = keys.iter().map(|&i| (i, None)).collect();
    assert_none_wrong(
        &misreads(&cluster.addrs(&all), &gone, 1, false),
        "keys back after WIPEOUT",
    );
    for n in all {
        assert_eq!(stat(&cluster.servers_file, n, "keys"), 0, "node {n} holds keys");
    }
    // What is written after the wipe is kept.
    write_keys(&cluster.addrs(&all), &keys, 2);
    let back: Vec<(usize, Option<usize>)> = keys.iter().map(|&i| (i, Some(2))).collect();
    assert_none_wrong(
        &misreads(&cluster.addrs(&all), &back, 2, false),
        "keys written after WIPEOUT",
    );
}

#[test]
fn every_node_of_a_servers_file_shares_one_secret_made_for_it() {
    let cluster = Cluster::start(3, &[], Duration::from_secs(10));
    let mut secret = cluster.servers_file.clone().into_os_string();
    secret.push(".secret");
    let meta = std::fs::metadata(&secret).expect("created beside the servers file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    // ctl finds it there too (members is a signed admin command):
    // lines `index address alive ready full`.
    let members = ctl(&cluster.servers_file, &["members", "0"]);
    let alive = members.lines().filter(|l| l.split(' ').nth(2) == Some("1")).count();
    assert_eq!(alive, 3, "{members}");
}

#[test]
fn with_admin_allow_shutdown_and_wipeout_from_elsewhere_are_dropped() {
    use dynakv::protocol::client;
    use dynakv::protocol::wire::{self, Command};
    let mut single = SingleNode::start(&["--admin-allow", "127.0.0.2/32"]);
    let addr = single.addr();
    assert_eq!(put(addr, b"kept", b"value", 1), 0);
    let from = |source: &str, command: Command, id: u8| {
        let socket = UdpSocket::bind(source).unwrap();
        let datagram = wire::encode_request(&[id; 16], &client::request(command, None, None, None));
        client::exchange(&socket, addr, &[id; 16], &datagram, &[300]).map(|(response, _)| response.errCode)
    };
    assert!(from("127.0.0.1:0", Command::Wipeout, 1).is_err(), "no answer");
    assert!(from("127.0.0.1:0", Command::Shutdown, 2).is_err(), "no answer");
    assert!(!single.node.exited(), "still serving");
    let stat = |name| stat(&single.dir.0.join("servers.txt"), 0, name);
    assert_eq!(stat("admin_refused"), 2);
    let get = call(addr, Command::Get, Some(b"kept"), None, None);
    assert_eq!(get.value.as_deref(), Some(&b"value"[..]), "not wiped");

    assert_eq!(
        from("127.0.0.2:0", Command::Wipeout, 3).unwrap(),
        Some(0),
        "allowed network"
    );
    let get = call(addr, Command::Get, Some(b"kept"), None, None);
    assert_eq!(get.errCode, Some(1), "wiped");
}
