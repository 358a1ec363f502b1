//! A worker thread: drives one [`Worker`] (a shard) on hosts with cores to
//! spare, from its queue, with a tick while writes wait for replicas.

use crate::node::messages::ShardMsg;
use crate::node::shard::{TICK_MS, Worker};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// Runs until every sender of the inbox is gone.
pub fn run(mut worker: Worker, inbox: Receiver<ShardMsg>) {
    loop {
        let msg = if worker.has_pending() {
            inbox.recv_timeout(Duration::from_millis(TICK_MS))
        } else {
            inbox.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        match msg {
            Ok(msg) => worker.handle(msg),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        worker.tick_pending();
    }
}
