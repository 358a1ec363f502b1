//! The operator scripts for real: `run/start`, `run/status`, `dynakv ctl`
//! and `run/stop` on a loopback cluster, and the same deployment over ssh to
//! a throwaway OpenSSH server bound to 127.0.0.2.

mod common;

use common::*;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str, args: &[&Path], env: &[(&str, String)]) -> Output {
    let output = Command::new(repo().join("run").join(name))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run script");
    eprintln!(
        "run/{name}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Pids recorded by run/start, killed (by pid) if the test ends early.
struct Recorded(Vec<u32>);

fn recorded_pids(output_dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(output_dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "pid") {
            pids.push(std::fs::read_to_string(entry.path()).unwrap().trim().parse().unwrap());
        }
    }
    pids.sort_unstable();
    pids
}

impl Recorded {
    fn read(output_dir: &Path) -> Recorded {
        Recorded(recorded_pids(output_dir))
    }

    /// Pids still running (zombies awaiting their reaper count as gone).
    fn alive(&self) -> Vec<u32> {
        self.0
            .iter()
            .copied()
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let state = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next());
                matches!(state, Some(s) if s != "Z" && s != "X")
            })
            .collect()
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        for pid in self.alive() {
            // SAFETY: kill(2) of a node process this test started.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// The first of `count` consecutive loopback ports free just now (for
/// run/start's DynamoDB endpoints, one port each from a base).
fn consecutive_free_ports(count: usize) -> u16 {
    for _ in 0..20 {
        let addrs = free_addrs(count);
        let ports: Vec<u16> = addrs.iter().map(|a| a.port()).collect();
        if ports.windows(2).all(|w| w[1] == w[0] + 1) {
            return ports[0];
        }
    }
    panic!("no {count} consecutive free ports");
}

/// A DynamoDB ListTables over plain HTTP (no signature: the nodes take
/// any without --dynamodb-credentials): the response body.
fn list_tables(endpoint: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(endpoint).expect("connect to the DynamoDB endpoint");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {endpoint}\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n\
         Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or(response)
}

fn secret_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("a cluster secret").permissions().mode() & 0o777
}

#[test]
fn run_scripts_start_status_ctl_and_stop_a_local_cluster() {
    let dir = TempDir::new("ops");
    let servers = dir.0.join("servers.txt");
    let addrs = free_addrs(5);
    let text: String = addrs.iter().map(|a| format!("{a}\n")).collect();
    std::fs::write(&servers, text).unwrap();
    let output_dir = dir.0.join("output");
    let out = &*output_dir;
    let dynamodb_base = consecutive_free_ports(5);
    let env = [("DYNAKV_DYNAMODB_PORT", dynamodb_base.to_string())];

    let started = script("start", &[&servers, Path::new("--output"), out], &env);
    let pids = Recorded::read(out);
    assert!(started.status.success(), "run/start failed");
    assert!(String::from_utf8_lossy(&started.stdout).contains("5 of 5 nodes see the whole cluster alive and ready"));
    let endpoints: Vec<String> = (0..5).map(|i| format!("127.0.0.1:{}", dynamodb_base + i)).collect();
    let listed = endpoints.iter().map(|e| format!(" http://{e}")).collect::<String>();
    assert!(
        String::from_utf8_lossy(&started.stdout).contains(&format!("DynamoDB endpoints:{listed}")),
        "run/start prints the DynamoDB endpoints, one port each from the base"
    );
    for endpoint in &endpoints {
        assert_eq!(
            list_tables(endpoint),
            "{\"TableNames\":[]}",
            "{endpoint} serves DynamoDB"
        );
    }
    let json = script(
        "status",
        &[&servers, Path::new("--output"), out, Path::new("--json")],
        &[],
    );
    let json = String::from_utf8_lossy(&json.stdout);
    for endpoint in &endpoints {
        assert!(
            json.contains(&format!("\"dynamodb_endpoint\": \"http://{endpoint}\"")),
            "run/status --json names {endpoint}: {json}"
        );
    }
    assert_eq!(pids.alive().len(), 5, "one process per node");
    assert_eq!(
        secret_mode(&dir.0.join("servers.txt.secret")),
        0o600,
        "a secret of its own"
    );

    let again = script("start", &[&servers, Path::new("--output"), out], &env);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already running: 5 of 5"));
    assert_eq!(recorded_pids(out), pids.0, "nothing restarted");

    let status = script("status", &[&servers], &[]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("5 of 5 nodes alive"));

    assert_eq!(ctl(&servers, &["put", "greeting", "hello"]).trim(), "Success (0)");
    assert_eq!(ctl(&servers, &["get", "greeting"]).trim(), "hello\nversion 0");
    let ring = ctl(&servers, &["ring", "greeting"]);
    assert_eq!(
        ring.lines()
            .filter(|l| l.ends_with("coordinator") || l.ends_with("replica"))
            .count(),
        3
    );

    let keys: Vec<usize> = (0..1_000).collect();
    write_keys(&addrs, &keys, 1);

    let stopped = script("stop", &[&servers, Path::new("--output"), out], &[]);
    assert!(stopped.status.success());
    assert!(String::from_utf8_lossy(&stopped.stdout).contains("5 nodes stopped"));
    assert_eq!(pids.alive(), Vec::<u32>::new(), "no node process is left");

    // What an upgrade or a host reboot does: every node stopped, then
    // started again on its data directory. Every key is still there.
    let restarted = script("start", &[&servers, Path::new("--output"), out], &env);
    let pids = Recorded::read(out);
    assert!(restarted.status.success(), "run/start after run/stop failed");
    assert_eq!(ctl(&servers, &["get", "greeting"]).trim(), "hello\nversion 0");
    let expect: Vec<(usize, Option<usize>)> = keys.iter().map(|&i| (i, Some(1))).collect();
    let wrong = misreads(&addrs, &expect, 7, false);
    assert!(
        wrong.is_empty(),
        "keys lost across run/stop + run/start: {:?}",
        &wrong[..wrong.len().min(10)]
    );
    let status = script("status", &[&servers], &[]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("disk_MiB"),
        "run/status shows disk use"
    );
    let stopped = script("stop", &[&servers, Path::new("--output"), out], &[]);
    assert!(stopped.status.success());
    assert_eq!(pids.alive(), Vec::<u32>::new(), "no node process is left");
}

