use std::cell::OnceCell;

use bytes::Bytes;

use super::cseq::CSeq;
use super::error::ParseError;
use super::hdrname::HdrName;
use super::header::{line_at, scan_headers, Header};
use super::lex::{for_each_comma, is_token, parse_u32, trim_lws, trimmed};
use super::method::Method;
use super::nameaddr::{Contacts, NameAddr, RawNameAddr};
use super::span::Span;
use super::uri::Uri;
use super::via::Via;

/// The first line of a message.
#[derive(Clone, Debug)]
pub enum StartLine {
    Request {
        method: Method,
        method_span: Span,
        uri_span: Span,
        version_span: Span,
    },
    Response {
        status: u16,
        reason_span: Span,
        version_span: Span,
    },
}

/// A parsed SIP message: the raw bytes, a header index, and lazily parsed typed values.
#[derive(Clone)]
pub struct SipMsg {
    raw: Bytes,
    start: StartLine,
    headers: Vec<Header>,
    first_hdr: u32,
    hdrs_end: u32,
    terminated: bool,
    body: Span,
    content_length: Option<u32>,
    cseq: OnceCell<Result<CSeq, ParseError>>,
    vias: OnceCell<Result<Vec<Via>, ParseError>>,
    from: OnceCell<Result<NameAddr, ParseError>>,
    to: OnceCell<Result<NameAddr, ParseError>>,
    ruri: OnceCell<Result<Uri, ParseError>>,
    contacts: OnceCell<Result<Contacts, ParseError>>,
    /// What validate's borrowing To check found (`to_has_tag`), while `to` is not built.
    to_tag_seen: OnceCell<Option<bool>>,
}

impl std::fmt::Debug for SipMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipMsg")
            .field("start", &self.start)
            .field("headers", &self.headers.len())
            .field("body", &self.body)
            .finish()
    }
}

fn parse_start_line(b: &[u8], s: usize, e: usize) -> Result<StartLine, ParseError> {
    let line = &b[s..e];
    // Trailing blanks are tolerated (RFC 4475 trws: a liberal receiver may accept).
    let mut le = line.len();
    while le > 0 && (line[le - 1] == b' ' || line[le - 1] == b'\t') {
        le -= 1;
    }
    let line = &line[..le];
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        let ve = memchr::memchr(b' ', line).unwrap_or(line.len());
        let mut i = ve;
        while i < line.len() && line[i] == b' ' {
            i += 1;
        }
        let ds = i;
        while i < line.len() && line[i].is_ascii_digit() {
            i += 1;
        }
        if i - ds != 3 || (i < line.len() && line[i] != b' ') {
            return Err(ParseError::StartLine("status code is not 3 digits"));
        }
        let status = parse_u32(&line[ds..i]).unwrap_or(0) as u16;
        let rs = (i + 1).min(line.len());
        return Ok(StartLine::Response {
            status,
            reason_span: Span::new(s + rs, s + line.len()),
            version_span: Span::new(s, s + ve),
        });
    }
    let me = line.iter().position(|&c| c == b' ').unwrap_or(line.len());
    if me == 0 || !line[..me].iter().all(|&c| is_token(c)) {
        return Err(ParseError::StartLine("bad method"));
    }
    // Several SPs between elements are tolerated (RFC 4475 lwsstart); SP inside the URI
    // still leaves a URI that fails to parse (lwsruri).
    let vs = match line.iter().rposition(|&c| c == b' ') {
        Some(p) if p > me => p + 1,
        _ => return Err(ParseError::StartLine("missing SIP version")),
    };
    let mut us = me;
    while us < vs && line[us] == b' ' {
        us += 1;
    }
    let mut ue = vs - 1;
    while ue > us && line[ue - 1] == b' ' {
        ue -= 1;
    }
    if ue <= us {
        return Err(ParseError::StartLine("missing Request-URI"));
    }
    Ok(StartLine::Request {
        method: Method::from_bytes(&line[..me]),
        method_span: Span::new(s, s + me),
        uri_span: Span::new(s + us, s + ue),
        version_span: Span::new(s + vs, s + line.len()),
    })
}

impl SipMsg {
    /// Parses one datagram (or one framed stream message).
    pub fn parse(raw: Bytes) -> Result<SipMsg, ParseError> {
        Self::parse_inner(raw, true)
    }

    /// Like `parse`, but a bad or conflicting Content-Length only empties the body instead of
    /// failing, so a 400 can still be built with `build_reply` for clerr/ncl/mcl01-style requests.
    pub fn parse_ignoring_body(raw: Bytes) -> Result<SipMsg, ParseError> {
        Self::parse_inner(raw, false)
    }

