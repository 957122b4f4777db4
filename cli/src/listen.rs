//! The listening socket of `yoi serve` and `yoi runtime serve`.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel queues for `accept` before the server takes them
/// (capped by `net.core.somaxconn`). A burst of connections, whether a
/// flood or many browsers reconnecting at once, waits here rather than
/// having its SYNs dropped, which costs each client dropped a retransmission
/// a second later; the connection cap applies once they are accepted.
/// Tokio's `TcpListener::bind` listens with 128.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `address` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as
/// `TcpListener::bind` sets it, so a restarted server can bind at once).
pub fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// With tokio's 128, the connections past the queue's length would
    /// wait a second for the kernel to retry their SYN; all of these are
    /// queued at once, though nothing accepts them.
    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_queue() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = listener.local_addr().unwrap();
        let connects = (0..400).map(|_| {
            tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(address),
            )
        });
        let results = futures_util::future::join_all(connects).await;
        let queued = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(queued, 400);
        drop(listener);
    }
}
