//! `dynakv ctl`: the operator's command line, in the spirit of redis-cli.
//! Data commands use the public protocol; `stats`, `members`, `buckets`,
//! `keys`, `universe`, `reload` and `decommission` are admin commands
//! signed with the cluster secret.

use crate::cluster::internal::{self, Envelope, Internal, OPERATOR};
use crate::cluster::ring::{Liveness, Placement, Role};
use crate::cluster::secret::{self, Secret};
use crate::cluster::servers::{self, ServerEntry};
use crate::cluster::universe::Universe;
use crate::node::admin::{self, parse_lines};
use crate::node::context::unix_millis;
use crate::ops::metrics;
use crate::ops::plan;
use crate::protocol::client;
use crate::protocol::wire::{Command, ErrorCode};
use crate::storage::hash::BUCKETS;
use clap::{Parser, Subcommand};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `dynakv ctl`: the options every command shares, then the command.
#[derive(Parser, Debug)]
#[command(name = "dynakv ctl", version, about = "Query and drive a running dynakv cluster")]
pub struct CtlArgs {
    /// File listing every node as host:port, one per line
    #[arg(long, value_name = "FILE", default_value = "servers.txt", global = true)]
    pub servers: PathBuf,
    /// The cluster secret admin commands are signed with [default:
    /// $DYNAKV_CLUSTER_SECRET_FILE, else SERVERS_FILE.secret]
    #[arg(long, value_name = "FILE", global = true)]
    pub cluster_secret_file: Option<PathBuf>,
    /// The node data commands go through: host:port or an index (from 0)
    /// into the servers file [default: a random node]
    #[arg(long, value_name = "NODE", global = true)]
    pub node: Option<String>,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// NODE is host:port or an index (from 0) into the servers file.
#[derive(Subcommand, Debug)]
pub enum CtlCommand {
    /// Store KEY through --node (default: a random node)
    Put {
        key: String,
        value: String,
        #[arg(default_value_t = 0, allow_negative_numbers = true)]
        version: i32,
    },
    /// Print KEY's value and version
    Get { key: String },
    /// Remove KEY
    Remove { key: String },
    /// Counters of one node
    Stats {
        node: String,
        /// One JSON object instead of `name value` lines
        #[arg(long)]
        json: bool,
    },
    /// Which nodes NODE believes alive, ready and full
    Members { node: String },
    /// The nodes that hold KEY, coordinator first
    Ring { key: String },
    /// Live keys, tombstones and digest per bucket of NODE
    Buckets { node: String },
    /// The keys NODE holds in BUCKET
    Keys {
        node: String,
        #[arg(value_parser = clap::value_parser!(u16).range(0..BUCKETS as i64))]
        bucket: u16,
    },
    /// One row per node of the servers file
    Status {
        /// One JSON array of the nodes' counters instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Succeed when every node answers, is ready and counts every node alive
    Ready,
    /// Every node's counters in the Prometheus text format
    Metrics {
        /// Write them to FILE (atomically, for the node exporter's textfile
        /// collector) instead of printing them
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Serve every node's counters over HTTP for Prometheus (GET /metrics),
    /// scraping the cluster at each request; runs until killed
    Exporter {
        /// Address to listen on: HOST:PORT, or HOST alone for port 9431
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9431")]
        listen: String,
        /// How long a scrape waits for each node (a node that does not
        /// answer by then counts as down: dynakv_up 0)
        #[arg(long, value_name = "MS", default_value_t = 1000,
              value_parser = clap::value_parser!(u64).range(100..=30_000))]
        node_timeout_ms: u64,
        /// How long a client may take to send its request
        #[arg(long, value_name = "MS", default_value_t = 5000,
              value_parser = clap::value_parser!(u64).range(100..=60_000))]
        request_timeout_ms: u64,
    },
    /// The universe (the cluster's node list, versioned) the nodes hold:
    /// the newest, and which node holds which version
    Universe,
    /// Make the servers file the cluster's universe: nodes it adds join,
    /// nodes it leaves out hand their data to the others and exit (signed
    /// with the cluster secret; `run/reload` also ships the file and
    /// starts the new nodes)
    Reload {
        /// Print what each node would gain and lose, the bytes that would
        /// cross the network and whether every node would fit; change
        /// nothing
        #[arg(long)]
        plan: bool,
        /// Leave fewer serving nodes than the replica count (buckets then
        /// have fewer copies than it promises, so fewer crashes lose
        /// acknowledged writes)
        #[arg(long)]
        force: bool,
    },
    /// Data moving now, per node of the newest universe (leaving ones
    /// included): buckets left to pull, buckets handed off and not yet
    /// confirmed, buckets and bytes moved since the node started
    Transfers,
    /// Take NODE out of the cluster: it hands its data to the others, then
    /// exits (a reload without it)
    Decommission {
        node: String,
        /// Even if that leaves fewer serving nodes than the replica count
        #[arg(long)]
        force: bool,
    },
    /// Send the protocol's WIPEOUT to NODE
    Wipeout { node: String },
    /// Send the protocol's SHUTDOWN to NODE
    Shutdown { node: String },
}

