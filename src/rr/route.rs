//! The Route set of a request as it sits in the raw message: one entry per URI with the spans
//! needed to remove entries (Kamailio parse_rr and the del_lump calls of rr/loose.c).

use crate::sip::{for_each_comma, Edits, HdrName, NameAddr, SipMsg, Span, Uri};

/// Why the Route headers could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A Route value is not a name-addr with a parsable URI.
    #[error("bad Route header value {0:?}")]
    Bad(String),
}

/// One Route URI.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    /// Index of its Route header in `SipMsg::headers()`.
    pub hdr: usize,
    /// The entry in the raw message (`<uri>;params`, without surrounding blanks or commas).
    pub span: Span,
    /// The URI as written.
    pub uri_text: String,
    /// The parsed URI.
    pub uri: Uri,
}

impl RouteEntry {
    /// The URI parameters as written, without the leading `;` (Kamailio `sip_uri.params`).
    pub fn params_raw(&self) -> &str {
        uri_params_raw(&self.uri_text)
    }
}

/// The URI parameters of a SIP URI as written: after the host part, before any `?headers`.
pub fn uri_params_raw(uri: &str) -> &str {
    // The user part may hold ';' (RFC 4475 semiuri); the first '@' ends it.
    let hostpart = uri.find('@').map_or(uri, |i| &uri[i + 1..]);
    let hostpart = hostpart.split('?').next().unwrap_or("");
    hostpart.find(';').map_or("", |i| &hostpart[i + 1..])
}

/// Every Route URI of a message, in order.
#[derive(Debug, Clone, Default)]
pub struct RouteSet {
    /// The entries, top first.
    pub entries: Vec<RouteEntry>,
}

impl RouteSet {
    /// Read all Route headers; comma-joined values become separate entries.
    pub fn parse(msg: &SipMsg) -> Result<RouteSet, RouteError> {
        let mut entries = Vec::new();
        for (idx, h) in msg.headers().iter().enumerate() {
            if h.name != HdrName::Route {
                continue;
            }
            let v = msg.value(h);
            for_each_comma(v, |s, e| {
                let part = &v[s..e];
                let ts = part
                    .iter()
                    .position(|c| !c.is_ascii_whitespace())
                    .unwrap_or(part.len());
                let te = part
                    .iter()
                    .rposition(|c| !c.is_ascii_whitespace())
                    .map_or(ts, |p| p + 1);
                let text = &part[ts..te];
                let bad = || RouteError::Bad(String::from_utf8_lossy(text).into_owned());
                if text.is_empty() {
                    return Err(bad());
                }
                // A bare addr-spec is all URI (Kamailio parse_nameaddr): its ';lr' is a URI
                // parameter, not a header parameter.
                let (uri_text, uri) = if text.contains(&b'<') {
                    let na = NameAddr::parse(text).map_err(|_| bad())?;
                    (na.uri_text, na.uri)
                } else {
                    let uri = Uri::parse(text).map_err(|_| bad())?;
                    (String::from_utf8_lossy(text).into_owned(), uri)
                };
                let start = h.value_span.start as usize + s + ts;
                entries.push(RouteEntry {
                    hdr: idx,
                    span: Span::new(start, start + text.len()),
                    uri_text,
                    uri,
                });
                Ok(())
            })?;
        }
        Ok(RouteSet { entries })
    }

    /// Number of Route URIs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the message has no Route.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Remove the first `n` URIs: a header that loses all its URIs goes whole, otherwise its
    /// value is cut up to the first URI that stays (as loose.c does with del_lump).
    pub fn remove_first(&self, msg: &SipMsg, n: usize, edits: &mut Edits) {
        let n = n.min(self.entries.len());
        let mut last_hdr = None;
        for e in &self.entries[..n] {
            if last_hdr == Some(e.hdr) {
                continue;
            }
            last_hdr = Some(e.hdr);
            let Some(h) = msg.headers().get(e.hdr) else {
                continue;
            };
            match self.entries[n..].iter().find(|x| x.hdr == e.hdr) {
                Some(keep) => edits.delete(Span {
                    start: h.value_span.start,
                    end: keep.span.start,
                }),
                None => edits.delete(h.line_span),
            }
        }
    }

