//! TCP: tokio listeners and connections with Content-Length framing; framed messages go to the workers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{Endpoint, Inbound, Proto, SendError};
use crate::sip::{frame, Framing};

/// Connections idle this long are closed (Kamailio's `tcp_connection_lifetime` default).
const IDLE: Duration = Duration::from_secs(120);
/// A message larger than this on a stream is a framing error.
const MAX_MSG: usize = 256 * 1024;

/// Where framed inbound messages are delivered (the worker queue).
pub type Deliver = Arc<dyn Fn(Inbound) + Send + Sync>;

struct Inner {
    rt: tokio::runtime::Handle,
    conns: Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Bytes>>>,
    listen: Vec<SocketAddr>,
    deliver: Deliver,
}

/// Handle to the TCP layer: send to an address (reusing or opening a connection).
#[derive(Clone)]
pub struct TcpHandle(Option<Arc<Inner>>);

impl TcpHandle {
    /// A handle for a configuration without TCP.
    pub fn disabled() -> Self {
        TcpHandle(None)
    }

    /// Our TCP listen address of the given family (used in Via when sending over TCP).
    pub fn listen_addr(&self, v4: bool) -> Option<SocketAddr> {
        self.0
            .as_ref()?
            .listen
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == v4)
    }

    /// Queue bytes for `dest`, opening a connection when none exists.
    pub fn send(&self, dest: SocketAddr, data: Bytes) -> Result<(), SendError> {
        let inner = self.0.as_ref().ok_or(SendError::NoSocket(Proto::Tcp))?;
        let mut conns = inner.conns.lock();
        if let Some(tx) = conns.get(&dest) {
            if tx.send(data.clone()).is_ok() {
                return Ok(());
            }
            conns.remove(&dest);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(data).map_err(|_| SendError::TcpDown)?;
        conns.insert(dest, tx);
        drop(conns);
        let inner2 = inner.clone();
        inner.rt.spawn(async move {
            match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(dest)).await {
                Ok(Ok(stream)) => run_conn(inner2, stream, dest, rx).await,
                Ok(Err(e)) => {
                    tracing::warn!(%dest, error = %e, "tcp connect failed");
                    inner2.conns.lock().remove(&dest);
                }
                Err(_) => {
                    tracing::warn!(%dest, "tcp connect timed out");
                    inner2.conns.lock().remove(&dest);
                }
            }
        });
        Ok(())
    }
}

/// Bind the TCP listeners and start accepting; must be called inside the tokio runtime.
pub async fn start(addrs: &[SocketAddr], deliver: Deliver) -> std::io::Result<TcpHandle> {
    if addrs.is_empty() {
        return Ok(TcpHandle::disabled());
    }
    let mut listeners = Vec::new();
    for a in addrs {
        let l = TcpListener::bind(a)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("tcp:{a}: {e}")))?;
        listeners.push(l);
    }
    let inner = Arc::new(Inner {
        rt: tokio::runtime::Handle::current(),
        conns: Mutex::new(HashMap::new()),
        listen: listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect(),
        deliver,
    });
    for l in listeners {
        let inner = inner.clone();
        tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let (tx, rx) = mpsc::unbounded_channel();
                        inner.conns.lock().insert(peer, tx);
                        tokio::spawn(run_conn(inner.clone(), stream, peer, rx));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "tcp accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }
    Ok(TcpHandle(Some(inner)))
}

async fn run_conn(
    inner: Arc<Inner>,
    stream: TcpStream,
    peer: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
) {
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if let Err(e) = wr.write_all(&b).await {
                tracing::debug!(%peer, error = %e, "tcp write failed");
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let ep = Endpoint {
        proto: Proto::Tcp,
        remote: peer,
        local,
    };
    let mut buf = BytesMut::with_capacity(8192);
    'conn: loop {
        let n = match tokio::time::timeout(IDLE, rd.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "tcp read failed");
                break;
            }
        };
        let _ = n;
        loop {
            match frame(&buf) {
                Framing::Need => {
                    if buf.len() > MAX_MSG {
                        tracing::warn!(%peer, "tcp message too large; closing");
                        break 'conn;
                    }
                    break;
                }
                Framing::Skip(k) => {
                    let _ = buf.split_to(k.min(buf.len()));
                }
                Framing::Message(k) => {
                    let data = buf.split_to(k.min(buf.len())).freeze();
                    (inner.deliver)(Inbound { data, ep });
                }
                Framing::Invalid(e) => {
                    tracing::warn!(%peer, error = %e, "tcp framing error; closing connection");
                    break 'conn;
                }
            }
        }
    }
    inner.conns.lock().remove(&peer);
    writer.abort();
}