struct Ctl {
    entries: Vec<ServerEntry>,
    /// The cluster secret, or why there is none (data commands need none).
    secret: Result<Secret, String>,
    secret_file: PathBuf,
    node: Option<SocketAddr>,
    /// This run's operator session (see [`crate::cluster::freshness`]).
    session: u64,
    /// Admin messages signed so far, per node (each try is a new message).
    signed: AtomicU64,
}

/// Runs `dynakv ctl`; returns the text to print or an error.
pub fn run(args: CtlArgs) -> Result<String, String> {
    let entries = servers::load(&args.servers).map_err(|e| e.to_string())?;
    let (secret_file, _) = secret::location(args.cluster_secret_file.as_deref(), &args.servers);
    let mut ctl = Ctl {
        entries,
        secret: secret::load(&secret_file),
        secret_file,
        node: None,
        session: secret::random_u64(),
        signed: AtomicU64::new(0),
    };
    ctl.node = args.node.map(|n| ctl.resolve(&n)).transpose()?;
    match args.command {
        CtlCommand::Put { key, value, version } => ctl.put(&key, &value, version),
        CtlCommand::Get { key } => ctl.get(&key),
        CtlCommand::Remove { key } => ctl.remove(&key),
        CtlCommand::Stats { node, json } => {
            let text = ctl.admin(&ctl.resolve(&node)?, admin::STATS, &[])?;
            Ok(if json { metrics::json_object(&[], &text) } else { text })
        }
        CtlCommand::Members { node } => ctl.admin(&ctl.resolve(&node)?, admin::MEMBERS, &[]),
        CtlCommand::Buckets { node } => ctl.buckets(&ctl.resolve(&node)?),
        CtlCommand::Keys { node, bucket } => ctl.admin(&ctl.resolve(&node)?, admin::KEYS, &bucket.to_le_bytes()),
        CtlCommand::Ring { key } => ctl.ring(&key),
        CtlCommand::Status { json: false } => Ok(ctl.status()),
        CtlCommand::Status { json: true } => Ok(ctl.status_json()),
        CtlCommand::Ready => ctl.ready(),
        CtlCommand::Metrics { output } => ctl.metrics(output.as_deref()),
        CtlCommand::Exporter {
            listen,
            node_timeout_ms,
            request_timeout_ms,
        } => ctl.exporter(&listen, node_timeout_ms, request_timeout_ms),
        CtlCommand::Universe => ctl.show_universe(),
        CtlCommand::Reload { plan, force } => ctl.reload(plan, force),
        CtlCommand::Decommission { node, force } => ctl.decommission(&node, force),
        CtlCommand::Transfers => ctl.transfers(),
        CtlCommand::Wipeout { node } => ctl.simple(&ctl.resolve(&node)?, Command::Wipeout),
        CtlCommand::Shutdown { node } => ctl.shutdown(&ctl.resolve(&node)?),
    }
}

fn code_name(code: u32) -> String {
    match ErrorCode::from_code(code) {
        Some(known) => format!("{known:?} ({code})"),
        None => format!("code {code}"),
    }
}

impl Ctl {
    fn resolve(&self, node: &str) -> Result<SocketAddr, String> {
        if let Ok(index) = node.parse::<usize>() {
            return self
                .entries
                .get(index)
                .map(|e| e.addr)
                .ok_or_else(|| format!("no node {index} in the servers file"));
        }
        servers::resolve(node).ok_or_else(|| format!("cannot resolve {node}"))
    }

    fn target(&self) -> SocketAddr {
        self.node.unwrap_or_else(|| {
            let pick = crate::storage::hash::fmix64(crate::storage::stamp::wall_millis()) as usize % self.entries.len();
            self.entries[pick].addr
        })
    }

