//! A trivial UDP echo server: the machine's own ceiling for a request/reply
//! load, to report dynakv's throughput as a ratio to. With a batch size it
//! receives and sends with `recvmmsg`/`sendmmsg`, up to that many datagrams
//! per system call: the same load against both shows what batching system
//! calls can win on this kernel before anyone builds it into a node.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

/// Largest datagram a batched echo returns whole (the harness's requests
/// are at most ~1.1 KB); longer ones are cut.
const BATCH_SLOT_BYTES: usize = 2048;

/// Binds `listen` and echoes every datagram back from `threads` threads
/// sharing the socket, one datagram per system call, or `batch` if above
/// 1. Returns the bound address; the threads run until the process exits.
pub fn start(listen: SocketAddr, threads: usize, batch: usize) -> io::Result<SocketAddr> {
    let socket = UdpSocket::bind(listen)?;
    let addr = socket.local_addr()?;
    for index in 0..threads.max(1) {
        let socket = socket.try_clone()?;
        std::thread::Builder::new()
            .name(format!("echo-{index}"))
            .spawn(move || {
                if batch > 1 {
                    echo_batched(&socket, batch)
                } else {
                    echo_one_by_one(&socket)
                }
            })?;
    }
    Ok(addr)
}

fn echo_one_by_one(socket: &UdpSocket) -> ! {
    let mut buffer = vec![0u8; 65_536];
    loop {
        if let Ok((len, from)) = socket.recv_from(&mut buffer) {
            let _ = socket.send_to(&buffer[..len], from);
        }
    }
}

fn echo_batched(socket: &UdpSocket, batch: usize) -> ! {
    let mut buffers = vec![0u8; BATCH_SLOT_BYTES * batch];
    // SAFETY (both): plain C structs for which all-zero is a valid value.
    let mut addrs: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; batch];
    let mut iovecs: Vec<libc::iovec> = buffers
        .chunks_mut(BATCH_SLOT_BYTES)
        .map(|slot| libc::iovec {
            iov_base: slot.as_mut_ptr().cast(),
            iov_len: BATCH_SLOT_BYTES,
        })
        .collect();
    let mut headers: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; batch];
    for (i, header) in headers.iter_mut().enumerate() {
        header.msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
        header.msg_hdr.msg_iov = &mut iovecs[i];
        header.msg_hdr.msg_iovlen = 1;
    }
    let fd = socket.as_raw_fd();
    loop {
        for (header, iovec) in headers.iter_mut().zip(iovecs.iter_mut()) {
            header.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            iovec.iov_len = BATCH_SLOT_BYTES;
        }
        // SAFETY: `batch` headers, each pointing at its own address and
        // slot, all alive for the call; MSG_WAITFORONE blocks for the
        // first datagram only.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                batch as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        let Ok(received) = usize::try_from(received) else {
            continue;
        };
        for i in 0..received {
            iovecs[i].iov_len = headers[i].msg_len as usize;
        }
        // SAFETY: the first `received` headers, now holding each
        // datagram's length and its sender's address.
        unsafe {
            libc::sendmmsg(fd, headers.as_mut_ptr(), received as u32, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn both_echo_servers_return_every_datagram_whole_to_its_sender() {
        for batch in [1, 8] {
            let server = start("127.0.0.1:0".parse().unwrap(), 1, batch).unwrap();
            let clients: Vec<UdpSocket> = (0..3).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
            for (c, client) in clients.iter().enumerate() {
                client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                for i in 0..20u8 {
                    client
                        .send_to(&vec![c as u8 ^ i; 1 + usize::from(i) * 50], server)
                        .unwrap();
                }
            }
            for (c, client) in clients.iter().enumerate() {
                let mut buffer = [0u8; 4096];
                let mut seen: Vec<Vec<u8>> = (0..20)
                    .map(|_| client.recv(&mut buffer).map(|len| buffer[..len].to_vec()).unwrap())
                    .collect();
                seen.sort_by_key(Vec::len);
                let sent: Vec<Vec<u8>> = (0..20u8).map(|i| vec![c as u8 ^ i; 1 + usize::from(i) * 50]).collect();
                assert_eq!(seen, sent, "batch {batch}, client {c}");
            }
        }
    }
}
