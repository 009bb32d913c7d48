use super::error::ParseError;
use super::lex::{
    find_param, lossy, owned_param, parse_port, scan_params, skip_lws, token_end, Params,
};
use super::span::Span;

/// One via-parm.
#[derive(Clone, Debug)]
pub struct Via {
    /// Index into `SipMsg::headers()` of the Via header holding this value.
    pub header_index: usize,
    /// This via-parm only (trimmed).
    pub span: Span,
    /// Normalised "name/version", e.g. "SIP/2.0".
    pub protocol: String,
    /// Upper-cased transport, e.g. "UDP".
    pub transport: String,
    /// Sent-by host; IPv6 keeps its brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
    /// Span of a valueless `rport`, so a reply can fill it in place.
    pub(crate) rport_span: Option<Span>,
}

fn err(why: &'static str) -> ParseError {
    ParseError::BadValue("Via", why)
}

/// Returns the end of a host (`[v6]` or hostname) starting at `i`.
pub(crate) fn host_end(b: &[u8], i: usize) -> Result<usize, &'static str> {
    if b.get(i) == Some(&b'[') {
        let close = b[i..]
            .iter()
            .position(|&c| c == b']')
            .ok_or("unterminated IPv6 reference")?
            + i;
        let inner = &b[i + 1..close];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        {
            return Err("bad IPv6 reference");
        }
        return Ok(close + 1);
    }
    let mut e = i;
    while e < b.len() && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'-' | b'.' | b'_')) {
        e += 1;
    }
    if e == i {
        return Err("empty host");
    }
    Ok(e)
}

impl Via {
    /// Parses one trimmed via-parm; `base` is its offset in the raw message.
    pub(crate) fn parse(v: &[u8], header_index: usize, base: usize) -> Result<Via, ParseError> {
        if v.is_empty() {
            return Err(err("empty via-parm"));
        }
        // sent-protocol = name LWS "/" LWS version LWS "/" LWS transport (RFC 4475 wsinv folds here)
        let mut parts = [(0usize, 0usize); 3];
        let mut i = 0;
        for (k, part) in parts.iter_mut().enumerate() {
            if k > 0 {
                i = skip_lws(v, i);
                if v.get(i) != Some(&b'/') {
                    return Err(err("bad sent-protocol"));
                }
                i += 1;
            }
            i = skip_lws(v, i);
            let e = token_end(v, i);
            if e == i {
                return Err(err("bad sent-protocol"));
            }
            *part = (i, e);
            i = e;
        }
        let hs = skip_lws(v, i);
        if hs == i {
            return Err(err("missing sent-by"));
        }
        let he = host_end(v, hs).map_err(err)?;
        let mut i = he;
        let mut port = None;
        let j = skip_lws(v, i);
        if v.get(j) == Some(&b':') {
            let ps = skip_lws(v, j + 1);
            let mut pe = ps;
            while pe < v.len() && v[pe].is_ascii_digit() {
                pe += 1;
            }
            port = Some(parse_port(&v[ps..pe]).ok_or_else(|| err("bad port"))?);
            i = pe;
        }
        let mut params = Vec::new();
        let mut rport_span = None;
        let end = scan_params(v, i, |p| {
            if rport_span.is_none()
                && p.value.is_none()
                && v[p.name_start..p.name_end].eq_ignore_ascii_case(b"rport")
            {
                rport_span = Some(Span::new(base + p.name_start, base + p.end));
            }
            params.push(owned_param(v, &p));
        })
        .map_err(err)?;
        if skip_lws(v, end) != v.len() {
            return Err(err("unexpected characters"));
        }
        let (a, b) = parts[0];
        let (c, d) = parts[1];
        let (e, f) = parts[2];
        let mut protocol = String::with_capacity(b - a + 1 + d - c);
        protocol.push_str(&String::from_utf8_lossy(&v[a..b]));
        protocol.push('/');
        protocol.push_str(&String::from_utf8_lossy(&v[c..d]));
        let mut transport = lossy(&v[e..f]);
        transport.make_ascii_uppercase();
        Ok(Via {
            header_index,
            span: Span::new(base, base + v.len()),
            protocol,
            transport,
            host: lossy(&v[hs..he]),
            port,
            params,
            rport_span,
        })
    }

    /// The branch parameter value.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// The received parameter value.
    pub fn received(&self) -> Option<&str> {
        self.param("received").flatten()
    }

    /// `Some(None)` for a bare "rport", `Some(Some(p))` for "rport=p"; an unparsable value counts as bare.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport").map(|v| v.and_then(|s| s.parse().ok()))
    }

    /// Parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }
}