    fn call(
        &self,
        command: Command,
        key: Option<&str>,
        value: Option<&str>,
        version: Option<i32>,
    ) -> Result<crate::protocol::proto::kv::KVResponse, String> {
        let target = self.target();
        let request = client::request(command, key.map(str::as_bytes), value.map(str::as_bytes), version);
        client::call(target, &request)
            .map(|(r, _)| r)
            .map_err(|e| format!("{target}: {e}"))
    }

    fn put(&self, key: &str, value: &str, version: i32) -> Result<String, String> {
        let response = self.call(Command::Put, Some(key), Some(value), Some(version))?;
        Ok(code_name(response.errCode.unwrap_or(0)))
    }

    fn get(&self, key: &str) -> Result<String, String> {
        let response = self.call(Command::Get, Some(key), None, None)?;
        match response.errCode.unwrap_or(0) {
            0 => Ok(format!(
                "{}\nversion {}",
                String::from_utf8_lossy(response.value.as_deref().unwrap_or_default()),
                response.version.unwrap_or(0)
            )),
            code => Ok(code_name(code)),
        }
    }

    fn remove(&self, key: &str) -> Result<String, String> {
        Ok(code_name(
            self.call(Command::Remove, Some(key), None, None)?.errCode.unwrap_or(0),
        ))
    }

    fn simple(&self, node: &SocketAddr, command: Command) -> Result<String, String> {
        let request = client::request(command, None, None, None);
        let (response, _) = client::call(*node, &request).map_err(|e| format!("{node}: {e}"))?;
        Ok(code_name(response.errCode.unwrap_or(0)))
    }

    fn shutdown(&self, node: &SocketAddr) -> Result<String, String> {
        let request = client::request(Command::Shutdown, None, None, None);
        // The node exits without answering: one send, a short wait.
        let _ = client::call_with(*node, &request, &[300]);
        Ok(format!("SHUTDOWN sent to {node}"))
    }

    /// Sends a signed admin command and returns the reply's text. Each try
    /// is signed anew: the node refuses a message it has seen.
    fn admin_text(&self, node: &SocketAddr, command: u8, arg: &[u8], timeouts_ms: &[u64]) -> Result<String, String> {
        let secret = self.secret.as_ref().map_err(Clone::clone)?;
        // A node is addressed by its name: as the servers file writes it,
        // or else as its address.
        let name = (self.entries.iter().find(|e| e.addr == *node)).map_or_else(|| node.to_string(), |e| e.name.clone());
        let to = crate::cluster::universe::node_id(&name);
        let socket = client::bind_for(*node).map_err(|e| e.to_string())?;
        let id = client::new_message_id(socket.local_addr().map_err(|e| e.to_string())?);
        let message = Internal::Admin {
            message_id: id.to_vec(),
            command,
            arg: arg.to_vec(),
        };
        let mut last_error = None;
        for &timeout_ms in timeouts_ms {
            let envelope = Envelope {
                sender: OPERATOR,
                to,
                incarnation: self.session,
                seq: self.signed.fetch_add(1, Ordering::Relaxed) + 1,
                sent_unix_ms: unix_millis(),
            };
            let datagram = internal::encode(secret, &envelope, &message);
            match client::exchange(&socket, *node, &id, &datagram, &[timeout_ms]) {
                Ok((response, _)) => return self.admin_reply(node, response),
                Err(error) => last_error = Some(error),
            }
        }
        Err(format!(
            "{node}: {} (nodes do not answer commands signed with another secret; this one is {})",
            last_error.map_or_else(|| "no tries".to_string(), |e| e.to_string()),
            self.secret_file.display()
        ))
    }

    fn admin_reply(
        &self,
        node: &SocketAddr,
        response: crate::protocol::proto::kv::KVResponse,
    ) -> Result<String, String> {
        if response.errCode.unwrap_or(0) != 0 {
            return Err(format!("{node}: {}", code_name(response.errCode.unwrap_or(0))));
        }
        Ok(String::from_utf8_lossy(response.value.as_deref().unwrap_or_default()).into_owned())
    }

    fn admin(&self, node: &SocketAddr, command: u8, arg: &[u8]) -> Result<String, String> {
        self.admin_text(node, command, arg, &[300, 600, 1200])
    }

