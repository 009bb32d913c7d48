use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use super::hdrname::HdrName;
use super::msg::SipMsg;
use super::span::Span;

/// Appends `b`, turning bare LF (folds in LF-only messages) into CRLF.
fn push_crlf(out: &mut Vec<u8>, b: &[u8]) {
    let mut rest = b;
    while let Some(i) = memchr::memchr(b'\n', rest) {
        if i > 0 && rest[i - 1] == b'\r' {
            out.extend_from_slice(&rest[..=i]);
        } else {
            out.extend_from_slice(&rest[..i]);
            out.extend_from_slice(b"\r\n");
        }
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// Appends `n` in decimal.
fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            for (k, o) in a.octets().into_iter().enumerate() {
                if k > 0 {
                    out.push(b'.');
                }
                push_num(out, o as u64);
            }
        }
        IpAddr::V6(a) => {
            let _ = write!(out, "{a}");
        }
    }
}

fn same_ip(host: &str, ip: IpAddr) -> bool {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    h.parse::<IpAddr>().is_ok_and(|a| a == ip)
}

fn contains_tag(v: &[u8]) -> bool {
    v.windows(4).any(|w| w.eq_ignore_ascii_case(b"tag="))
}

/// `Server:` line of local replies, as Kamailio's `kamailio (5.6.3 (x86_64/linux))`.
pub static SERVER_HEADER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "Server: ksrd ({} ({}/{}))\r\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
});

/// Builds a stateless reply to `req` (Kamailio sl semantics) and appends it to `out`.
#[allow(clippy::too_many_arguments)]
pub fn build_reply(
    req: &SipMsg,
    src: SocketAddr,
    code: u16,
    reason: &str,
    to_tag: &str,
    extra_headers: &[u8],
    body: &[u8],
    out: &mut Vec<u8>,
) {
    let raw: &[u8] = req.raw();
    // Roughly the copied headers plus what is added; saves regrowing `out` on the way.
    out.reserve(req.headers_end() as usize + extra_headers.len() + body.len() + 128);
    out.extend_from_slice(b"SIP/2.0 ");
    push_num(out, code as u64);
    out.push(b' ');
    // A reason with CR/LF would let the caller inject headers by accident.
    out.extend(reason.bytes().filter(|&c| c != b'\r' && c != b'\n'));
    out.extend_from_slice(b"\r\n");

    let top = req.vias().ok().and_then(|v| v.first());
    for (idx, h) in req.headers().iter().enumerate() {
        if h.name != HdrName::Via {
            continue;
        }
        let line = Span {
            start: h.line_span.start,
            end: h.value_span.end,
        };
        match top.filter(|t| t.header_index == idx) {
            Some(t) => {
                // RFC 3261 §18.2.1 + RFC 3581 §4: received when sent-by differs or rport was asked for.
                let rport = t
                    .rport_span
                    .filter(|s| s.start >= t.span.start && s.end <= t.span.end);
                let needs_received =
                    t.received().is_none() && (rport.is_some() || !same_ip(&t.host, src.ip()));
                let mut pos = line.start;
                if let Some(r) = rport {
                    push_crlf(
                        out,
                        Span {
                            start: pos,
                            end: r.start,
                        }
                        .get(raw),
                    );
                    out.extend_from_slice(b"rport=");
                    push_num(out, src.port() as u64);
                    pos = r.end;
                }
                push_crlf(
                    out,
                    Span {
                        start: pos,
                        end: t.span.end,
                    }
                    .get(raw),
                );
                if needs_received {
                    out.extend_from_slice(b";received=");
                    push_ip(out, src.ip());
                }
                push_crlf(
                    out,
                    Span {
                        start: t.span.end.max(pos),
                        end: line.end,
                    }
                    .get(raw),
                );
            }
            None => push_crlf(out, line.get(raw)),
        }
        out.extend_from_slice(b"\r\n");
    }
    for n in [HdrName::From, HdrName::To, HdrName::CallId, HdrName::CSeq] {
        let Some(h) = req.first(n) else { continue };
        push_crlf(
            out,
            Span {
                start: h.line_span.start,
                end: h.value_span.end,
            }
            .get(raw),
        );
        if n == HdrName::To && !to_tag.is_empty() {
            let has_tag = req
                .to_has_tag()
                .unwrap_or_else(|| contains_tag(req.value(h)));
            if !has_tag {
                out.extend_from_slice(b";tag=");
                out.extend_from_slice(to_tag.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(extra_headers);
    // Kamailio's server_signature (default on): local replies name the server.
    out.extend_from_slice(SERVER_HEADER.as_bytes());
    out.extend_from_slice(b"Content-Length: ");
    push_num(out, body.len() as u64);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}
