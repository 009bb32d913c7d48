//! UDP sockets: bound with std so the worker threads can read them directly (run to completion).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};

/// Bind a UDP socket with a large receive buffer, non-blocking (the workers poll it).
pub fn bind(addr: SocketAddr) -> std::io::Result<Arc<UdpSocket>> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Bursts at high rates overflow the default buffer long before the CPU is busy.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())
        .map_err(|e| std::io::Error::new(e.kind(), format!("udp:{addr}: {e}")))?;
    s.set_nonblocking(true)?;
    Ok(Arc::new(s.into()))
}