    /// Every non-empty bucket of a node, asked for as many times as the
    /// listing takes datagrams.
    fn buckets(&self, node: &SocketAddr) -> Result<String, String> {
        let mut listing = String::new();
        let mut from: u16 = 0;
        loop {
            let page = self.admin(node, admin::BUCKETS, &from.to_le_bytes())?;
            let more = page.lines().find_map(|line| line.strip_prefix("more "));
            listing.extend(
                page.lines()
                    .filter(|line| !line.starts_with("more "))
                    .map(|line| format!("{line}\n")),
            );
            match more.and_then(|next| next.parse::<u16>().ok()) {
                // Each page starts further on, so this ends.
                Some(next) if next > from => from = next,
                _ => return Ok(listing),
            }
        }
    }

    /// The replicas of `key` as one node's universe and view place them.
    fn ring(&self, key: &str) -> Result<String, String> {
        let node = self.target();
        let (universe, replicas) = self.universe_of(&node)?;
        let members = self.admin(&node, admin::MEMBERS, &[])?;
        let slots: Vec<(&str, Role)> = (universe.members.iter())
            .map(|m| (m.name.as_str(), if m.leaving { Role::Leaving } else { Role::Serving }))
            .collect();
        let n = slots.len();
        let mut liveness = Liveness::new(vec![false; n], vec![false; n]);
        for member in members.lines().filter_map(Member::parse) {
            let at = slots
                .iter()
                .position(|(name, _)| servers::resolve(name) == Some(member.addr));
            if let Some(at) = at {
                liveness.alive[at] = member.alive;
                liveness.ready[at] = member.ready;
                liveness.full[at] = member.full;
            }
        }
        let view = Placement::with_roles(&slots, replicas).view(0, liveness);
        let bucket = crate::storage::hash::bucket_of_key(key.as_bytes());
        let coordinator = view.coordinator(bucket);
        let mut text = format!(
            "bucket {bucket} (universe {} and membership as seen by {node}, {replicas} replicas)\n",
            universe.version
        );
        for &at in view.preference(bucket) {
            let at = usize::from(at);
            let role = if Some(at) == coordinator {
                "coordinator"
            } else {
                "replica"
            };
            let _ = writeln!(text, "{} {role}", slots[at].0);
        }
        Ok(text)
    }

    /// One node's universe and replica count.
    fn universe_of(&self, node: &SocketAddr) -> Result<(Universe, usize), String> {
        let text = self.admin(node, admin::UNIVERSE, &[])?;
        let universe = Universe::from_text(&text).ok_or_else(|| format!("{node}: no universe in {text:?}"))?;
        let replicas = (parse_lines(&text).iter())
            .find(|(name, _)| *name == "replicas")
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(3);
        Ok((universe, replicas))
    }

