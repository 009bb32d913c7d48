use super::error::ParseError;
use super::hdrname::HdrName;
use super::header::line_at;
use super::lex::{token_end, trimmed};
use super::msg::content_length_of;

/// Largest header section accepted on a stream before the connection is given up.
pub const MAX_HEADER_SECTION: usize = 64 * 1024;
/// Largest Content-Length accepted on a stream; bigger values would pin buffers forever.
pub const MAX_STREAM_BODY: u32 = 16 * 1024 * 1024;

/// What the stream reader should do with its buffered bytes.
#[derive(Debug)]
pub enum Framing {
    /// Need more bytes.
    Need,
    /// Leading CRLF keep-alives to discard.
    Skip(usize),
    /// The first n bytes are one complete message.
    Message(usize),
    /// Unrecoverable: close the connection.
    Invalid(ParseError),
}

/// Offset of the first body byte, once the empty line ending the headers is buffered.
fn body_start(buf: &[u8]) -> Option<usize> {
    for lf in memchr::memchr_iter(b'\n', buf) {
        match buf.get(lf + 1..) {
            Some([b'\n', ..]) => return Some(lf + 2),
            Some([b'\r', b'\n', ..]) => return Some(lf + 3),
            _ => {}
        }
    }
    None
}

/// Content-Length framing for stream transports (a missing Content-Length means an empty body).
pub fn frame(buf: &[u8]) -> Framing {
    let lead = buf
        .iter()
        .take_while(|&&c| c == b'\r' || c == b'\n')
        .count();
    if lead > 0 {
        return Framing::Skip(lead);
    }
    if buf.is_empty() {
        return Framing::Need;
    }
    let Some(bs) = body_start(buf) else {
        if buf.len() > MAX_HEADER_SECTION {
            return Framing::Invalid(ParseError::TooLarge);
        }
        return Framing::Need;
    };
    if bs > MAX_HEADER_SECTION {
        return Framing::Invalid(ParseError::TooLarge);
    }
    let head = &buf[..bs];
    let (_, first) = line_at(head, 0);
    // Line-by-line rather than scan_headers: a malformed header elsewhere must not hide the
    // Content-Length, or the stream would lose sync; SipMsg::parse reports such errors later.
    let mut cl: Option<u32> = None;
    let mut pos = first;
    while pos < head.len() {
        let (mut le, mut next) = line_at(head, pos);
        if le == pos {
            break;
        }
        while next < head.len() && matches!(head[next], b' ' | b'\t') {
            (le, next) = line_at(head, next);
        }
        let line = &head[pos..le];
        let ne = token_end(line, 0);
        let mut c = ne;
        while c < line.len() && matches!(line[c], b' ' | b'\t') {
            c += 1;
        }
        if ne > 0
            && line.get(c) == Some(&b':')
            && HdrName::parse(&line[..ne]) == HdrName::ContentLength
        {
            let v = match content_length_of(trimmed(&line[c + 1..])) {
                Ok(v) => v,
                Err(e) => return Framing::Invalid(e),
            };
            if cl.is_some_and(|old| old != v) {
                return Framing::Invalid(ParseError::ContentLength("conflicting values"));
            }
            cl = Some(v);
        }
        pos = next;
    }
    let n = cl.unwrap_or(0);
    if n > MAX_STREAM_BODY {
        return Framing::Invalid(ParseError::ContentLength("too large for a stream"));
    }
    let total = bs + n as usize;
    if buf.len() >= total {
        Framing::Message(total)
    } else {
        Framing::Need
    }
}
