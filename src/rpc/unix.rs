//! JSON-RPC over a unix stream socket: a stream of JSON documents in, one
//! newline-terminated response document per non-notification document out.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, warn};

use crate::rpc::registry::{error_response, parse_error_response, INVALID_REQUEST};
use crate::rpc::Registry;

/// Largest single request document; same bound as the HTTP body limit.
const MAX_DOC: usize = 1 << 20;

/// Serve over a unix stream socket: each JSON document (object or batch) gets one JSON
/// document followed by "\n"; documents are read until EOF; a parse error answers -32700 and closes.
pub async fn serve_unix(listener: UnixListener, reg: Arc<Registry>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let reg = Arc::clone(&reg);
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, &reg).await {
                        debug!(error = %e, "rpc unix connection closed with error");
                    }
                });
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning on the error.
                warn!(error = %e, "rpc unix accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Outcome of trying to take one document off the front of the buffer.
enum Next {
    /// A complete document and the number of bytes it used.
    Doc(Value, usize),
    /// Only whitespace or an incomplete document so far.
    NeedMore,
    Invalid,
}

fn next_doc(buf: &[u8]) -> Next {
    let mut docs = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    match docs.next() {
        Some(Ok(v)) => Next::Doc(v, docs.byte_offset()),
        Some(Err(e)) if e.is_eof() => Next::NeedMore,
        Some(Err(_)) => Next::Invalid,
        None => Next::NeedMore,
    }
}

async fn connection(mut stream: UnixStream, reg: &Registry) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut eof = false;
    loop {
        match next_doc(&buf) {
            Next::Doc(doc, used) => {
                buf.drain(..used);
                if let Some(mut out) = reg.handle_doc(doc).await {
                    out.push(b'\n');
                    stream.write_all(&out).await?;
                }
                continue;
            }
            Next::Invalid => {
                warn!("rpc unix request is not valid JSON");
                return reply_and_close(&mut stream, parse_error_response()).await;
            }
            Next::NeedMore if eof => {
                // Trailing whitespace is a clean end; anything else was cut short.
                if buf.iter().all(u8::is_ascii_whitespace) {
                    return Ok(());
                }
                warn!("rpc unix request truncated by EOF");
                return reply_and_close(&mut stream, parse_error_response()).await;
            }
            Next::NeedMore if buf.len() > MAX_DOC => {
                warn!(size = buf.len(), "rpc unix request too large");
                return reply_and_close(
                    &mut stream,
                    error_response(INVALID_REQUEST, "Request too large"),
                )
                .await;
            }
            Next::NeedMore => {}
        }
        // Re-parsing from the start of the buffer on every read is quadratic in
        // the worst case, but documents are small and bounded by MAX_DOC.
        if stream.read_buf(&mut buf).await? == 0 {
            eof = true;
        }
    }
}

async fn reply_and_close(stream: &mut UnixStream, mut out: Vec<u8>) -> io::Result<()> {
    out.push(b'\n');
    stream.write_all(&out).await?;
    stream.shutdown().await
}