    /// Every node of the servers file's universe, in parallel (`None`:
    /// did not answer).
    fn universes(&self) -> Vec<(String, Option<(Universe, usize)>)> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (self.entries.iter())
                .map(|entry| scope.spawn(move || (entry.name.clone(), self.universe_of(&entry.addr).ok())))
                .collect();
            (handles.into_iter()).filter_map(|handle| handle.join().ok()).collect()
        })
    }

    /// The newest universe any node of the servers file holds, and the
    /// replica count of a node holding it.
    fn newest_universe(&self) -> Result<(Universe, usize), String> {
        (self.universes().into_iter())
            .filter_map(|(_, held)| held)
            .max_by_key(|(universe, _)| universe.version)
            .ok_or_else(|| "no node of the servers file answers: cannot learn the cluster's universe".to_string())
    }

    fn show_universe(&self) -> Result<String, String> {
        let held = self.universes();
        let (newest, replicas) = self.newest_universe()?;
        let mut text = newest.to_text();
        let _ = writeln!(text, "replicas {replicas}");
        for (name, universe) in held {
            let version = universe.map_or("no answer".to_string(), |(u, _)| format!("holds {}", u.version));
            let _ = writeln!(text, "node {name} {version}");
        }
        Ok(text)
    }

    fn reload(&self, plan_only: bool, force: bool) -> Result<String, String> {
        let (current, replicas) = self.newest_universe()?;
        let names: Vec<String> = self.entries.iter().map(|entry| entry.name.clone()).collect();
        let up = |name: &str| {
            let request = client::request(Command::IsAlive, None, None, None);
            servers::resolve(name).is_some_and(|addr| client::call_with(addr, &request, &[300, 600]).is_ok())
        };
        let next = current.next(&names, replicas, force, &up)?;
        if next.members == current.members {
            return Ok(format!(
                "the cluster's universe {} already lists these nodes: nothing to change",
                current.version
            ));
        }
        self.checked_spread(&current, &next, replicas, plan_only)
    }

    /// The plan of going to `next`; with `plan_only`, printed; otherwise
    /// `next` is spread if every node fits, refused with the plan if not.
    fn checked_spread(
        &self,
        current: &Universe,
        next: &Universe,
        replicas: usize,
        plan_only: bool,
    ) -> Result<String, String> {
        let plan = plan::plan(next, replicas, &self.node_states(current));
        if plan_only {
            return Ok(format!(
                "universe {} -> {}: {} serving, {} leaving\n{plan}",
                current.version,
                next.version,
                next.serving_count(),
                next.members.len() - next.serving_count()
            ));
        }
        if !plan.fits() {
            return Err(format!("refusing the reload: not every node would fit\n{plan}"));
        }
        self.spread(current, next)
    }

    /// What the plan needs of every member of the current universe that
    /// answers: its store, its disk, its buckets. Nodes the reload adds
    /// hold nothing yet (and are not started yet: not asked).
    fn node_states(&self, current: &Universe) -> Vec<plan::NodeState> {
        let names: Vec<&str> = current.members.iter().map(|m| m.name.as_str()).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (names.iter())
                .map(|&name| scope.spawn(move || self.node_state(name)))
                .collect();
            (handles.into_iter()).filter_map(|handle| handle.join().ok()).collect()
        })
    }

    fn node_state(&self, name: &str) -> plan::NodeState {
        let mut state = plan::NodeState {
            name: name.to_string(),
            ..plan::NodeState::default()
        };
        let Some(addr) = servers::resolve(name) else {
            return state;
        };
        let (Ok(stats), Ok(listing)) = (self.admin(&addr, admin::STATS, &[]), self.buckets(&addr)) else {
            return state;
        };
        let fields = parse_lines(&stats);
        let number = |field: &str| {
            (fields.iter())
                .find(|(name, _)| *name == field)
                .and_then(|(_, value)| value.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        state.answered = true;
        state.stored_bytes = number("stored_bytes");
        state.store_limit_bytes = number("store_limit_bytes");
        state.disk_free_bytes = number("disk_free_bytes");
        for line in listing.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            if let [bucket, live, _, _, bytes] = fields.as_slice()
                && let (Ok(bucket), Ok(live), Ok(bytes)) = (bucket.parse(), live.parse(), bytes.parse())
            {
                state.buckets.insert(bucket, (live, bytes));
            }
        }
        state
    }

    /// One row per member of the newest universe: what it has left to
    /// move and what it has moved; the last line says whether data is
    /// still moving (run/reload shows it while it waits).
    fn transfers(&self) -> Result<String, String> {
        let (newest, _) = self.newest_universe()?;
        let mut out = format!(
            "{:<22} {:<8} {:>12} {:>12} {:>14} {:>12} {:>12}\n",
            "node", "role", "pulls_left", "handing_off", "buckets_pulled", "MiB_in", "MiB_out"
        );
        let (mut pulls_left, mut handing_off, mut answering) = (0, 0, 0);
        for member in &newest.members {
            let role = if member.leaving { "leaving" } else { "serving" };
            let stats = servers::resolve(&member.name).map(|addr| self.admin(&addr, admin::STATS, &[]));
            let Some(Ok(stats)) = stats else {
                let _ = writeln!(out, "{:<22} {:<8} {:>12}", member.name, role, "no answer");
                continue;
            };
            let fields = parse_lines(&stats);
            let get = |field: &str| -> u64 {
                (fields.iter())
                    .find(|(name, _)| *name == field)
                    .and_then(|(_, value)| value.trim().parse().ok())
                    .unwrap_or(0)
            };
            let mib = |field: &str| format!("{:.1}", get(field) as f64 / (1 << 20) as f64);
            answering += 1;
            pulls_left += get("pulls_pending");
            handing_off += get("buckets_handing_off");
            let _ = writeln!(
                out,
                "{:<22} {:<8} {:>12} {:>12} {:>14} {:>12} {:>12}",
                member.name,
                role,
                get("pulls_pending"),
                get("buckets_handing_off"),
                get("buckets_pulled"),
                mib("transfer_bytes_received"),
                mib("transfer_bytes_sent")
            );
        }
        let _ = writeln!(
            out,
            "universe {}: {answering} of {} nodes answer; {pulls_left} bucket pulls left, {handing_off} buckets handed off and not yet confirmed",
            newest.version,
            newest.members.len()
        );
        Ok(out)
    }

    fn decommission(&self, node: &str, force: bool) -> Result<String, String> {
        let (current, replicas) = self.newest_universe()?;
        let name = match node.parse::<usize>() {
            Ok(index) => self
                .entries
                .get(index)
                .map(|e| e.name.clone())
                .ok_or(format!("no node {index}"))?,
            Err(_) => node.to_string(),
        };
        let next = current.without(&name, replicas, force)?;
        self.checked_spread(&current, &next, replicas, false)
    }

    /// Sends `next` (signed) to every member of it, and says what changed
    /// and who took it.
    fn spread(&self, current: &Universe, next: &Universe) -> Result<String, String> {
        let arg = next.encode();
        let answers: Vec<(String, Result<String, String>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (next.members.iter())
                .map(|member| {
                    let arg = &arg;
                    scope.spawn(move || {
                        let answer = servers::resolve(&member.name)
                            .ok_or_else(|| format!("cannot resolve {}", member.name))
                            .and_then(|addr| self.admin_text(&addr, admin::ADOPT_UNIVERSE, arg, &[300, 600, 1200]));
                        (member.name.clone(), answer)
                    })
                })
                .collect();
            (handles.into_iter()).filter_map(|handle| handle.join().ok()).collect()
        });
        let named = |pick: &dyn Fn(&str) -> bool| -> String {
            let names: Vec<&str> = (next.members.iter().map(|m| m.name.as_str()))
                .filter(|n| pick(n))
                .collect();
            if names.is_empty() {
                "none".into()
            } else {
                names.join(" ")
            }
        };
        let is_leaving = |name: &str| next.member(name).is_some_and(|m| m.leaving);
        let added = named(&|name| current.member(name).is_none());
        let leaving = named(&|name| is_leaving(name) && current.member(name).is_some_and(|m| !m.leaving));
        let adopted = answers
            .iter()
            .filter(|(_, a)| a.as_ref().is_ok_and(|t| t.starts_with("adopted")))
            .count();
        let mut text = format!(
            "universe {} (was {}): {} serving, {} leaving; added: {added}; leaving now: {leaving}\nadopted by {adopted} of {} nodes\n",
            next.version,
            current.version,
            next.serving_count(),
            next.members.len() - next.serving_count(),
            answers.len()
        );
        for (name, answer) in &answers {
            match answer {
                Ok(reply) if reply.starts_with("adopted") => {}
                Ok(reply) => {
                    let _ = writeln!(text, "{name}: {}", reply.trim_end());
                }
                Err(_) => {
                    let _ = writeln!(
                        text,
                        "{name}: no answer (a node that runs later takes it from its peers)"
                    );
                }
            }
        }
        Ok(text)
    }

    /// One admin command to every node of the servers file, in parallel.
    fn ask_all(&self, command: u8) -> Vec<Result<String, String>> {
        self.ask_all_within(command, &[300, 600])
    }

    /// [`Ctl::ask_all`] with the tries' timeouts given.
    fn ask_all_within(&self, command: u8, timeouts_ms: &[u64]) -> Vec<Result<String, String>> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .entries
                .iter()
                .map(|entry| scope.spawn(move || self.admin_text(&entry.addr, command, &[], timeouts_ms)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("panicked".into())))
                .collect()
        })
    }

    /// Whether every node sees every node alive and ready (views converged).
    fn ready(&self) -> Result<String, String> {
        let n = self.entries.len();
        let views = self.ask_all(admin::MEMBERS);
        let ready = views
            .iter()
            .filter(|view| {
                view.as_ref().is_ok_and(|text| {
                    let members = text.lines().filter_map(Member::parse);
                    members.filter(|member| member.alive && member.ready).count() == n
                })
            })
            .count();
        let mut summary = format!("{ready} of {n} nodes see the whole cluster alive and ready");
        if ready == n {
            return Ok(summary);
        }
        // Which nodes hold the others back: silent ones, and the ones some
        // answering node does not yet see alive and ready.
        let silent: Vec<&str> = (self.entries.iter().zip(&views))
            .filter(|(_, view)| view.is_err())
            .map(|(entry, _)| entry.name.as_str())
            .collect();
        let mut seen_ready = vec![0usize; n];
        for text in views.iter().flatten() {
            for member in text.lines().filter_map(Member::parse) {
                let at = self.entries.iter().position(|entry| entry.addr == member.addr);
                if let Some(at) = at.filter(|_| member.alive && member.ready) {
                    seen_ready[at] += 1;
                }
            }
        }
        let answering = n - silent.len();
        let behind: Vec<&str> = (self.entries.iter().zip(&seen_ready))
            .filter(|(_, seen)| **seen < answering)
            .map(|(entry, _)| entry.name.as_str())
            .collect();
        let few = |names: &[&str]| names.iter().take(8).copied().collect::<Vec<_>>().join(" ");
        if !silent.is_empty() {
            summary.push_str(&format!("; {} do not answer: {}", silent.len(), few(&silent)));
        }
        if !behind.is_empty() {
            summary.push_str(&format!(
                "; {} not seen alive and ready by all: {}",
                behind.len(),
                few(&behind)
            ));
        }
        Err(summary)
    }

    /// Every node's counters (nodes that did not answer: `None`).
    fn stats_of_all(&self) -> Vec<(String, Option<String>)> {
        self.stats_of_all_within(&[300, 600])
    }

    fn stats_of_all_within(&self, timeouts_ms: &[u64]) -> Vec<(String, Option<String>)> {
        (self.entries.iter().zip(self.ask_all_within(admin::STATS, timeouts_ms)))
            .map(|(entry, stats)| (entry.name.clone(), stats.ok()))
            .collect()
    }

    /// `ctl exporter`: serves [`Ctl::metrics`] over HTTP until accepting
    /// fails. A scrape gives each node `node_timeout_ms` in all, in two
    /// tries (a datagram lost on the way costs one try, not the node).
    fn exporter(self, listen: &str, node_timeout_ms: u64, request_timeout_ms: u64) -> Result<String, String> {
        use crate::ops::exporter::{DEFAULT_PORT, Exporter};
        let address = if listen.contains(':') {
            listen.to_string()
        } else {
            format!("{listen}:{DEFAULT_PORT}")
        };
        let listener = std::net::TcpListener::bind(&address).map_err(|e| format!("--listen {address}: {e}"))?;
        self.secret.as_ref().map_err(Clone::clone)?;
        eprintln!(
            "exporter: http://{}/metrics for the {} nodes of the servers file",
            listener.local_addr().map_err(|e| e.to_string())?,
            self.entries.len()
        );
        let tries = [node_timeout_ms / 3, node_timeout_ms - node_timeout_ms / 3];
        let exporter = Exporter {
            scrape: move || metrics::prometheus(&self.stats_of_all_within(&tries)),
            request_timeout: std::time::Duration::from_millis(request_timeout_ms),
        };
        Err(format!("--listen {address}: {}", exporter.serve(listener)))
    }

    /// `[{"node": ..., "alive": true, counters...}, ...]`, one per node.
    fn status_json(&self) -> String {
        let rows: Vec<String> = (self.stats_of_all().into_iter())
            .map(|(name, stats)| match stats {
                Some(text) => metrics::json_object(&[("server", &name), ("alive", "true")], &text),
                None => metrics::json_object(&[("server", &name), ("alive", "false")], ""),
            })
            .collect();
        format!("[{}]", rows.join(",\n"))
    }

    fn metrics(&self, output: Option<&Path>) -> Result<String, String> {
        let text = metrics::prometheus(&self.stats_of_all());
        let Some(path) = output else { return Ok(text) };
        // The textfile collector must never read a half-written file.
        let partial = path.with_extension("prom.partial");
        std::fs::write(&partial, &text).map_err(|e| format!("{}: {e}", partial.display()))?;
        std::fs::rename(&partial, path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(format!(
            "{} metric lines written to {}",
            text.lines().count(),
            path.display()
        ))
    }

    /// One row per node, queried in parallel.
    fn status(&self) -> String {
        let rows = self.ask_all(admin::STATS);
        // SAFETY: isatty only inspects a file descriptor.
        let color = unsafe { libc::isatty(1) } == 1;
        let paint = |text: &str, ok: bool| match (color, ok) {
            (false, _) => format!("{text:<5}"),
            (true, true) => format!("\x1b[32m{text:<5}\x1b[0m"),
            (true, false) => format!("\x1b[31m{text:<5}\x1b[0m"),
        };
        let mut out = format!(
            "{:<22} {:>8} {:<5} {:>7} {:>9} {:>10} {:>8} {:>8} {:>8} {:>9} {:>9}\n",
            "node",
            "pid",
            "alive",
            "members",
            "keys",
            "stored_MiB",
            "rss_MiB",
            "disk_MiB",
            "uptime_s",
            "req/s",
            "overloads"
        );
        let answering = rows.iter().filter(|row| row.is_ok()).count();
        let mut totals = StatusTotals::default();
        for (entry, row) in self.entries.iter().zip(rows) {
            match row {
                Ok(text) => {
                    let fields = parse_lines(&text);
                    let stat = |name: &str| stat_of(&fields, name);
                    totals.add(&fields, answering);
                    let mib = |name: &str| {
                        (stat(name).parse::<f64>()).map_or("-".into(), |b| format!("{:.1}", b / 1048576.0))
                    };
                    let _ = writeln!(
                        out,
                        "{:<22} {:>8} {} {:>7} {:>9} {:>10} {:>8} {:>8} {:>8} {:>9} {:>9}",
                        entry.name,
                        stat("pid"),
                        paint("yes", true),
                        stat("members"),
                        stat("keys").parse::<u64>().unwrap_or(0),
                        mib("stored_bytes"),
                        mib("rss_bytes"),
                        mib("disk_bytes"),
                        stat("uptime_s"),
                        stat("requests_per_s"),
                        stat("overloads")
                    );
                }
                Err(_) => {
                    let _ = writeln!(out, "{:<22} {:>8} {}", entry.name, "-", paint("no", false));
                }
            }
        }
        out + &totals.summary(self.entries.len(), answering)
    }
}

