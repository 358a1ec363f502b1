//! Transfer frames that reach a node over its streams (bucket pulls,
//! chunks, and the digest of a bucket handed off): used only once signed,
//! meant for this node, in range and new, then turned into work for the
//! shard of their bucket.

use crate::cluster::freshness::Freshness;
use crate::cluster::internal::{self, Internal};
use crate::node::context::NodeContext;
use crate::node::counters::Reject;
use crate::node::messages::ShardMsg;
use crate::node::roster::SLOTS_MAX;
use crate::storage::hash::BucketId;
use std::sync::Arc;

/// What one node knows of the frames it has been sent.
pub struct StreamFrames {
    ctx: Arc<NodeContext>,
    freshness: Freshness,
}

impl StreamFrames {
    pub fn new(ctx: Arc<NodeContext>) -> StreamFrames {
        StreamFrames {
            ctx,
            freshness: Freshness::new(SLOTS_MAX),
        }
    }

    /// The work one whole frame asks for, and the bucket whose shard does
    /// it; `None` (counted) for what is refused, or is not stream work.
    pub fn accept(&mut self, frame: &[u8]) -> Option<(BucketId, ShardMsg)> {
        let bounds = self.ctx.bounds();
        let (envelope, message) = match internal::decode(&self.ctx.secret, self.ctx.self_id, &bounds, frame) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.ctx.count_rejected(error);
                return None;
            }
        };
        // A node of this node's roster (a transfer may come from a node
        // that has just left the universe: its hand-off is still data).
        let Some(sender) = self.ctx.roster.slot_of(envelope.sender) else {
            self.ctx.counters.count_rejected(Reject::UnknownSender);
            return None;
        };
        if self
            .freshness
            .admit(Some(sender), &envelope, bounds.now_unix_ms)
            .is_err()
        {
            self.ctx.counters.count_rejected(Reject::Stale);
            return None;
        }
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
            // A bucket handed off: offered by its digest, one bucket a frame.
            Internal::Digests { digests } if digests.len() == 1 => {
                let bucket = digests[0].bucket;
                Some((bucket, ShardMsg::Digests { from: sender, digests }))
            }
            // Everything else travels by datagram.
            _ => None,
        }
    }
}
