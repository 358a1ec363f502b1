//! The universe: which nodes make up the cluster, as a versioned fact the
//! nodes agree on. It starts as the servers file (version 0) and changes
//! only by `dynakv ctl reload` or `decommission`, which sign a newer one
//! with the cluster secret; a node adopts a universe only if it is newer
//! than its own, and passes it on to peers that gossip an older one.
//!
//! A node is known by its name (`host:port`, as written in the servers
//! file), never by its line: its [`NodeId`] is a hash of the name, and the
//! only small number it has is its stamp id (the node bits of the stamps
//! it issues, which must differ between nodes), assigned once and kept by
//! every later universe. Reordering, inserting or removing lines changes
//! nothing for the nodes that stay.
//!
//! A member is *serving* (it takes its share of buckets) or *leaving*: it
//! takes no bucket, keeps serving what it holds until every bucket has its
//! full replica count on serving nodes, then exits.

pub use crate::cluster::servers::NAME_BYTES_MAX;
use crate::cluster::servers::NODES_MAX;
use crate::storage::hash::{fmix64, key_hash};

/// How a node is known in node messages: a hash of its name.
pub type NodeId = u64;

/// The id operators sign with (no node's: a universe refuses a name that
/// hashes to it).
pub const OPERATOR_ID: NodeId = u64::MAX;

/// Members a universe may list, serving and leaving: one per stamp id.
pub const MEMBERS_MAX: usize = 1 << 8;
const _: () = assert!(NODES_MAX <= MEMBERS_MAX);

/// A node's id.
pub fn node_id(name: &str) -> NodeId {
    key_hash(name.as_bytes())
}

/// One node of a universe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// The node bits of the stamps it issues.
    pub stamp_id: u8,
    /// Draining: it takes no bucket and exits once its data is elsewhere.
    pub leaving: bool,
}

/// Which universe a node holds: enough to tell two apart in gossip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UniverseTag {
    pub version: u64,
    /// Of the members, whatever their order (see [`Universe::hash`]).
    pub hash: u64,
}

impl UniverseTag {
    /// Whether a node holding `self` should adopt a universe tagged `other`.
    pub fn older_than(&self, other: &UniverseTag) -> bool {
        self.version < other.version
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Universe {
    /// Grows with every change; 0 is a servers file's.
    pub version: u64,
    pub members: Vec<Member>,
}

impl Universe {
    /// The universe of a servers file: version 0, stamp ids in line order
    /// (as every node reading the same file computes them).
    pub fn from_servers(names: &[String]) -> Universe {
        let members = (names.iter().enumerate())
            .map(|(line, name)| Member {
                name: name.clone(),
                stamp_id: line as u8,
                leaving: false,
            })
            .collect();
        Universe { version: 0, members }
    }

    /// A hash of the version and the members, the same whatever order
    /// they are listed in.
    pub fn hash(&self) -> u64 {
        let mut sum = fmix64(self.version ^ 0x756e_6976_6572_7365);
        for member in &self.members {
            let flags = u64::from(member.stamp_id) << 1 | u64::from(member.leaving);
            sum = sum.wrapping_add(fmix64(node_id(&member.name) ^ fmix64(flags + 1)));
        }
        fmix64(sum)
    }

    pub fn tag(&self) -> UniverseTag {
        UniverseTag {
            version: self.version,
            hash: self.hash(),
        }
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|member| member.name == name)
    }

    pub fn serving(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|member| !member.leaving)
    }

    pub fn serving_count(&self) -> usize {
        self.serving().count()
    }