    fn parse_inner(raw: Bytes, strict_body: bool) -> Result<SipMsg, ParseError> {
        let b: &[u8] = &raw;
        if b.len() > u32::MAX as usize - 1 {
            return Err(ParseError::TooLarge);
        }
        let mut p = 0;
        while p < b.len() && (b[p] == b'\r' || b[p] == b'\n') {
            p += 1;
        }
        if p >= b.len() {
            return Err(ParseError::Empty);
        }
        let (le, next) = line_at(b, p);
        let start = parse_start_line(b, p, le)?;
        let is_req = matches!(start, StartLine::Request { .. });
        let mut headers = Vec::with_capacity(24);
        let mut cl: Option<u32> = None;
        let mut cl_err: Option<ParseError> = None;
        let end = scan_headers(b, next, |h| {
            if h.name == HdrName::ContentLength && cl_err.is_none() {
                match content_length_value(h.value_span.get(b)) {
                    Ok(v) => match cl {
                        Some(old) if old != v => {
                            cl_err = Some(ParseError::ContentLength("conflicting values"))
                        }
                        _ => cl = Some(v),
                    },
                    Err(e) => cl_err = Some(e),
                }
            }
            headers.push(h);
            Ok(())
        })
        .map_err(|e| e.in_msg(is_req))?;
        let avail = b.len() - end.body_start;
        let body = match (cl_err, cl) {
            (Some(e), _) if strict_body => return Err(e.in_msg(is_req)),
            (Some(_), _) => Span::new(end.body_start, end.body_start),
            (None, Some(n)) if n as usize > avail => {
                if strict_body {
                    return Err(ParseError::Truncated {
                        cl: n,
                        avail: avail as u32,
                    }
                    .in_msg(is_req));
                }
                Span::new(end.body_start, end.body_start)
            }
            (None, Some(n)) => Span::new(end.body_start, end.body_start + n as usize),
            (None, None) => Span::new(end.body_start, b.len()),
        };
        Ok(SipMsg {
            start,
            headers,
            first_hdr: next as u32,
            hdrs_end: end.headers_end as u32,
            terminated: end.terminated,
            body,
            content_length: cl,
            cseq: OnceCell::new(),
            vias: OnceCell::new(),
            from: OnceCell::new(),
            to: OnceCell::new(),
            ruri: OnceCell::new(),
            contacts: OnceCell::new(),
            to_tag_seen: OnceCell::new(),
            raw,
        })
    }

    /// The datagram as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// Bytes under a span (empty when out of range).
    pub fn slice(&self, s: Span) -> &[u8] {
        s.get(&self.raw)
    }

    /// The parsed first line.
    pub fn start(&self) -> &StartLine {
        &self.start
    }

    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// Request method, or the CSeq method of a reply.
    pub fn method(&self) -> Method {
        match &self.start {
            StartLine::Request { method, .. } => *method,
            StartLine::Response { .. } => self.cseq().map(|c| c.method).unwrap_or(Method::Other),
        }
    }

    /// Request-line method text, or the CSeq method text of a reply ("" if none).
    pub fn method_str(&self) -> &str {
        match &self.start {
            StartLine::Request { method_span, .. } => {
                std::str::from_utf8(self.slice(*method_span)).unwrap_or("")
            }
            StartLine::Response { .. } => self.cseq().map(|c| c.method_str.as_str()).unwrap_or(""),
        }
    }

    /// Raw Request-URI ("" for replies).
    pub fn ruri_bytes(&self) -> &[u8] {
        self.uri_span().map(|s| self.slice(s)).unwrap_or(&[])
    }

    /// Span of the Request-URI.
    pub fn uri_span(&self) -> Option<Span> {
        match &self.start {
            StartLine::Request { uri_span, .. } => Some(*uri_span),
            StartLine::Response { .. } => None,
        }
    }

    /// Reply status code.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// Reply reason phrase ("" for requests).
    pub fn reason(&self) -> &[u8] {
        match &self.start {
            StartLine::Response { reason_span, .. } => self.slice(*reason_span),
            StartLine::Request { .. } => &[],
        }
    }

    /// SIP-Version text of the first line.
    pub fn version(&self) -> &[u8] {
        match &self.start {
            StartLine::Response { version_span, .. } | StartLine::Request { version_span, .. } => {
                self.slice(*version_span)
            }
        }
    }

    /// All header fields in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// A header's trimmed value.
    pub fn value(&self, h: &Header) -> &[u8] {
        self.slice(h.value_span)
    }

