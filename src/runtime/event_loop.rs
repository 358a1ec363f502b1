//! An event loop: owns one of the node's UDP sockets and drives its
//! [`Router`] (with `--receivers N`, N loops share the port, one on the
//! main thread, the others on threads `receiver-1`...). It drains the socket until it would block, handing each datagram on,
//! flushes workers' batches every [`DRAIN_BATCH_DATAGRAMS_MAX`] datagrams,
//! measures the socket's backlog for the shard it runs, and ticks the
//! router on a timer. After a SIGCONT, or a gap between wake-ups longer
//! than the failure timeout, what queued meanwhile is stale: it is dropped
//! unread (clients have long given up or retried elsewhere, and executing
//! it now could write old values over newer ones).

use crate::node::context::Away;
use crate::node::router::Router;
use crate::protocol::wire::DATAGRAM_BYTES_MAX;
use crate::runtime::pause::ResumeWatch;
use mio::{Events, Interest, Poll, Token};
use std::io;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// Datagrams handled before batches are flushed to the workers, so a worker
/// starts while the socket is still being drained.
const DRAIN_BATCH_DATAGRAMS_MAX: usize = 64;
/// Kernel receive-buffer bytes charged per small datagram (its skb).
const QUEUED_BYTES_PER_DATAGRAM: usize = 1024;

const SOCKET: Token = Token(0);
/// Another thread queued work for the shard run on the loop.
pub const WAKE: Token = Token(1);

pub struct EventLoop {
    poll: Poll,
    socket: mio::net::UdpSocket,
    router: Router,
    resume_watch: ResumeWatch,
    /// A gap between wake-ups this long, with no SIGCONT, also makes what
    /// queued meanwhile stale (the failure timeout: peers counted us dead).
    stale_after: Duration,
}

impl EventLoop {
    /// `poll` may already carry a [`WAKE`] waker for the shard run here.
    pub fn new(poll: Poll, socket: UdpSocket, router: Router, stale_after: Duration) -> EventLoop {
        EventLoop {
            poll,
            socket: mio::net::UdpSocket::from_std(socket),
            router,
            resume_watch: ResumeWatch::default(),
            stale_after,
        }
    }

    /// Runs until the process exits.
    pub fn run(mut self) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut self.socket, SOCKET, Interest::READABLE)?;
        let mut events = Events::with_capacity(16);
        let mut buffer = vec![0u8; DATAGRAM_BYTES_MAX + 1];
        let mut last_wake = Instant::now();
        loop {
            let timeout = Duration::from_millis(self.router.tick_in_ms());
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                // A signal (SIGCONT) interrupts the wait: look at it below.
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
            // A gap shorter than the failure timeout is a slow tick on a
            // busy host, and what queued is merely late.
            let gap = last_wake.elapsed();
            let away = if let Some(stop) = self.resume_watch.resumed() {
                Some(Away::Continued { stop })
            } else if gap > self.stale_after {
                Some(Away::Stalled {
                    gap_ms: gap.as_millis().try_into().unwrap_or(u64::MAX),
                })
            } else {
                None
            };
            if let Some(away) = away {
                let mut dropped = 0;
                while self.socket.recv_from(&mut buffer).is_ok() {
                    dropped += 1;
                }
                self.router.resumed(away, dropped);
            }
            last_wake = Instant::now();
            self.router.begin_drain();
            self.drain(&mut buffer);
            self.router.tick();
        }
    }

    /// Reads until the socket is empty (mio is edge-triggered).
    fn drain(&mut self, buffer: &mut [u8]) {
        let mut since_flush = 0;
        loop {
            match self.socket.recv_from(buffer) {
                Ok((len, from)) => {
                    self.router.handle_datagram(&buffer[..len], from);
                    since_flush += 1;
                    if since_flush == DRAIN_BATCH_DATAGRAMS_MAX {
                        self.router.flush();
                        if self.router.runs_shard() {
                            let queued = crate::runtime::udp::queued_bytes(&self.socket);
                            self.router.set_socket_backlog(queued / QUEUED_BYTES_PER_DATAGRAM);
                        }
                        since_flush = 0;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // Emptied: nothing is waiting (measuring before every
                    // drain would cost a system call per idle wake-up).
                    self.router.set_socket_backlog(0);
                    break;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // ICMP errors from earlier sends surface here; nothing to do.
                Err(_) => {}
            }
        }
    }
}