/// A throwaway sshd on 127.0.0.2 accepting one fresh key; killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    key: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sshd(dir: &Path) -> Result<Sshd, String> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        return Err("/usr/sbin/sshd is not installed (.ci/run installs Debian's openssh-server)".into());
    }
    let keygen = |path: &Path| {
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path)
            .status()
            .map_err(|e| format!("ssh-keygen: {e}"))
    };
    let key = dir.join("client_key");
    keygen(&key)?;
    keygen(&dir.join("host_key"))?;
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).map_err(|e| e.to_string())?;
    let port = free_addrs_on([127, 0, 0, 2], 1)[0].port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.2\nHostKey {}\nAuthorizedKeysFile {}\nPermitRootLogin yes\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nPidFile {}\n\
         Subsystem sftp internal-sftp\n",
        dir.join("host_key").display(),
        dir.join("authorized_keys").display(),
        dir.join("sshd.pid").display()
    );
    std::fs::write(dir.join("sshd_config"), config).map_err(|e| e.to_string())?;
    let _ = std::fs::create_dir_all("/run/sshd");
    let child = Command::new(sshd)
        .arg("-D")
        .arg("-f")
        .arg(dir.join("sshd_config"))
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start sshd: {e}"))?;
    let daemon = Sshd { child, port, key };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.2", port)).is_err() {
        if start.elapsed() > Duration::from_secs(5) {
            let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
            return Err(format!("sshd did not listen within 5 s: {log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(daemon)
}

#[test]
fn run_scripts_deploy_a_cluster_over_ssh() {
    let dir = TempDir::new("ssh");
    let sshd = match start_sshd(&dir.0) {
        Ok(sshd) => sshd,
        Err(why) => {
            eprintln!("SKIPPED run_scripts_deploy_a_cluster_over_ssh: {why}");
            return;
        }
    };
    let addrs = free_addrs_on([127, 0, 0, 2], 3);
    let servers = dir.0.join("servers.txt");
    std::fs::write(&servers, addrs.iter().map(|a| format!("{a}\n")).collect::<String>()).unwrap();
    let remote_dir = dir.0.join("remote");
    let opts = format!(
        "-i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR \
         -o ConnectTimeout=5",
        sshd.key.display()
    );
    let env = [
        ("DYNAKV_SSH", format!("ssh -p {} {opts}", sshd.port)),
        ("DYNAKV_SCP", format!("scp -P {} {opts}", sshd.port)),
        ("DYNAKV_SSH_HOSTS", "127.0.0.2".to_string()),
        ("DYNAKV_REMOTE_DIR", remote_dir.display().to_string()),
    ];
    let output_dir = dir.0.join("output");
    let out = &*output_dir;

    let started = script("start", &[&servers, Path::new("--output"), out], &env);
    let pids = Recorded::read(out);
    assert!(started.status.success(), "run/start over ssh failed");
    assert!(remote_dir.join("dynakv").exists(), "the binary was copied over ssh");
    assert_eq!(
        std::fs::read(remote_dir.join("cluster.secret")).unwrap(),
        std::fs::read(dir.0.join("servers.txt.secret")).unwrap(),
        "and the secret with it"
    );
    assert_eq!(secret_mode(&remote_dir.join("cluster.secret")), 0o600);
    assert_eq!(pids.alive().len(), 3, "three nodes started through sshd");
    assert_eq!(ctl(&servers, &["put", "k", "over-ssh"]).trim(), "Success (0)");
    assert_eq!(ctl(&servers, &["get", "k"]).trim(), "over-ssh\nversion 0");

    let stopped = script("stop", &[&servers, Path::new("--output"), out], &env);
    assert!(stopped.status.success());
    assert!(String::from_utf8_lossy(&stopped.stdout).contains("3 nodes stopped"));
    assert_eq!(pids.alive(), Vec::<u32>::new(), "no node process is left");
}

/// docs/cli.md shows what `dynakv --help` and `dynakv ctl ... --help`
/// print today.
#[test]
fn the_cli_reference_matches_the_help_output() {
    let doc = std::fs::read_to_string(repo().join("docs/cli.md")).unwrap();
    for args in [
        &["--help"][..],
        &["ctl", "--help"],
        &["ctl", "stats", "--help"],
        &["ctl", "status", "--help"],
        &["ctl", "metrics", "--help"],
        &["ctl", "put", "--help"],
        &["ctl", "keys", "--help"],
        &["ctl", "reload", "--help"],
        &["ctl", "decommission", "--help"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_dynakv")).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        let block = format!("## `dynakv {}`\n\n```\n{help}", args.join(" "));
        assert!(
            doc.contains(&block),
            "docs/cli.md is out of date for `dynakv {}`:\n{help}",
            args.join(" ")
        );
    }
}
