//! The SDP side of nathelper: private addresses in `c=` lines (nat_uac_test 8 and 256) and
//! `fix_nated_sdp` (nathelper.c ki_fix_nated_sdp_ip, replace_sdp_ip, alter_mediaip).

use std::net::IpAddr;

use crate::script::ctx::RouteCtx;
use crate::sip::Span;

/// One address in an SDP line (`c=IN IP4 a`, `o=… IN IP4 a`, `a=rtcp:p IN IP4 a`).
#[derive(Debug, Clone, PartialEq)]
pub struct SdpAddr<'a> {
    /// The line kind: `b"c="`, `b"o="` or `b"a=rtcp"`.
    pub kind: &'static [u8],
    /// Offset of the `IP4`/`IP6` token in the body.
    pub family_at: usize,
    /// `true` for IP6.
    pub v6: bool,
    /// The address text and its offset in the body.
    pub addr: &'a str,
    /// Offset of the address in the body.
    pub at: usize,
    /// Before the first `m=` line (session level).
    pub session: bool,
}

/// Lines of the body with their offsets (CRLF or LF ends a line).
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= body.len() {
            return None;
        }
        let start = pos;
        let end = memchr::memchr(b'\n', &body[pos..])
            .map(|o| pos + o)
            .unwrap_or(body.len());
        pos = end + 1;
        let mut l = &body[start..end];
        if l.last() == Some(&b'\r') {
            l = &l[..l.len() - 1];
        }
        Some((start, l))
    })
}

/// Every address-carrying line of an SDP body, in order.
pub fn addrs(body: &[u8]) -> Vec<SdpAddr<'_>> {
    let mut out = Vec::new();
    let mut session = true;
    for (off, l) in lines(body) {
        if l.starts_with(b"m=") {
            session = false;
            continue;
        }
        let kind: &'static [u8] = if l.starts_with(b"c=") {
            b"c="
        } else if l.starts_with(b"o=") {
            b"o="
        } else if l.starts_with(b"a=rtcp:") {
            b"a=rtcp"
        } else {
            continue;
        };
        // The address is the token after "IP4"/"IP6" (nh_extract_mediaip).
        let mut toks = Vec::with_capacity(6);
        let mut i = kind.len();
        while i < l.len() {
            while i < l.len() && (l[i] == b' ' || l[i] == b'\t') {
                i += 1;
            }
            let s = i;
            while i < l.len() && l[i] != b' ' && l[i] != b'\t' {
                i += 1;
            }
            if s < i {
                toks.push((s, &l[s..i]));
            }
        }
        let Some(k) = toks.iter().position(|(_, t)| *t == b"IP4" || *t == b"IP6") else {
            continue;
        };
        let Some(&(at, a)) = toks.get(k + 1) else {
            continue;
        };
        let Ok(addr) = std::str::from_utf8(a) else {
            continue;
        };
        out.push(SdpAddr {
            kind,
            family_at: off + toks[k].0,
            v6: toks[k].1 == b"IP6",
            addr,
            at: off + at,
            session,
        });
    }
    out
}

fn is_null(a: &SdpAddr) -> bool {
    if a.v6 {
        a.addr.bytes().all(|c| c == b'0' || c == b':')
    } else {
        a.addr == "0.0.0.0"
    }
}

/// nat_uac_test 8: a private IPv4 address in a `c=` line that applies to a stream.
pub fn has_private_cline(body: &[u8], addr_mode: i64) -> bool {
    addrs(body).iter().filter(|a| a.kind == b"c=").any(|a| {
        !a.v6 && !is_null(a) && super::nets::is_private_text(a.addr, addr_mode) == Some(true)
    })
}

/// nat_uac_test 256: a session-level `c=` address that is not the source address.
pub fn cline_differs(body: &[u8], src: IpAddr) -> bool {
    addrs(body)
        .iter()
        .filter(|a| a.kind == b"c=" && a.session)
        .any(|a| a.addr.parse::<IpAddr>().map(|ip| ip != src).unwrap_or(true))
}

/// Flag bits of fix_nated_sdp.
mod level {
    pub const ADD_ADIRECTION: i64 = 0x01;
    pub const FIX_MEDIP: i64 = 0x02;
    pub const ADD_ANORTPPROXY: i64 = 0x04;
    pub const FIX_ORGIP: i64 = 0x08;
}