    /// First header with this name.
    pub fn first(&self, n: HdrName) -> Option<&Header> {
        self.headers.iter().find(|h| h.name == n)
    }

    /// Every header with this name, in order.
    pub fn all(&self, n: HdrName) -> impl Iterator<Item = &Header> {
        self.headers.iter().filter(move |h| h.name == n)
    }

    /// Headers by textual name (compact forms match their long form; unknown names compare case-insensitively).
    pub fn find_by_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Header> {
        let n = HdrName::parse(name.as_bytes());
        self.headers.iter().filter(move |h| {
            h.name == n
                && (n != HdrName::Other
                    || self
                        .slice(h.name_span)
                        .eq_ignore_ascii_case(name.as_bytes()))
        })
    }

    /// Offset just after the start line's line ending.
    pub fn first_header_offset(&self) -> u32 {
        self.first_hdr
    }

    /// Offset of the empty line ending the header section (end of data when it is missing).
    pub fn headers_end(&self) -> u32 {
        self.hdrs_end
    }

    /// False when the datagram ended without the empty line after the headers (RFC 4475 baddn).
    pub fn headers_terminated(&self) -> bool {
        self.terminated
    }

    /// Span of the body (Content-Length bytes, or the rest of the datagram without one).
    pub fn body_span(&self) -> Span {
        self.body
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        self.slice(self.body)
    }

    /// First Call-ID value, trimmed (None if absent or not UTF-8).
    pub fn call_id(&self) -> Option<&str> {
        let h = self.first(HdrName::CallId)?;
        std::str::from_utf8(self.value(h)).ok()
    }

    fn single(&self, n: HdrName) -> Result<&Header, ParseError> {
        let mut it = self.all(n);
        let h = it
            .next()
            .ok_or_else(|| ParseError::Missing(n.canonical()))?;
        if it.next().is_some() {
            return Err(ParseError::Duplicate(n.canonical()));
        }
        Ok(h)
    }

