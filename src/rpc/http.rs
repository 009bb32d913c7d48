//! Minimal HTTP/1.1 transport for JSON-RPC: POST with a Content-Length body,
//! keep-alive, no chunked bodies. Enough for curl, kamcli and kamctl.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tracing::{debug, warn};

use crate::rpc::Registry;

/// Largest accepted request body.
const MAX_BODY: usize = 1 << 20;
/// Largest accepted request line plus headers.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 100;
/// How long an idle keep-alive connection (or a slow client) may hold a task.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to drain an abandoned request before closing (see `lingering_close`).
const LINGER: Duration = Duration::from_secs(2);

/// Serve JSON-RPC over HTTP/1.1 (POST any path — Kamailio setups use /RPC — with
/// Content-Length bodies; keep-alive; GET -> 405; bad request -> 400; body > 1 MiB -> 413).
pub async fn serve_http(listener: TcpListener, reg: Arc<Registry>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let reg = Arc::clone(&reg);
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, &reg).await {
                        debug!(%peer, error = %e, "rpc http connection closed with error");
                    }
                });
            }
            Err(e) => {
                // Typically EMFILE: back off instead of spinning on the error.
                warn!(error = %e, "rpc http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// What we need from a request head.
struct Head {
    method: String,
    content_length: Option<usize>,
    chunked: bool,
    keep_alive: bool,
    http11: bool,
    expect_continue: bool,
}

enum HeadError {
    Io(io::Error),
    Bad(&'static str),
}

impl From<io::Error> for HeadError {
    fn from(e: io::Error) -> Self {
        HeadError::Io(e)
    }
}

async fn connection(stream: TcpStream, reg: &Registry) -> io::Result<()> {
    // Responses are written in one piece, so Nagle would only add latency.
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    loop {
        let head = match timeout(IO_TIMEOUT, read_head(&mut rd)).await {
            Err(_) | Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(h))) => h,
            Ok(Err(HeadError::Io(e))) => return Err(e),
            Ok(Err(HeadError::Bad(why))) => {
                debug!(why, "rpc http bad request");
                return reject(&mut rd, &mut wr, 400, why).await;
            }
        };
        if head.method != "POST" {
            return reject(&mut rd, &mut wr, 405, "only POST is supported").await;
        }
        if head.chunked {
            return reject(&mut rd, &mut wr, 501, "chunked bodies are not supported").await;
        }
        let Some(len) = head.content_length else {
            return reject(&mut rd, &mut wr, 411, "Content-Length required").await;
        };
        if len > MAX_BODY {
            return reject(&mut rd, &mut wr, 413, "request body larger than 1 MiB").await;
        }
        if head.expect_continue {
            // curl waits for this before sending bodies over 1 KiB.
            wr.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        let mut body = vec![0u8; len];
        match timeout(IO_TIMEOUT, rd.read_exact(&mut body)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };

        // HTTP/1.0 clients only keep the connection if told explicitly.
        let extra = if head.keep_alive && !head.http11 {
            "Connection: keep-alive\r\n"
        } else {
            ""
        };
        let response = match reg.handle(&body).await {
            Some(json) => response_bytes(200, "application/json", &json, head.keep_alive, extra),
            None => response_bytes(204, "", &[], head.keep_alive, extra),
        };
        wr.write_all(&response).await?;
        if !head.keep_alive {
            return wr.shutdown().await;
        }
    }
}

/// Read the request line and headers; Ok(None) on a clean EOF between requests.
async fn read_head<R: AsyncBufRead + Unpin>(rd: &mut R) -> Result<Option<Head>, HeadError> {
    let mut budget = MAX_HEAD;
    let mut line = Vec::new();

    // RFC 9112 §2.2: ignore empty lines before the request line.
    let request_line = loop {
        if !read_line(rd, &mut line, &mut budget).await? {
            return Ok(None);
        }
        if !line.is_empty() {
            break std::str::from_utf8(&line)
                .map_err(|_| HeadError::Bad("request line is not UTF-8"))?
                .to_owned();
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(_target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Bad("malformed request line"));
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(HeadError::Bad("unsupported HTTP version")),
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(HeadError::Bad("malformed method"));
    }
    let mut head = Head {
        method: method.to_owned(),
        content_length: None,
        chunked: false,
        keep_alive: http11,
        http11,
        expect_continue: false,
    };

    for _ in 0..=MAX_HEADERS {
        if !read_line(rd, &mut line, &mut budget).await? {
            return Err(HeadError::Bad("connection closed inside headers"));
        }
        if line.is_empty() {
            return Ok(Some(head));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(HeadError::Bad("obsolete header folding"));
        }
        let text = std::str::from_utf8(&line).map_err(|_| HeadError::Bad("header is not UTF-8"))?;
        let (name, value) = text
            .split_once(':')
            .ok_or(HeadError::Bad("header without colon"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(HeadError::Bad("bad Content-Length"))?;
            // Differing duplicates are a request-smuggling vector (RFC 9112 §6.3).
            if head.content_length.is_some_and(|old| old != n) {
                return Err(HeadError::Bad("conflicting Content-Length"));
            }
            head.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") && value.eq_ignore_ascii_case("100-continue")
        {
            head.expect_continue = http11;
        }
    }
    Err(HeadError::Bad("too many headers"))
}

/// Read one line (without its CRLF/LF) into `line`, charging it to `budget`.
/// Returns false on EOF before any byte.
async fn read_line<R: AsyncBufRead + Unpin>(
    rd: &mut R,
    line: &mut Vec<u8>,
    budget: &mut usize,
) -> Result<bool, HeadError> {
    line.clear();
    let n = (&mut *rd)
        .take(*budget as u64)
        .read_until(b'\n', line)
        .await?;
    *budget -= n;
    if n == 0 {
        return if *budget == 0 {
            Err(HeadError::Bad("request head too large"))
        } else {
            Ok(false)
        };
    }
    if line.last() != Some(&b'\n') {
        return Err(HeadError::Bad(if *budget == 0 {
            "request head too large"
        } else {
            "connection closed inside headers"
        }));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(true)
}

/// Send an error status and close the connection.
async fn reject<R, W>(rd: &mut R, wr: &mut W, status: u16, why: &str) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut extra = String::new();
    if status == 405 {
        extra.push_str("Allow: POST\r\n");
    }
    let body = format!("{why}\n");
    let mut out = status_head(status, "text/plain", body.len(), false, &extra);
    out.extend_from_slice(body.as_bytes());
    wr.write_all(&out).await?;
    lingering_close(rd, wr).await
}

/// Closing a socket with unread input makes the kernel send RST, which can
/// destroy the error response before the client reads it. So: half-close,
/// then briefly discard whatever the client is still sending.
async fn lingering_close<R, W>(rd: &mut R, wr: &mut W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    wr.shutdown().await?;
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut left = 4 * MAX_BODY;
        while left > 0 {
            match rd.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = timeout(LINGER, drain).await;
    Ok(())
}

fn response_bytes(
    status: u16,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
    extra: &str,
) -> Vec<u8> {
    let mut out = status_head(status, content_type, body.len(), keep_alive, extra);
    out.extend_from_slice(body);
    out
}

fn status_head(
    status: u16,
    content_type: &str,
    len: usize,
    keep_alive: bool,
    extra: &str,
) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        501 => "Not Implemented",
        _ => "Error",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    // RFC 9110 §8.6: a 204 carries neither a body nor Content-Length.
    if status != 204 {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {len}\r\n"
        ));
    }
    head.push_str(extra);
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}