    /// Remove the last URI: from the end of the one before it in the same header, or the whole
    /// header when it is alone there (loose.c after_strict).
    pub fn remove_last(&self, msg: &SipMsg, edits: &mut Edits) {
        let Some(last) = self.entries.last() else {
            return;
        };
        let prev = self
            .entries
            .len()
            .checked_sub(2)
            .and_then(|i| self.entries.get(i))
            .filter(|p| p.hdr == last.hdr);
        match prev {
            Some(p) => edits.delete(Span {
                start: p.span.end,
                end: last.span.end,
            }),
            None => {
                if let Some(h) = msg.headers().get(last.hdr) {
                    edits.delete(h.line_span);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(routes: &str) -> SipMsg {
        let raw = format!(
            "BYE sip:b@10.0.0.9 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.8;branch=z9hG4bK1\r\n{routes}From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        );
        SipMsg::parse(Bytes::from(raw)).unwrap()
    }

    fn apply(m: &SipMsg, e: &Edits) -> String {
        let mut out = Vec::new();
        e.apply(m.raw(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn entries_across_headers_and_commas() {
        let m =
            msg("Route: <sip:1.1.1.1;lr;ftag=x>, <sip:2.2.2.2;lr>\r\nRoute: sip:3.3.3.3;lr\r\n");
        let rs = RouteSet::parse(&m).unwrap();
        assert_eq!(rs.len(), 3);
        assert_eq!(rs.entries[0].uri.host, "1.1.1.1");
        assert_eq!(rs.entries[0].params_raw(), "lr;ftag=x");
        assert_eq!(rs.entries[1].hdr, rs.entries[0].hdr);
        assert_eq!(
            rs.entries[2].params_raw(),
            "lr",
            "bare addr-spec keeps ;lr in the URI"
        );
        assert_eq!(m.slice(rs.entries[1].span), b"<sip:2.2.2.2;lr>");
    }

    #[test]
    fn bad_route_is_an_error() {
        let m = msg("Route: <sip:1.1.1.1;lr>, <>\r\n");
        assert!(RouteSet::parse(&m).is_err());
    }

    #[test]
    fn remove_first_cuts_inside_a_header_or_drops_it() {
        let m = msg("Route: <sip:1.1.1.1;lr>, <sip:2.2.2.2;lr>\r\nRoute: <sip:3.3.3.3;lr>\r\n");
        let rs = RouteSet::parse(&m).unwrap();
        let mut e = Edits::default();
        rs.remove_first(&m, 1, &mut e);
        let out = apply(&m, &e);
        assert!(
            out.contains("Route: <sip:2.2.2.2;lr>\r\nRoute: <sip:3.3.3.3;lr>\r\n"),
            "{out}"
        );
        let mut e = Edits::default();
        rs.remove_first(&m, 2, &mut e);
        let out = apply(&m, &e);
        assert!(
            !out.contains("2.2.2.2") && out.contains("Route: <sip:3.3.3.3;lr>\r\n"),
            "{out}"
        );
    }

    #[test]
    fn remove_last_keeps_the_others() {
        let m = msg("Route: <sip:1.1.1.1;lr>, <sip:2.2.2.2>\r\n");
        let rs = RouteSet::parse(&m).unwrap();
        let mut e = Edits::default();
        rs.remove_last(&m, &mut e);
        let out = apply(&m, &e);
        assert!(out.contains("Route: <sip:1.1.1.1;lr>\r\n"), "{out}");
    }

    #[test]
    fn params_raw_ignores_user_semicolons_and_headers() {
        assert_eq!(uri_params_raw("sip:a;b@h;lr;x=1?h=v"), "lr;x=1");
        assert_eq!(uri_params_raw("sip:h"), "");
    }
}
