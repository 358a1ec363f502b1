//! The protocol's node commands (IS_ALIVE, GET_PID, GET_MEMBERSHIP_COUNT,
//! SHUTDOWN, WIPEOUT): what each asks of the node. SHUTDOWN and WIPEOUT
//! from an address `--admin-allow` does not name are dropped without an
//! answer, as a firewall would; a retried WIPEOUT (its reply lost) is
//! answered again, not executed again.

use super::recent_ids::RecentIds;
use crate::node::admin_allow::AdminAllow;
use crate::protocol::wire::{ErrorCode, NodeCommand, Reply};
use crate::storage::hash::message_id_hash;
use std::net::SocketAddr;

/// What a node command asks of the node.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    Shutdown,
    /// Every shard empties its store and cache; the last one answers.
    Wipeout,
    /// Nothing, not even an answer.
    Drop,
}

/// The node commands one receiving loop takes.
pub struct NodeCommands {
    pid: i32,
    admin_allow: AdminAllow,
    /// The WIPEOUTs this loop executed lately (a client's retries come
    /// from one address and reach one socket).
    wipeout_ids: RecentIds,
}

impl NodeCommands {
    pub fn new(pid: i32, admin_allow: AdminAllow) -> NodeCommands {
        NodeCommands {
            pid,
            admin_allow,
            wipeout_ids: RecentIds::default(),
        }
    }

    /// What `command` with `message_id` from `from` asks, on a node that
    /// counts `members` members alive.
    pub fn action(&mut self, command: NodeCommand, message_id: &[u8], from: SocketAddr, members: usize) -> Action {
        match command {
            NodeCommand::IsAlive => Action::Reply(Reply::Code(ErrorCode::Success)),
            NodeCommand::GetPid => Action::Reply(Reply::Pid(self.pid)),
            NodeCommand::GetMembershipCount => {
                Action::Reply(Reply::MembershipCount(i32::try_from(members).unwrap_or(i32::MAX)))
            }
            NodeCommand::Shutdown | NodeCommand::Wipeout if !self.admin_allow.permits(from) => Action::Drop,
            NodeCommand::Shutdown => Action::Shutdown,
            NodeCommand::Wipeout if self.wipeout_ids.first_time(message_id_hash(message_id)) => Action::Wipeout,
            NodeCommand::Wipeout => Action::Reply(Reply::Code(ErrorCode::Success)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_questions_are_answered_from_the_nodes_facts() {
        let mut commands = NodeCommands::new(4242, AdminAllow::default());
        let from = addr("10.0.0.9:5");
        let ok = Action::Reply(Reply::Code(ErrorCode::Success));
        assert_eq!(commands.action(NodeCommand::IsAlive, b"a", from, 3), ok);
        assert_eq!(
            commands.action(NodeCommand::GetPid, b"b", from, 3),
            Action::Reply(Reply::Pid(4242))
        );
        let count = commands.action(NodeCommand::GetMembershipCount, b"c", from, 3);
        assert_eq!(count, Action::Reply(Reply::MembershipCount(3)));
    }

    #[test]
    fn shutdown_and_wipeout_from_an_address_not_allowed_are_dropped_unanswered() {
        let mut commands = NodeCommands::new(1, AdminAllow::parse("127.0.0.0/8").unwrap());
        let outsider = addr("10.0.0.9:5");
        assert_eq!(commands.action(NodeCommand::Shutdown, b"a", outsider, 1), Action::Drop);
        assert_eq!(commands.action(NodeCommand::Wipeout, b"b", outsider, 1), Action::Drop);
        let operator = addr("127.0.0.1:5");
        assert_eq!(
            commands.action(NodeCommand::Shutdown, b"c", operator, 1),
            Action::Shutdown
        );
        assert_eq!(
            commands.action(NodeCommand::Wipeout, b"d", operator, 1),
            Action::Wipeout
        );
        // Anyone may still ask whether it is alive.
        assert!(matches!(
            commands.action(NodeCommand::IsAlive, b"e", outsider, 1),
            Action::Reply(_)
        ));
    }

    #[test]
    fn a_retried_wipeout_is_answered_not_executed_again() {
        let mut commands = NodeCommands::new(1, AdminAllow::default());
        let from = addr("127.0.0.1:5");
        assert_eq!(
            commands.action(NodeCommand::Wipeout, b"first", from, 1),
            Action::Wipeout
        );
        let again = commands.action(NodeCommand::Wipeout, b"first", from, 1);
        assert_eq!(again, Action::Reply(Reply::Code(ErrorCode::Success)));
        assert_eq!(
            commands.action(NodeCommand::Wipeout, b"second", from, 1),
            Action::Wipeout
        );
    }
}