    /// The CSeq header (exactly one required).
    pub fn cseq(&self) -> Result<&CSeq, ParseError> {
        let is_req = self.is_request();
        self.cseq
            .get_or_init(|| {
                {
                    let h = self.single(HdrName::CSeq)?;
                    CSeq::parse(self.value(h))
                }
                .map_err(|e| e.in_msg(is_req))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Every via-parm in order across all Via headers.
    pub fn vias(&self) -> Result<&[Via], ParseError> {
        let is_req = self.is_request();
        self.vias
            .get_or_init(|| {
                let mut out = Vec::new();
                for (idx, h) in self.headers.iter().enumerate() {
                    if h.name != HdrName::Via {
                        continue;
                    }
                    let v = self.value(h);
                    for_each_comma(v, |s, e| {
                        let (ts, te) = trim_lws(&v[s..e]);
                        let part = &v[s + ts..s + te];
                        let base = h.value_span.start as usize + s + ts;
                        out.push(Via::parse(part, idx, base).map_err(|e| e.in_msg(is_req))?);
                        Ok(())
                    })?;
                }
                Ok(out)
            })
            .as_ref()
            .map(|v| v.as_slice())
            .map_err(Clone::clone)
    }

    /// CSeq method text, checked like `cseq()` but without building the CSeq when not cached.
    pub(crate) fn cseq_method_checked(&self) -> Result<&[u8], ParseError> {
        if let Some(r) = self.cseq.get() {
            return r
                .as_ref()
                .map(|c| c.method_str.as_bytes())
                .map_err(Clone::clone);
        }
        let is_req = self.is_request();
        {
            let h = self.single(HdrName::CSeq)?;
            CSeq::scan(self.value(h)).map(|(_, m)| m)
        }
        .map_err(|e| e.in_msg(is_req))
    }

    fn scan_name_addr(&self, n: HdrName) -> Result<RawNameAddr<'_>, ParseError> {
        let h = self.single(n)?;
        NameAddr::scan(self.value(h)).map_err(|e| match e {
            ParseError::BadValue(_, why) => ParseError::BadValue(n.canonical(), why),
            e => e,
        })
    }

    /// Checks From/To exactly as `from_hdr()`/`to_hdr()` would, building nothing when not cached.
    pub(crate) fn check_name_addr(&self, n: HdrName) -> Result<(), ParseError> {
        let cell = if n == HdrName::From {
            &self.from
        } else {
            &self.to
        };
        if let Some(r) = cell.get() {
            return r.as_ref().map(|_| ()).map_err(Clone::clone);
        }
        let r = self.scan_name_addr(n);
        if n == HdrName::To {
            let _ = self
                .to_tag_seen
                .set(r.as_ref().ok().map(|r| r.tag.is_some()));
        }
        r.map(|_| ()).map_err(|e| e.in_msg(self.is_request()))
    }

    /// Whether `to_hdr()` parses and has a tag value: None when it would fail.
    pub(crate) fn to_has_tag(&self) -> Option<bool> {
        if let Some(r) = self.to.get() {
            return r.as_ref().ok().map(|to| to.tag().is_some());
        }
        *self.to_tag_seen.get_or_init(|| {
            self.scan_name_addr(HdrName::To)
                .ok()
                .map(|r| r.tag.is_some())
        })
    }

    /// Checks the Request-URI exactly as `ruri()` would, building nothing when not cached.
    pub(crate) fn check_ruri(&self) -> Result<(), ParseError> {
        match self.ruri.get() {
            Some(r) => r.as_ref().map(|_| ()).map_err(Clone::clone),
            None => match self.uri_span() {
                Some(s) => Uri::scan(self.slice(s)).map(|_| ()),
                None => Err(ParseError::NotRequest),
            },
        }
    }

    fn name_addr(&self, n: HdrName) -> Result<NameAddr, ParseError> {
        self.scan_name_addr(n).map(|r| r.build())
    }

    /// The From header (exactly one required).
    pub fn from_hdr(&self) -> Result<&NameAddr, ParseError> {
        let is_req = self.is_request();
        self.from
            .get_or_init(|| self.name_addr(HdrName::From).map_err(|e| e.in_msg(is_req)))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The To header (exactly one required).
    pub fn to_hdr(&self) -> Result<&NameAddr, ParseError> {
        let is_req = self.is_request();
        self.to
            .get_or_init(|| self.name_addr(HdrName::To).map_err(|e| e.in_msg(is_req)))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The parsed Request-URI (requests only).
    pub fn ruri(&self) -> Result<&Uri, ParseError> {
        self.ruri
            .get_or_init(|| match self.uri_span() {
                Some(s) => Uri::parse(self.slice(s)),
                None => Err(ParseError::NotRequest),
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// All Contact values, comma-split; `List(vec![])` when there is no Contact header.
    pub fn contacts(&self) -> Result<&Contacts, ParseError> {
        let is_req = self.is_request();
        self.contacts
            .get_or_init(|| self.parse_contacts().map_err(|e| e.in_msg(is_req)))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn parse_contacts(&self) -> Result<Contacts, ParseError> {
        let mut list = Vec::new();
        let mut star = false;
        let mut n = 0;
        for h in self.all(HdrName::Contact) {
            n += 1;
            let v = self.value(h);
            if v == b"*" {
                star = true;
                continue;
            }
            for_each_comma(v, |s, e| {
                let part = trimmed(&v[s..e]);
                if part.is_empty() {
                    return Err(ParseError::BadValue("Contact", "empty contact"));
                }
                list.push(NameAddr::parse(part).map_err(|e| match e {
                    ParseError::BadValue(_, why) => ParseError::BadValue("Contact", why),
                    e => e,
                })?);
                Ok(())
            })?;
        }
        if star {
            // RFC 3261 §10.2.2: "*" must be the only Contact value.
            if n > 1 || !list.is_empty() {
                return Err(ParseError::BadValue(
                    "Contact",
                    "'*' mixed with other contacts",
                ));
            }
            return Ok(Contacts::Star);
        }
        Ok(Contacts::List(list))
    }

    /// Max-Forwards: None when absent; values above 255 are treated as absent (RFC 4475 scalar02 note).
    pub fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
        let is_req = self.is_request();
        let mut it = self.all(HdrName::MaxForwards);
        let Some(h) = it.next() else { return Ok(None) };
        if it.next().is_some() {
            return Err(ParseError::Duplicate("Max-Forwards").in_msg(is_req));
        }
        let v = self.value(h);
        if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::BadValue("Max-Forwards", "not a number").in_msg(is_req));
        }
        Ok(parse_u32(v).filter(|&n| n <= 255))
    }

    /// Content-Length value when a (valid) header is present.
    pub fn content_length(&self) -> Option<u32> {
        self.content_length
    }
}

fn content_length_value(v: &[u8]) -> Result<u32, ParseError> {
    if v.first() == Some(&b'-') {
        return Err(ParseError::ContentLength("negative"));
    }
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::ContentLength("not a number"));
    }
    parse_u32(v).ok_or(ParseError::ContentLength("too large"))
}

pub(crate) fn content_length_of(v: &[u8]) -> Result<u32, ParseError> {
    content_length_value(v)
}