/// The STATS field `name` ("-" when the node did not report it).
fn stat_of<'a>(fields: &[(&'a str, &'a str)], name: &str) -> &'a str {
    (fields.iter().find(|(n, _)| *n == name)).map_or("-", |(_, v)| *v)
}

/// What `ctl status` sums over the nodes that answered.
#[derive(Default)]
struct StatusTotals {
    alive: usize,
    keys: u64,
    keys_min: Option<u64>,
    keys_max: u64,
    /// Nodes whose member count is exactly the number answering.
    exact: usize,
    died: u64,
    suspensions: u64,
    stalls: u64,
}

impl StatusTotals {
    /// Adds one answering node, by its STATS fields.
    fn add(&mut self, fields: &[(&str, &str)], answering: usize) {
        let stat = |name: &str| stat_of(fields, name);
        let count = |name: &str| stat(name).parse::<u64>().unwrap_or(0);
        let keys = count("keys");
        self.exact += usize::from(stat("members") == answering.to_string());
        self.died += count("peers_died");
        self.suspensions += count("suspensions");
        self.stalls += count("stalls");
        self.alive += 1;
        self.keys += keys;
        self.keys_min = Some(self.keys_min.map_or(keys, |min| min.min(keys)));
        self.keys_max = self.keys_max.max(keys);
    }

    /// The two closing lines.
    fn summary(&self, nodes: usize, answering: usize) -> String {
        let Self {
            alive,
            keys,
            exact,
            died,
            suspensions,
            stalls,
            ..
        } = self;
        format!(
            "{alive} of {nodes} nodes alive, {keys} keys in total (replicas included), {}..{} keys per node\n\
             {exact} of {alive} count exactly the {answering} answering; since their start: {died} peers declared dead, {suspensions} suspensions, {stalls} stalls\n",
            self.keys_min.unwrap_or(0),
            self.keys_max
        )
    }
}

/// One line of a node's MEMBERS reply for a serving node: `slot address
/// alive ready full` (a leaving node's line ends `leaving`, and is not
/// one of these).
struct Member {
    addr: SocketAddr,
    alive: bool,
    ready: bool,
    full: bool,
}

impl Member {
    fn parse(line: &str) -> Option<Member> {
        let fields: Vec<&str> = line.split(' ').collect();
        let [_, addr, alive, ready, full] = fields.as_slice() else {
            return None;
        };
        Some(Member {
            addr: addr.parse().ok()?,
            alive: *alive == "1",
            ready: *ready == "1",
            full: *full == "1",
        })
    }
}