    /// Whether this universe is one a node may hold: names well formed and
    /// distinct (by id too), stamp ids distinct, at least one serving
    /// member and at most [`NODES_MAX`].
    pub fn validate(&self) -> Result<(), String> {
        if self.members.len() > MEMBERS_MAX {
            return Err(format!("{} members, at most {MEMBERS_MAX}", self.members.len()));
        }
        let serving = self.serving_count();
        if serving == 0 || serving > NODES_MAX {
            return Err(format!("{serving} serving nodes: from 1 to {NODES_MAX} supported"));
        }
        let mut ids = std::collections::HashSet::new();
        let mut stamp_ids = [false; MEMBERS_MAX];
        for member in &self.members {
            let name = &member.name;
            let shaped = name.len() <= NAME_BYTES_MAX
                && name
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !shaped {
                return Err(format!("{name:?} is not host:port"));
            }
            let id = node_id(name);
            if id == OPERATOR_ID || !ids.insert(id) {
                return Err(format!("{name:?} is listed twice (or its id is taken)"));
            }
            if std::mem::replace(&mut stamp_ids[usize::from(member.stamp_id)], true) {
                return Err(format!("stamp id {} given twice", member.stamp_id));
            }
        }
        Ok(())
    }

    /// The universe after a reload with the servers file's `names`: the
    /// next version; nodes that stay keep their stamp ids; new ones take
    /// free ids (none used in this universe); serving nodes missing from
    /// `names` become leaving; leaving nodes in `names` serve again, and
    /// those not in it stay while `still_up` says they run (gone, they are
    /// dropped). Any number of serving nodes may leave at once: each
    /// hands every bucket it holds to the bucket's new replicas, and drops
    /// it only once they confirmed they hold its copy. Leaving fewer than
    /// `replicas` serving nodes is refused unless `force`: buckets would
    /// have fewer copies than the replica count, so fewer crashes than it
    /// promises would lose acknowledged writes.
    pub fn next(
        &self,
        names: &[String],
        replicas: usize,
        force: bool,
        still_up: &dyn Fn(&str) -> bool,
    ) -> Result<Universe, String> {
        let mut members = Vec::with_capacity(names.len());
        for name in names {
            if let Some(member) = self.member(name) {
                members.push(Member {
                    leaving: false,
                    ..member.clone()
                });
            }
        }
        let serving_after = members.len() + names.iter().filter(|name| self.member(name).is_none()).count();
        if serving_after < replicas.max(1) && !force {
            return Err(format!(
                "refusing to leave {serving_after} serving nodes with {replicas} replicas: every bucket would have \
                 fewer copies than the replica count, so fewer crashes than it promises could lose acknowledged \
                 writes; add nodes, or use --force to accept that"
            ));
        }
        for member in &self.members {
            let stays = names.contains(&member.name);
            if !stays && (!member.leaving || still_up(&member.name)) {
                members.push(Member {
                    leaving: true,
                    ..member.clone()
                });
            }
        }
        let taken = |id: u8, members: &[Member]| {
            members.iter().any(|m| m.stamp_id == id) || self.members.iter().any(|m| m.stamp_id == id)
        };
        for name in names.iter().filter(|name| self.member(name).is_none()) {
            let id = (0..=u8::MAX)
                .find(|&id| !taken(id, &members))
                .or_else(|| (0..=u8::MAX).find(|&id| members.iter().all(|m| m.stamp_id != id)))
                .ok_or_else(|| format!("no stamp id left for {name}: at most {MEMBERS_MAX} members"))?;
            members.push(Member {
                name: name.clone(),
                stamp_id: id,
                leaving: false,
            });
        }
        let next = Universe {
            version: self.version + 1,
            members,
        };
        next.validate()?;
        Ok(next)
    }

    /// The universe with `name` leaving (`dynakv ctl decommission`).
    pub fn without(&self, name: &str, replicas: usize, force: bool) -> Result<Universe, String> {
        if self.serving().all(|member| member.name != name) {
            return Err(format!("{name} is not a serving node of universe {}", self.version));
        }
        let names: Vec<String> = (self.serving())
            .filter(|member| member.name != name)
            .map(|member| member.name.clone())
            .collect();
        self.next(&names, replicas, force, &|_| true)
    }

