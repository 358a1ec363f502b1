//! A node's I/O in a real process: datagrams through its UDP socket,
//! streams through the transfer thread.

use crate::node::context::NodeIo;
use crate::node::durability::disk::NodeDisk;
use crate::node::messages::Wake;
use crate::runtime::transfer_thread::TransferHandle;
use crate::runtime::udp::{SEND_DROPS, send_datagram};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub struct SocketIo {
    pub socket: UdpSocket,
    pub transfer: TransferHandle,
    /// The data directory, synced before SHUTDOWN ends the process.
    pub disk: Option<Arc<dyn NodeDisk>>,
}

impl NodeIo for SocketIo {
    fn datagram(&self, to: SocketAddr, bytes: &[u8]) {
        send_datagram(&self.socket, bytes, to);
    }

    fn stream(&self, to: usize, frames: Vec<Vec<u8>>) -> bool {
        self.transfer.send(to, frames)
    }

    fn applied(&self, bytes: usize) {
        self.transfer.applied(bytes);
    }

    fn dropped_sends(&self) -> u64 {
        SEND_DROPS.load(Ordering::Relaxed)
    }

    fn disk_free_bytes(&self) -> u64 {
        self.disk.as_ref().and_then(|disk| disk.free_bytes()).unwrap_or(0)
    }

    fn shutdown(&self) {
        // What was written is made durable; otherwise like a crash: no
        // reply, no cleanup, no hand-off (a drain's unwritten changes were
        // never acknowledged).
        if let Some(disk) = &self.disk
            && let Err(error) = disk.sync_all()
        {
            crate::log!(
                "shutdown_sync_failed",
                "could not sync the data directory before exiting: {error}"
            );
        }
        // SAFETY: _exit ends the process; nothing is left to run.
        unsafe { libc::_exit(0) }
    }
}

/// mio's waker wakes the event loop for the shard it runs.
pub struct LoopWaker(pub mio::Waker);

impl Wake for LoopWaker {
    fn wake(&self) {
        let _ = self.0.wake();
    }
}
