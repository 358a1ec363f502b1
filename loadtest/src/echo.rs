//! A trivial UDP echo server: the machine's own ceiling for a request/reply
//! load, to report dynakv's throughput as a ratio to.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Binds `listen` and echoes every datagram back from `threads` threads
/// sharing the socket. Returns the bound address; the threads run until the
/// process exits.
pub fn start(listen: SocketAddr, threads: usize) -> io::Result<SocketAddr> {
    let socket = UdpSocket::bind(listen)?;
    let addr = socket.local_addr()?;
    for index in 0..threads.max(1) {
        let socket = socket.try_clone()?;
        std::thread::Builder::new()
            .name(format!("echo-{index}"))
            .spawn(move || {
                let mut buffer = vec![0u8; 65_536];
                loop {
                    if let Ok((len, from)) = socket.recv_from(&mut buffer) {
                        let _ = socket.send_to(&buffer[..len], from);
                    }
                }
            })?;
    }
    Ok(addr)
}
