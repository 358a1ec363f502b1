//! Transfer frames that reach a node over its streams (bucket pulls and
//! chunks): used only once signed, meant for this node, in range and new,
//! then turned into work for the shard of their bucket.

use crate::cluster::freshness::Freshness;
use crate::cluster::internal::{self, Internal};
use crate::node::context::NodeContext;
use crate::node::messages::ShardMsg;
use crate::storage::hash::BucketId;
use std::sync::Arc;

/// What one node knows of the frames it has been sent.
pub struct StreamFrames {
    ctx: Arc<NodeContext>,
    freshness: Freshness,
}

impl StreamFrames {
    pub fn new(ctx: Arc<NodeContext>) -> StreamFrames {
        let nodes = ctx.addrs.len();
        StreamFrames {
            ctx,
            freshness: Freshness::new(nodes),
        }
    }

    /// The work one whole frame asks for, and the bucket whose shard does
    /// it; `None` (counted) for what is refused, or is not stream work.
    pub fn accept(&mut self, frame: &[u8]) -> Option<(BucketId, ShardMsg)> {
        let bounds = self.ctx.bounds();
        let me = self.ctx.self_index as u8;
        let (envelope, message) = match internal::decode(&self.ctx.secret, me, &bounds, frame) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.ctx.count_rejected(error);
                return None;
            }
        };
        if self.freshness.admit(&envelope, bounds.now_unix_ms).is_err() {
            self.ctx.counters.count_rejected(crate::node::counters::Reject::Stale);
            return None;
        }
        let sender = usize::from(envelope.sender);
        match message {
            Internal::Pull {
                request,
                bucket,
                digest,
            } => Some((
                bucket,
                ShardMsg::ServePull {
                    to: sender,
                    request,
                    bucket,
                    digest,
                },
            )),
            Internal::Chunk(chunk) => {
                let bytes = frame.len();
                Some((chunk.bucket, ShardMsg::Chunk { chunk, bytes }))
            }
            // Everything else travels by datagram.
            _ => None,
        }
    }
}
