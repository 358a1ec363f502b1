//! The node's UDP sockets: binding with large kernel buffers (several to
//! one port with `SO_REUSEPORT`, one per receiving loop), and the one way
//! every thread sends a datagram.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};

/// Kernel buffer size asked for, each way: a burst from 2048 clients of
/// ~1 KB requests must fit, or the kernel drops it before we see it.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Replies the kernel refused (its send buffer stayed full); the client
/// retries, so this is a counter, not an error.
pub static SEND_DROPS: AtomicU64 = AtomicU64::new(0);

/// Binds the node's socket, non-blocking, with large kernel buffers.
/// `shared` sets `SO_REUSEPORT` first, so that more sockets of this process
/// can bind the same address and the kernel spreads datagrams over them by
/// source and destination (one peer or client always lands on the same
/// socket). Left off with one receiving loop: then no other process of
/// the same user can join the port and take a share of its datagrams.
pub fn bind(addr: SocketAddr, shared: bool) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if shared {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    let socket = UdpSocket::from(socket);
    socket.set_nonblocking(true)?;
    set_buffer(&socket, libc::SO_RCVBUF, libc::SO_RCVBUFFORCE);
    set_buffer(&socket, libc::SO_SNDBUF, libc::SO_SNDBUFFORCE);
    Ok(socket)
}

/// Asks for [`SOCKET_BUFFER_BYTES`]; as root the FORCE variant passes the
/// `rmem_max` cap. Failure leaves the kernel default, which still works.
fn set_buffer(socket: &UdpSocket, option: libc::c_int, force_option: libc::c_int) {
    let bytes = SOCKET_BUFFER_BYTES as libc::c_int;
    for name in [force_option, option] {
        // SAFETY: a valid fd and a pointer to a c_int of the stated size.
        let result = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result == 0 {
            return;
        }
    }
}

/// Sends one datagram (a reply or a node message) from a non-blocking
/// socket. A full send buffer gets a few short waits; after that the
/// datagram is dropped and counted.
pub fn send_datagram(socket: &UdpSocket, datagram: &[u8], to: SocketAddr) {
    for _ in 0..4 {
        match socket.send_to(datagram, to) {
            Ok(_) => return,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => wait_writable(socket),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // ICMP-reported errors (an unreachable client) are not ours to handle.
            Err(_) => return,
        }
    }
    SEND_DROPS.fetch_add(1, Ordering::Relaxed);
}

/// Bytes of datagrams waiting in the socket's receive queue (kernel
/// accounting, about 1 KiB per small datagram), from SO_MEMINFO; 0 if the
/// kernel does not say.
pub fn queued_bytes(socket: &impl AsRawFd) -> usize {
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: a valid fd, and a buffer of `len` bytes the kernel fills.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if result != 0 {
        return 0;
    }
    info[libc::SK_MEMINFO_RMEM_ALLOC as usize] as usize
}

fn wait_writable(socket: &UdpSocket) {
    let mut poll_fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd; a 5 ms bound keeps the caller responsive.
    unsafe {
        libc::poll(&mut poll_fd, 1, 5);
    }
}
