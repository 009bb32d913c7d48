//! Sockets: UDP (read by the run-to-completion workers) and TCP (tokio), behind one `send` API.

pub mod tcp;
pub mod udp;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A SIP transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl Proto {
    /// Lower-case name as in `$pr` and listen specs.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
    /// Upper-case name as in a Via header.
    pub fn via_str(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
        }
    }
    /// Parse a transport name (case-insensitive); `None` for ones ksrd does not speak.
    pub fn parse(s: &str) -> Option<Proto> {
        if s.eq_ignore_ascii_case("udp") {
            Some(Proto::Udp)
        } else if s.eq_ignore_ascii_case("tcp") {
            Some(Proto::Tcp)
        } else {
            None
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `proto:ip:port` listen spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr {
    /// Transport.
    pub proto: Proto,
    /// Local address.
    pub addr: SocketAddr,
}

impl ListenAddr {
    /// Parse `udp:127.0.0.1:5060`, `tcp:[::1]:5060` or `127.0.0.1` (udp, port 5060).
    pub fn parse(s: &str) -> Result<ListenAddr, String> {
        let s = s.trim();
        let (proto, rest) = match s.split_once(':') {
            Some((p, r)) if !p.contains('[') && p.chars().all(|c| c.is_ascii_alphabetic()) => (
                Proto::parse(p).ok_or_else(|| {
                    format!("unsupported transport {p:?} in {s:?} (udp and tcp are supported)")
                })?,
                r,
            ),
            _ => (Proto::Udp, s),
        };
        let addr = if let Ok(a) = rest.parse::<SocketAddr>() {
            a
        } else if let Ok(ip) = rest
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            SocketAddr::new(ip, 5060)
        } else {
            return Err(format!("{s:?} is not proto:ip:port"));
        };
        Ok(ListenAddr { proto, addr })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.proto, self.addr)
    }
}

/// Where a message came from / goes to, and over which local socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Transport.
    pub proto: Proto,
    /// Remote address.
    pub remote: SocketAddr,
    /// Local socket address it arrived on (or is sent from).
    pub local: SocketAddr,
}

/// A message received on a stream transport, handed to a worker.
pub struct Inbound {
    /// The framed message bytes.
    pub data: bytes::Bytes,
    /// Addresses.
    pub ep: Endpoint,
}

/// Error from sending.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No local socket for that protocol/family.
    #[error("no {0} socket to send from")]
    NoSocket(Proto),
    /// Socket error.
    #[error("send to {0} failed: {1}")]
    Io(SocketAddr, std::io::Error),
    /// The TCP layer is gone (shutdown).
    #[error("tcp layer unavailable")]
    TcpDown,
}

/// Sends bytes on any transport; cheap to clone and usable from any thread.
#[derive(Clone)]
pub struct Sender {
    /// UDP sockets with their bound addresses (looked up once: no getsockname per send).
    udp: Arc<Vec<(SocketAddr, Arc<std::net::UdpSocket>)>>,
    tcp: tcp::TcpHandle,
}

impl Sender {
    /// Build from the bound UDP sockets and the TCP layer handle.
    pub fn new(udp: Vec<Arc<std::net::UdpSocket>>, tcp: tcp::TcpHandle) -> Self {
        let udp = udp
            .into_iter()
            .filter_map(|s| Some((s.local_addr().ok()?, s)))
            .collect();
        Sender {
            udp: Arc::new(udp),
            tcp,
        }
    }

    /// Pick the UDP socket bound to `local` (or one of the same address family).
    fn udp_for(
        &self,
        local: Option<SocketAddr>,
        dest: SocketAddr,
    ) -> Option<&(SocketAddr, Arc<std::net::UdpSocket>)> {
        if let Some(l) = local {
            if let Some(s) = self.udp.iter().find(|(a, _)| *a == l) {
                return Some(s);
            }
        }
        // A socket on a loopback address cannot reach other hosts (EINVAL), and one on a
        // public address should not talk to loopback: prefer the same kind, then the family.
        let family = |a: &SocketAddr| a.is_ipv4() == dest.is_ipv4();
        let reaches = |a: &SocketAddr| {
            a.ip().is_unspecified() || a.ip().is_loopback() == dest.ip().is_loopback()
        };
        self.udp
            .iter()
            .find(|(a, _)| family(a) && reaches(a))
            .or_else(|| self.udp.iter().find(|(a, _)| family(a)))
    }

    /// Local address used to reach `dest` over `proto` (for our Via).
    pub fn local_for(&self, proto: Proto, dest: SocketAddr) -> Option<SocketAddr> {
        match proto {
            Proto::Udp => self.udp_for(None, dest).map(|(a, _)| *a),
            Proto::Tcp => self.tcp.listen_addr(dest.is_ipv4()),
        }
    }

    /// Send one message. `local` selects the socket when known (replies go out where the request came in).
    pub fn send(
        &self,
        proto: Proto,
        dest: SocketAddr,
        local: Option<SocketAddr>,
        data: &[u8],
    ) -> Result<(), SendError> {
        match proto {
            Proto::Udp => {
                let (_, s) = self
                    .udp_for(local, dest)
                    .ok_or(SendError::NoSocket(proto))?;
                s.send_to(data, dest)
                    .map(|_| ())
                    .map_err(|e| SendError::Io(dest, e))
            }
            Proto::Tcp => self.tcp.send(dest, bytes::Bytes::copy_from_slice(data)),
        }
    }
}
