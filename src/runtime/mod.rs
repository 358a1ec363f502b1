//! The process around a node's logic: the command line, sockets, threads
//! and the real clock.
//!
//! - [`config`]: command-line options; [`server`]: wires a node together.
//! - [`udp`]: socket setup and sending; [`transfer_thread`]: bucket streams over
//!   TCP; [`pause`]: telling a SIGSTOP from a slow tick.
//! - [`data_dir`]: the data directory on a file system: journal files, lock, identity.

pub mod cluster_thread;
pub mod config;
pub mod data_dir;
pub mod dynamodb;
pub mod event_loop;
pub mod io;
pub mod pause;
pub mod server;
pub mod transfer_thread;
pub mod udp;
pub mod worker_thread;
