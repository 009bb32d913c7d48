use super::error::ParseError;
use super::hdrname::HdrName;
use super::lex::{is_lws, is_token};
use super::span::Span;

/// One header field as it sits in the raw message (comma-joined values stay together).
#[derive(Clone, Debug)]
pub struct Header {
    pub name: HdrName,
    pub name_span: Span,
    /// Value trimmed of surrounding LWS; may contain folded line breaks inside.
    pub value_span: Span,
    /// Whole header including continuation lines and the final CRLF/LF.
    pub line_span: Span,
}

/// `(content_end, next_line_start)` for the line starting at `p`; CRLF and bare LF both end a line,
/// and the end of the data ends the last line.
#[inline]
pub(crate) fn line_at(b: &[u8], p: usize) -> (usize, usize) {
    match memchr::memchr(b'\n', b.get(p..).unwrap_or(&[])) {
        Some(off) => {
            let lf = p + off;
            let end = if lf > p && b[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            (end, lf + 1)
        }
        None => {
            let end = if b.len() > p && b[b.len() - 1] == b'\r' {
                b.len() - 1
            } else {
                b.len()
            };
            (end.max(p), b.len())
        }
    }
}

/// Where the header section ended.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SectionEnd {
    /// Offset of the empty line (or end of data when it is missing).
    pub headers_end: usize,
    /// First body byte.
    pub body_start: usize,
    /// False when the data ended before an empty line.
    pub terminated: bool,
}

/// Walks header lines from `pos` to the empty line, calling `f` for each header.
/// Shared by the datagram parser and the stream framer so both agree on line syntax.
pub(crate) fn scan_headers(
    b: &[u8],
    mut pos: usize,
    mut f: impl FnMut(Header) -> Result<(), ParseError>,
) -> Result<SectionEnd, ParseError> {
    loop {
        if pos >= b.len() {
            return Ok(SectionEnd {
                headers_end: b.len(),
                body_start: b.len(),
                terminated: false,
            });
        }
        let (le, nx) = line_at(b, pos);
        if le == pos {
            return Ok(SectionEnd {
                headers_end: pos,
                body_start: nx,
                terminated: true,
            });
        }
        if b[pos] == b' ' || b[pos] == b'\t' {
            return Err(ParseError::HeaderLine(
                pos as u32,
                "continuation line without a header",
            ));
        }
        let mut content_end = le;
        let mut next = nx;
        while next < b.len() && (b[next] == b' ' || b[next] == b'\t') {
            let (le2, nx2) = line_at(b, next);
            content_end = le2;
            next = nx2;
        }
        let mut ne = pos;
        while ne < content_end && is_token(b[ne]) {
            ne += 1;
        }
        if ne == pos {
            return Err(ParseError::HeaderLine(pos as u32, "bad header name"));
        }
        let mut c = ne;
        while c < content_end && (b[c] == b' ' || b[c] == b'\t') {
            c += 1;
        }
        if c >= content_end || b[c] != b':' {
            return Err(ParseError::HeaderLine(pos as u32, "missing colon"));
        }
        let mut vs = c + 1;
        while vs < content_end && is_lws(b[vs]) {
            vs += 1;
        }
        let mut ve = content_end;
        while ve > vs && is_lws(b[ve - 1]) {
            ve -= 1;
        }
        f(Header {
            name: HdrName::parse(&b[pos..ne]),
            name_span: Span::new(pos, ne),
            value_span: Span::new(vs, ve),
            line_span: Span::new(pos, next),
        })?;
        pos = next;
    }
}