/// `fix_nated_sdp(level[, ip])`: 1 something changed, 2 nothing to change, -1 no body or a bad
/// address. The new address is `ip`, or the source address of the message.
pub fn fix_nated_sdp(ctx: &mut RouteCtx, lvl: i64, ip: Option<&str>) -> i64 {
    let Some(m) = ctx.msg.as_ref() else { return -1 };
    let body = m.body();
    let base = m.body_span().start as usize;
    if body.is_empty() {
        tracing::error!("fix_nated_sdp: the message has no body");
        return -1;
    }
    let new_ip: IpAddr = match ip.filter(|s| !s.is_empty()) {
        Some(s) => match s.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(ip) => ip,
            Err(_) => {
                tracing::error!(ip = s, "fix_nated_sdp_ip: not an IP address");
                return -1;
            }
        },
        None => ctx.ep.remote.ip(),
    };
    let new_txt = new_ip.to_string();
    let new_v6 = new_ip.is_ipv6();
    let p = ctx.core.nathelper.clone();
    let mut edits: Vec<(Span, Vec<u8>)> = Vec::new();
    let mut inserts: Vec<(usize, Vec<u8>)> = Vec::new();
    // Additions go before the body's final line break so the body stays well formed.
    let tail = base
        + if body.ends_with(b"\r\n") {
            body.len() - 2
        } else if body.ends_with(b"\n") {
            body.len() - 1
        } else {
            body.len()
        };
    if lvl & level::ADD_ADIRECTION != 0 {
        let starts: Vec<usize> = lines(body)
            .filter(|(_, l)| l.starts_with(b"m="))
            .map(|(o, _)| o)
            .collect();
        // Each media section ends where the next m= begins (before its line break), the last
        // one at the end of the body.
        for &s in starts.iter().skip(1) {
            let at = if s >= 2 && &body[s - 2..s] == b"\r\n" {
                s - 2
            } else {
                s - 1
            };
            inserts.push((base + at, b"\r\na=direction:active".to_vec()));
        }
        if !starts.is_empty() {
            inserts.push((tail, b"\r\na=direction:active".to_vec()));
        }
    }
    if lvl & level::ADD_ANORTPPROXY != 0 && !p.nortpproxy_str.is_empty() {
        inserts.push((tail, format!("\r\n{}", p.nortpproxy_str).into_bytes()));
    }
    let mut count = 0;
    if lvl & (level::FIX_MEDIP | level::FIX_ORGIP) != 0 {
        for a in addrs(body) {
            let wanted = a.kind == b"a=rtcp"
                || (a.kind == b"c=" && lvl & level::FIX_MEDIP != 0)
                || (a.kind == b"o=" && lvl & level::FIX_ORGIP != 0);
            if !wanted || is_null(&a) || a.addr == new_txt {
                continue;
            }
            if p.append_sdp_oldmediaip {
                let name = if a.v6 {
                    "a=oldmediaip6:"
                } else {
                    "a=oldmediaip:"
                };
                inserts.push((tail, format!("\r\n{name}{}", a.addr).into_bytes()));
            }
            edits.push((
                Span::new(base + a.at, base + a.at + a.addr.len()),
                new_txt.clone().into_bytes(),
            ));
            // Kamailio keeps IP4 even for an IPv6 source; the family must follow the address.
            if a.v6 != new_v6 {
                edits.push((
                    Span::new(base + a.family_at, base + a.family_at + 3),
                    if new_v6 {
                        b"IP6".to_vec()
                    } else {
                        b"IP4".to_vec()
                    },
                ));
            }
            count += 1;
        }
    }
    for (span, b) in edits {
        ctx.edits.replace(span, b);
    }
    for (at, b) in inserts {
        ctx.edits.insert(at as u32, b);
    }
    if count > 0 || lvl & (level::ADD_ADIRECTION | level::ADD_ANORTPPROXY) != 0 {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &[u8] = b"v=0\r\no=- 1 1 IN IP4 192.168.0.103\r\ns=-\r\nc=IN IP4 192.168.0.103\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4 192.168.0.103\r\nm=video 4002 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\n";

    #[test]
    fn addresses_are_found_with_their_level() {
        let a = addrs(SDP);
        let kinds: Vec<(&[u8], &str, bool)> =
            a.iter().map(|x| (x.kind, x.addr, x.session)).collect();
        assert_eq!(
            kinds,
            [
                (&b"o="[..], "192.168.0.103", true),
                (&b"c="[..], "192.168.0.103", true),
                (&b"a=rtcp"[..], "192.168.0.103", false),
                (&b"c="[..], "0.0.0.0", false)
            ]
        );
        assert_eq!(&SDP[a[1].at..a[1].at + a[1].addr.len()], b"192.168.0.103");
        assert!(has_private_cline(SDP, 1));
        assert!(cline_differs(SDP, "203.0.113.1".parse().unwrap()));
        assert!(!cline_differs(SDP, "192.168.0.103".parse().unwrap()));
        let public = b"v=0\r\nc=IN IP4 203.0.113.1\r\nm=audio 1 RTP/AVP 0\r\n";
        assert!(!has_private_cline(public, 1));
    }
}