    /// The binary form carried in node messages and kept in a data
    /// directory: version, count, then per member its stamp id, flags,
    /// name length and name.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10 + self.members.len() * 24);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.members.len() as u16).to_le_bytes());
        for member in &self.members {
            out.push(member.stamp_id);
            out.push(u8::from(member.leaving));
            out.push(member.name.len().min(NAME_BYTES_MAX) as u8);
            out.extend_from_slice(&member.name.as_bytes()[..member.name.len().min(NAME_BYTES_MAX)]);
        }
        out
    }

    /// Decodes [`Universe::encode`]'s bytes, all of them; `None` for
    /// anything else, or a universe no node may hold.
    pub fn decode(bytes: &[u8]) -> Option<Universe> {
        let mut r = bytes;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = r.split_at_checked(n)?;
            r = tail;
            Some(head)
        };
        let version = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let count = usize::from(u16::from_le_bytes(take(2)?.try_into().ok()?));
        if count > MEMBERS_MAX {
            return None;
        }
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let head = take(3)?;
            let (stamp_id, flags, len) = (head[0], head[1], usize::from(head[2]));
            if flags > 1 {
                return None;
            }
            let name = std::str::from_utf8(take(len)?).ok()?.to_string();
            members.push(Member {
                name,
                stamp_id,
                leaving: flags == 1,
            });
        }
        let universe = Universe { version, members };
        (r.is_empty() && universe.validate().is_ok()).then_some(universe)
    }

    /// For operators: `version N`, `hash H`, then `member NAME STAMP_ID
    /// serving|leaving` per member.
    pub fn to_text(&self) -> String {
        let mut text = format!("version {}\nhash {:016x}\n", self.version, self.hash());
        for member in &self.members {
            let state = if member.leaving { "leaving" } else { "serving" };
            text.push_str(&format!("member {} {} {state}\n", member.name, member.stamp_id));
        }
        text
    }

    /// Reads [`Universe::to_text`] back (other lines are skipped).
    pub fn from_text(text: &str) -> Option<Universe> {
        let mut version = None;
        let mut members = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["version", v] => version = v.parse().ok(),
                ["member", name, id, state] => members.push(Member {
                    name: name.to_string(),
                    stamp_id: id.parse().ok()?,
                    leaving: match *state {
                        "serving" => false,
                        "leaving" => true,
                        _ => return None,
                    },
                }),
                _ => {}
            }
        }
        let universe = Universe {
            version: version?,
            members,
        };
        universe.validate().ok()?;
        Some(universe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ports: &[u16]) -> Vec<String> {
        ports.iter().map(|p| format!("127.0.0.1:{p}")).collect()
    }

    fn none_up(_: &str) -> bool {
        false
    }

    #[test]
    fn a_servers_file_is_version_zero_with_stamp_ids_in_line_order() {
        let universe = Universe::from_servers(&names(&[4000, 4001, 4002]));
        assert_eq!(universe.version, 0);
        assert_eq!(
            universe.members.iter().map(|m| m.stamp_id).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert!(universe.validate().is_ok());
    }

    #[test]
    fn the_hash_ignores_order_and_sees_every_change() {
        let a = Universe::from_servers(&names(&[4000, 4001]));
        let mut reordered = a.clone();
        reordered.members.reverse();
        assert_eq!(a.hash(), reordered.hash());
        let mut leaving = a.clone();
        leaving.members[1].leaving = true;
        let mut renumbered = a.clone();
        renumbered.members[1].stamp_id = 9;
        let mut later = a.clone();
        later.version = 1;
        for other in [leaving, renumbered, later] {
            assert_ne!(a.hash(), other.hash(), "{other:?}");
        }
    }

    #[test]
    fn a_reload_keeps_the_stamp_ids_of_nodes_that_stay_whatever_the_order() {
        let v0 = Universe::from_servers(&names(&[4000, 4001, 4002, 4003, 4004]));
        // Lines reordered, one inserted in the middle, one appended.
        let file = names(&[4004, 4000, 4010, 4002, 4001, 4003, 4011]);
        let v1 = v0.next(&file, 3, false, &none_up).unwrap();
        assert_eq!(v1.version, 1);
        for member in &v0.members {
            assert_eq!(v1.member(&member.name).unwrap().stamp_id, member.stamp_id);
        }
        assert_eq!(v1.member("127.0.0.1:4010").unwrap().stamp_id, 5);
        assert_eq!(v1.member("127.0.0.1:4011").unwrap().stamp_id, 6);
        assert_eq!(v1.serving_count(), 7);
    }

    #[test]
    fn removed_nodes_leave_and_fewer_serving_than_replicas_is_refused_unless_forced() {
        let v0 = Universe::from_servers(&names(&[4000, 4001, 4002, 4003, 4004]));
        let v1 = v0.next(&names(&[4000, 4001, 4002, 4003]), 3, false, &none_up).unwrap();
        assert!(v1.member("127.0.0.1:4004").unwrap().leaving);
        assert_eq!(v1.serving_count(), 4);
        let all_replicas = v0.next(&names(&[4000, 4001, 4002]), 3, false, &none_up).unwrap();
        assert_eq!(all_replicas.members.iter().filter(|m| m.leaving).count(), 2);
        let error = v0.next(&names(&[4000, 4001]), 3, false, &none_up).unwrap_err();
        assert!(
            error.contains("refusing to leave 2 serving nodes with 3 replicas"),
            "{error}"
        );
        let forced = v0.next(&names(&[4000, 4001]), 3, true, &none_up).unwrap();
        assert_eq!(forced.members.iter().filter(|m| m.leaving).count(), 3);
        // A leaving node still up stays listed; one that is gone is dropped;
        // its stamp id is not given to a newcomer at once.
        let v2 = v1
            .next(&names(&[4000, 4001, 4002, 4003, 4009]), 3, false, &none_up)
            .unwrap();
        assert!(v2.member("127.0.0.1:4004").is_none());
        assert_ne!(v2.member("127.0.0.1:4009").unwrap().stamp_id, 4);
        let v2_up = v1.next(&names(&[4000, 4001, 4002, 4003]), 3, false, &|_| true).unwrap();
        assert!(v2_up.member("127.0.0.1:4004").unwrap().leaving);
        // Listed again, it serves again with its old stamp id.
        let back = v1
            .next(&names(&[4000, 4001, 4002, 4003, 4004]), 3, false, &none_up)
            .unwrap();
        assert_eq!(back.member("127.0.0.1:4004").unwrap(), &v0.members[4]);
    }

    #[test]
    fn decommission_is_a_reload_without_the_node() {
        let v0 = Universe::from_servers(&names(&[4000, 4001, 4002, 4003]));
        let v1 = v0.without("127.0.0.1:4001", 3, false).unwrap();
        assert!(v1.member("127.0.0.1:4001").unwrap().leaving);
        assert!(
            v1.without("127.0.0.1:4002", 3, false).is_err(),
            "two would serve, with 3 replicas"
        );
        assert!(v1.without("127.0.0.1:4002", 3, true).is_ok(), "unless forced");
        assert!(v1.without("127.0.0.1:4001", 3, false).is_err(), "already leaving");
        assert!(v1.without("127.0.0.1:4999", 3, false).is_err());
    }

    #[test]
    fn encode_and_text_round_trip_and_bad_bytes_are_refused() {
        let v0 = Universe::from_servers(&names(&[4000, 4001, 4002]));
        let v1 = v0.next(&names(&[4000, 4002, 4003]), 3, false, &none_up).unwrap();
        assert_eq!(Universe::decode(&v1.encode()), Some(v1.clone()));
        assert_eq!(Universe::from_text(&v1.to_text()), Some(v1.clone()));
        let bytes = v1.encode();
        for cut in 0..bytes.len() {
            assert_eq!(Universe::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut twice = v1.clone();
        twice.members.push(twice.members[0].clone());
        assert_eq!(Universe::decode(&twice.encode()), None);
        let mut same_id = v1.clone();
        same_id.members[1].stamp_id = same_id.members[0].stamp_id;
        assert_eq!(Universe::decode(&same_id.encode()), None);
        let mut all_leaving = v1;
        all_leaving.members.iter_mut().for_each(|m| m.leaving = true);
        assert_eq!(Universe::decode(&all_leaving.encode()), None);
    }
}
