//! The simulated network between nodes: which directed pairs are cut, how
//! often a datagram is lost or duplicated, and each stream between two
//! nodes: its generation (a break drops what is in flight on it) and when
//! its last frame arrives (a stream keeps its order).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub struct Network {
    nodes: usize,
    /// Per ordered pair of nodes (`from * nodes + to`).
    links: Vec<u64>,
    link_clear_us: Vec<u64>,
    cut: Vec<bool>,
    loss: f64,
    duplicate: f64,
}

impl Network {
    pub fn new(nodes: usize, loss: f64, duplicate: f64) -> Network {
        Network {
            nodes,
            links: vec![0; nodes * nodes],
            link_clear_us: vec![0; nodes * nodes],
            cut: vec![false; nodes * nodes],
            loss,
            duplicate,
        }
    }

    fn pair(&self, from: usize, to: usize) -> usize {
        from * self.nodes + to
    }

    /// Whether `from` cannot reach `to`.
    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        self.cut[self.pair(from, to)]
    }

    /// Whether `node` is cut from or to any other node.
    pub fn is_cut_off(&self, node: usize) -> bool {
        (0..self.nodes).any(|other| self.is_cut(node, other) || self.is_cut(other, node))
    }

    /// How many copies of a datagram arrive: 0 (lost), 1, or 2
    /// (duplicated). Draws the loss, then, unless lost, the duplication.
    pub fn copies(&self, rng: &mut ChaCha8Rng) -> usize {
        if self.lost(rng) {
            return 0;
        }
        if rng.random::<f64>() < self.duplicate { 2 } else { 1 }
    }

    /// Whether a datagram is lost (one draw).
    pub fn lost(&self, rng: &mut ChaCha8Rng) -> bool {
        rng.random::<f64>() < self.loss
    }

    /// The stream `from` -> `to` now: its generation.
    pub fn link(&self, from: usize, to: usize) -> u64 {
        self.links[self.pair(from, to)]
    }

    /// Frames that would arrive at `arrives_us` on the stream `from` ->
    /// `to`: when they do (never before the stream's last frames), and the
    /// stream's generation.
    pub fn carry(&mut self, from: usize, to: usize, arrives_us: u64) -> (u64, u64) {
        let pair = self.pair(from, to);
        let at = arrives_us.max(self.link_clear_us[pair]);
        self.link_clear_us[pair] = at;
        (at, self.links[pair])
    }

    /// Breaks the stream `from` -> `to`: what is in flight on it is lost.
    pub fn break_link(&mut self, from: usize, to: usize) {
        let pair = self.pair(from, to);
        self.links[pair] += 1;
    }

    /// Breaks every stream to and from `node` (it crashed).
    pub fn break_links_of(&mut self, node: usize) {
        for other in 0..self.nodes {
            self.break_link(node, other);
            self.break_link(other, node);
        }
    }

    /// Cuts the nodes in `cut` from the others: what they send
    /// (`outbound`), what they are sent (`inbound`), or both. Streams cut
    /// break.
    pub fn partition(&mut self, cut: &[usize], outbound: bool, inbound: bool) {
        for a in 0..self.nodes {
            for b in 0..self.nodes {
                let blocked = (outbound && cut.contains(&a) && !cut.contains(&b))
                    || (inbound && !cut.contains(&a) && cut.contains(&b));
                if blocked {
                    let pair = self.pair(a, b);
                    self.cut[pair] = true;
                    self.links[pair] += 1;
                }
            }
        }
    }

    pub fn end_partition(&mut self) {
        self.cut.fill(false);
    }

    /// Whole and clean: no cut, no loss, no duplicate.
    pub fn heal(&mut self) {
        self.end_partition();
        self.loss = 0.0;
        self.duplicate = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_partition_cuts_the_directions_asked_and_breaks_their_streams() {
        let mut network = Network::new(3, 0.0, 0.0);
        network.partition(&[0], true, false);
        assert!(network.is_cut(0, 1) && network.is_cut(0, 2));
        assert!(!network.is_cut(1, 0), "inbound stays open");
        assert_eq!((network.link(0, 1), network.link(1, 0)), (1, 0));
        assert!(network.is_cut_off(0) && network.is_cut_off(1));
        network.heal();
        assert!(!network.is_cut_off(0));
    }

    #[test]
    fn a_stream_keeps_its_order_and_a_break_starts_a_new_generation() {
        let mut network = Network::new(2, 0.0, 0.0);
        assert_eq!(network.carry(0, 1, 500), (500, 0));
        assert_eq!(
            network.carry(0, 1, 300),
            (500, 0),
            "never before the frames sent earlier"
        );
        network.break_links_of(1);
        assert_eq!(network.carry(0, 1, 700), (700, 1));
    }

    #[test]
    fn a_clean_network_delivers_one_copy_and_a_lossy_one_none() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(Network::new(2, 0.0, 0.0).copies(&mut rng), 1);
        assert_eq!(Network::new(2, 1.0, 0.0).copies(&mut rng), 0);
        assert_eq!(Network::new(2, 0.0, 1.0).copies(&mut rng), 2);
    }
}
