//! A worker thread: drives one [`Shard`] on hosts with cores to spare,
//! from its queue, with a tick whenever the shard has work on a timer.

use crate::node::messages::ShardMsg;
use crate::node::shard::Shard;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// Runs until every sender of the inbox is gone.
pub fn run(mut shard: Shard, inbox: Receiver<ShardMsg>) {
    loop {
        let msg = match shard.tick_in_ms() {
            Some(ms) => inbox.recv_timeout(Duration::from_millis(ms)),
            None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok(msg) => shard.handle(msg),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        shard.tick();
    }
}
