//! The CPU time the servers under test spend during a run, read from
//! `/proc/PID/stat` when they run on this machine: the figure that says
//! what each request costs the server, next to throughput. Servers are
//! taken as local when their address is a loopback address and the pid
//! they report (GET_PID) is a process here.

use dynakv::protocol::client;
use dynakv::protocol::wire::Command;
use std::net::SocketAddr;

/// User plus system CPU seconds of a process, or `None` if it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_seconds_in(&format!("/proc/{pid}/stat"))
}

/// User plus system CPU seconds from a `stat` file of `/proc`: a process's,
/// or one thread's (`/proc/PID/task/TID/stat`).
pub fn cpu_seconds_in(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses:
    // state is field 3, utime field 14, stime field 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((utime + stime) as f64 / ticks)
}

/// The pids of the servers, if every one is local (see the module docs).
pub fn local_pids(servers: &[SocketAddr]) -> Option<Vec<u32>> {
    servers
        .iter()
        .map(|server| {
            if !server.ip().is_loopback() {
                return None;
            }
            let request = client::request(Command::GetPid, None, None, None);
            let (response, _) = client::call(*server, &request).ok()?;
            let pid = u32::try_from(response.pid?).ok()?;
            cpu_seconds(pid).map(|_| pid)
        })
        .collect()
}

/// Server CPU over a run: start it before, finish it after.
pub struct ServerCpu {
    pids: Vec<u32>,
    start_seconds: f64,
}

impl ServerCpu {
    pub fn start(pids: Vec<u32>) -> ServerCpu {
        let start_seconds = pids.iter().filter_map(|&pid| cpu_seconds(pid)).sum();
        ServerCpu { pids, start_seconds }
    }

    /// CPU seconds the servers spent since [`ServerCpu::start`], or `None`
    /// if one of them exited meanwhile.
    pub fn finish(&self) -> Option<f64> {
        let now: Option<f64> = self.pids.iter().map(|&pid| cpu_seconds(pid)).sum();
        Some(now? - self.start_seconds)
    }
}
