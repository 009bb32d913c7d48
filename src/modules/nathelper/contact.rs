//! Contact and R-URI rewriting for NAT (nathelper.c: fix_nated_contact, *_contact_alias,
//! add_rcv_param, handle_ruri_alias, set_alias_to_pv; core dset.c uri_add_rcv_alias).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::script::ctx::RouteCtx;
use crate::sip::{HdrName, SipMsg, Span, Uri};
use crate::transport::Proto;

/// Kamailio's protocol number in `;alias=ip~port~proto` (PROTO_UDP = 1, PROTO_TCP = 2, …).
pub fn proto_num(p: Proto) -> u8 {
    match p {
        Proto::Udp => 1,
        Proto::Tcp => 2,
    }
}

/// Transport name of a Kamailio protocol number (`None` for unknown numbers).
pub fn proto_name(n: u8) -> Option<&'static str> {
    Some(match n {
        1 => "udp",
        2 => "tcp",
        3 => "tls",
        4 => "sctp",
        5 => "ws",
        6 => "wss",
        _ => return None,
    })
}

/// Kamailio's number for a transport name (add_contact_alias_addr's proto argument).
fn proto_by_name(s: &str) -> Option<u8> {
    (1..=6).find(|n| proto_name(*n).is_some_and(|p| p.eq_ignore_ascii_case(s)))
}

/// An IP as it goes into a URI host: IPv6 in brackets.
pub fn uri_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// `sip:ip:port[;transport=x]` for where the message came from (core get_src_uri).
pub fn src_uri(src: SocketAddr, proto: Proto) -> String {
    let mut s = format!("sip:{}:{}", uri_host(src.ip()), src.port());
    if proto != Proto::Udp {
        let _ = write!(s, ";transport={}", proto.as_str());
    }
    s
}

/// The first Contact URI of a message, located in the raw bytes (get_contact_uri).
pub struct ContactUri {
    /// Bytes of the URI text (inside `<>` when bracketed).
    pub span: Span,
    /// The URI is enclosed in `<>`.
    pub bracketed: bool,
    /// The URI text: the route's rewrite of it when there is one, else the message's.
    pub text: String,
    /// The parsed URI.
    pub uri: Uri,
}

/// Why there is no Contact URI; the numbers are get_contact_uri's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoContact {
    /// Unparseable Contact (-1).
    Bad,
    /// No Contact header (-2).
    Missing,
    /// `Contact: *` (-3).
    Star,
}

impl NoContact {
    /// get_contact_uri's return code.
    pub fn code(self) -> i64 {
        match self {
            NoContact::Bad => -1,
            NoContact::Missing => -2,
            NoContact::Star => -3,
        }
    }
}

/// Find the first Contact URI: `<` outside a quoted display name opens a bracketed URI; an
/// unbracketed one ends at `;`, `,` or white space (its parameters are header parameters).
pub fn locate(m: &SipMsg, rewritten: Option<&str>) -> Result<ContactUri, NoContact> {
    let h = m.first(HdrName::Contact).ok_or(NoContact::Missing)?;
    let base = h.value_span.start as usize;
    let v = m.value(h);
    let mut i = 0;
    while i < v.len() && v[i].is_ascii_whitespace() {
        i += 1;
    }
    if v.get(i) == Some(&b'*') {
        return Err(NoContact::Star);
    }
    let (start, end, bracketed) = {
        let mut in_quote = false;
        let mut lt = None;
        let mut j = i;
        while j < v.len() {
            match v[j] {
                b'\\' if in_quote => j += 1,
                b'"' => in_quote = !in_quote,
                b'<' if !in_quote => {
                    lt = Some(j);
                    break;
                }
                b',' | b';' if !in_quote => break,
                _ => {}
            }
            j += 1;
        }
        match lt {
            Some(lt) => {
                let gt = memchr::memchr(b'>', &v[lt..])
                    .map(|o| lt + o)
                    .ok_or(NoContact::Bad)?;
                (lt + 1, gt, true)
            }
            None => {
                let end = v[i..]
                    .iter()
                    .position(|c| matches!(c, b';' | b',' | b' ' | b'\t' | b'\r' | b'\n'))
                    .map(|o| i + o)
                    .unwrap_or(v.len());
                (i, end, false)
            }
        }
    };
    let span = Span::new(base + start, base + end);
    let text = match rewritten {
        Some(t) => t.to_string(),
        None => std::str::from_utf8(&v[start..end])
            .map_err(|_| NoContact::Bad)?
            .to_string(),
    };
    let uri = Uri::parse(text.as_bytes()).map_err(|_| NoContact::Bad)?;
    if uri.host.is_empty() {
        return Err(NoContact::Bad);
    }
    Ok(ContactUri {
        span,
        bracketed,
        text,
        uri,
    })
}

/// Byte range of `host[:port]` inside a SIP URI's text.
fn hostport_range(t: &str) -> Option<(usize, usize)> {
    let colon = t.find(':')?;
    let rest_end = t[colon + 1..]
        .find([';', '?'])
        .map(|o| colon + 1 + o)
        .unwrap_or(t.len());
    let start = match t[colon + 1..rest_end].rfind('@') {
        Some(at) => colon + 1 + at + 1,
        None => colon + 1,
    };
    Some((start, rest_end))
}

/// Where the URI's parameters end (before `?headers`).
fn params_end(t: &str) -> usize {
    t.find('?').unwrap_or(t.len())
}

/// The `;alias=` text for an address (core dset.c uri_add_rcv_alias).
fn alias_param(name: &str, host: &str, port: u16, proto: u8) -> String {
    format!(";{name}={host}~{port}~{proto}")
}

/// Record a new text for the first Contact URI: the message gets it when it leaves and the
/// registrar stores it (Kamailio's nathelper points the parsed contact at the new text).
fn rewrite(ctx: &mut RouteCtx, c: &ContactUri, new_uri: &str, add_brackets: bool) {
    let text = if add_brackets && !c.bracketed {
        format!("<{new_uri}>")
    } else {
        new_uri.to_string()
    };
    ctx.edits.replace(c.span, text.into_bytes());
    ctx.nat.contact_uri = Some(new_uri.to_string());
}

/// Kamailio refuses a second rewrite of the Contact in one route ("you can't call … twice").
fn already_rewritten(ctx: &RouteCtx, what: &str) -> bool {
    if ctx.nat.contact_uri.is_some() {
        tracing::error!("nathelper: you can't call {what} twice, check your route");
        return true;
    }
    false
}

fn contact_of(ctx: &RouteCtx) -> Result<ContactUri, NoContact> {
    let m = ctx.msg.as_ref().ok_or(NoContact::Bad)?;
    locate(m, ctx.nat.contact_uri.as_deref())
}

/// `fix_nated_contact()`: the Contact's host:port become the source address; `maddr` goes.
pub fn fix_nated_contact(ctx: &mut RouteCtx) -> i64 {
    let Ok(c) = contact_of(ctx) else { return -1 };
    if already_rewritten(ctx, "fix_nated_contact") {
        return -1;
    }
    let Some((hs, he)) = hostport_range(&c.text) else {
        return -1;
    };
    let src = ctx.ep.remote;
    let mut t = String::with_capacity(c.text.len() + 24);
    t.push_str(&c.text[..hs]);
    let _ = write!(t, "{}:{}", uri_host(src.ip()), src.port());
    let tail = &c.text[he..];
    // nathelper.c drops maddr: it would point the request away from the NAT binding.
    for part in split_params(tail) {
        if !part
            .trim_start_matches(';')
            .to_ascii_lowercase()
            .starts_with("maddr=")
        {
            t.push_str(part);
        }
    }
    rewrite(ctx, &c, &t, false);
    1
}

/// `;a;b?h` → [";a", ";b", "?h"].
fn split_params(tail: &str) -> Vec<&str> {
    let (params, headers) = tail.split_at(params_end(tail));
    let mut out: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, ch) in params.char_indices() {
        if ch == ';' && i > start {
            out.push(&params[start..i]);
            start = i;
        }
    }
    if start < params.len() {
        out.push(&params[start..]);
    }
    if !headers.is_empty() {
        out.push(headers);
    }
    out
}

/// Remove every `;<alias_name>=…` parameter (core uri_trim_rcv_alias).
fn trim_alias(text: &str, name: &str) -> (String, bool) {
    let Some((_, he)) = hostport_range(text) else {
        return (text.to_string(), false);
    };
    let prefix = format!(";{name}=");
    let mut out = text[..he].to_string();
    let mut trimmed = false;
    for part in split_params(&text[he..]) {
        if part.len() >= prefix.len() && part[..prefix.len()].eq_ignore_ascii_case(&prefix) {
            trimmed = true;
        } else {
            out.push_str(part);
        }
    }
    (out, trimmed)
}

/// `set_contact_alias()` / `set_contact_alias_trim()`: append `;alias=srcip~srcport~proto` to
/// the Contact URI (after its parameters, before any `?headers`), enclosing it in `<>`.
pub fn set_contact_alias(ctx: &mut RouteCtx, trim: bool) -> i64 {
    let Ok(c) = contact_of(ctx) else { return -1 };
    if already_rewritten(ctx, "set_contact_alias") {
        return -1;
    }
    let name = ctx.core.nathelper.alias_name.clone();
    let base = if trim {
        trim_alias(&c.text, &name).0
    } else {
        c.text.clone()
    };
    let src = ctx.ep.remote;
    let alias = alias_param(
        &name,
        &uri_host(src.ip()),
        src.port(),
        proto_num(ctx.ep.proto),
    );
    let at = params_end(&base);
    let new = format!("{}{alias}{}", &base[..at], &base[at..]);
    rewrite(ctx, &c, &new, true);
    1
}

/// `add_contact_alias()`: add the source address as `;alias=` right after host:port, unless
/// the Contact already is the source address. 1 added, 2 not needed (or no Contact), -1 error.
pub fn add_contact_alias(ctx: &mut RouteCtx) -> i64 {
    let c = match contact_of(ctx) {
        Ok(c) => c,
        Err(NoContact::Bad) => return -1,
        Err(_) => return 2,
    };
    let src = ctx.ep.remote;
    let host = c.uri.host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        let uri_proto = c
            .uri
            .transport()
            .and_then(Proto::parse)
            .unwrap_or(Proto::Udp);
        let port_matches =
            c.uri.port == Some(src.port()) || (c.uri.port.is_none() && src.port() == 5060);
        if ip == src.ip() && port_matches && uri_proto == ctx.ep.proto {
            return 2;
        }
    }
    insert_alias(
        ctx,
        &c,
        &uri_host(src.ip()),
        src.port(),
        proto_num(ctx.ep.proto),
    )
}

/// `add_contact_alias_addr(ip, port, proto)`: add an explicit `;alias=`. 1 added, 2 no
/// Contact, -1 bad arguments or error.
pub fn add_contact_alias_addr(ctx: &mut RouteCtx, ip: &str, port: &str, proto: &str) -> i64 {
    let c = match contact_of(ctx) {
        Ok(c) => c,
        Err(NoContact::Bad) => return -1,
        Err(_) => return 2,
    };
    let bare = ip.trim_start_matches('[').trim_end_matches(']');
    let Ok(addr) = bare.parse::<IpAddr>() else {
        tracing::error!(ip, "add_contact_alias_addr: not an IP address");
        return -1;
    };
    let Some(port) = port.trim().parse::<u16>().ok().filter(|p| *p != 0) else {
        tracing::error!(port, "add_contact_alias_addr: not a port");
        return -1;
    };
    let Some(proto) = proto_by_name(proto.trim()) else {
        tracing::error!(proto, "add_contact_alias_addr: unknown protocol");
        return -1;
    };
    insert_alias(ctx, &c, &uri_host(addr), port, proto)
}

fn insert_alias(ctx: &mut RouteCtx, c: &ContactUri, host: &str, port: u16, proto: u8) -> i64 {
    if already_rewritten(ctx, "add_contact_alias") {
        return -1;
    }
    let Some((_, he)) = hostport_range(&c.text) else {
        return -1;
    };
    let alias = alias_param(&ctx.core.nathelper.alias_name, host, port, proto);
    let new = format!("{}{alias}{}", &c.text[..he], &c.text[he..]);
    rewrite(ctx, c, &new, true);
    1
}

/// A decoded `;alias=ip~port~proto`: the destination URI it stands for.
fn alias_dst(value: &str) -> Option<String> {
    let mut it = value.split('~');
    let (ip, port, proto) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || ip.is_empty() || proto.len() != 1 {
        return None;
    }
    let proto = proto_name(proto.parse().ok()?)?;
    let host = if ip.contains(':') && !ip.starts_with('[') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    let mut dst = format!("sip:{host}");
    if !port.is_empty() {
        let port: u16 = port.parse().ok()?;
        let _ = write!(dst, ":{port}");
    }
    if proto != "udp" {
        let _ = write!(dst, ";transport={proto}");
    }
    Some(dst)
}

/// `handle_ruri_alias([mode])`: take the `;alias=` off the R-URI and send to the address it
/// names ($du). Mode 0 uses the first alias, any other the last. 1 done, 2 no alias, -1 error.
pub fn handle_ruri_alias(ctx: &mut RouteCtx, mode: i64) -> i64 {
    let Some(m) = ctx.msg.as_ref() else { return -1 };
    let ruri = match &ctx.new_ruri {
        Some(u) => u.clone(),
        None => match std::str::from_utf8(m.ruri_bytes()) {
            Ok(s) => s.to_string(),
            Err(_) => return -1,
        },
    };
    let Some((_, he)) = hostport_range(&ruri) else {
        return -1;
    };
    let prefix = format!(";{}=", ctx.core.nathelper.alias_name);
    let parts = split_params(&ruri[he..]);
    let is_alias =
        |p: &str| p.len() > prefix.len() && p[..prefix.len()].eq_ignore_ascii_case(&prefix);
    let pos = if mode == 0 {
        parts.iter().position(|p| is_alias(p))
    } else {
        parts.iter().rposition(|p| is_alias(p))
    };
    let Some(pos) = pos else { return 2 };
    let Some(dst) = alias_dst(&parts[pos][prefix.len()..]) else {
        tracing::error!(uri = %ruri, "handle_ruri_alias: invalid alias parameter");
        return -1;
    };
    let mut new = ruri[..he].to_string();
    for (i, p) in parts.iter().enumerate() {
        if i != pos {
            new.push_str(p);
        }
    }
    ctx.dst_uri = Some(dst);
    ctx.new_ruri = Some(new);
    1
}

/// `set_alias_to_pv(pv)`: the Contact's `;alias=` as a URI (`sip:ip:port;transport=x`) into a
/// pseudo-variable. 1 done, -1 no Contact or no alias.
pub fn set_alias_to_pv(ctx: &mut RouteCtx, pv: &str) -> i64 {
    let Ok(c) = contact_of(ctx) else { return -1 };
    let name = ctx.core.nathelper.alias_name.clone();
    let Some(v) = c.uri.param(&name).flatten() else {
        return -1;
    };
    let Some(dst) = alias_dst(v) else { return -1 };
    use crate::modules::pv::{do_set, PvVal};
    match do_set(ctx, pv, Some(PvVal::Str(dst))) {
        crate::script::exports::Val::Bool(true) => 1,
        _ => -1,
    }
}

/// `add_rcv_param(flag)`: add `;received="sip:ip:port"` to every Contact, as a header
/// parameter (0) or inside the URI (other; UDP only). 1 done, -1 error.
pub fn add_rcv_param(ctx: &mut RouteCtx, in_uri: bool) -> i64 {
    if in_uri && ctx.ep.proto != Proto::Udp {
        tracing::error!("add_rcv_param: the URI form works only for UDP");
        return -1;
    }
    let Some(m) = ctx.msg.as_ref() else { return -1 };
    let rcv = src_uri(ctx.ep.remote, ctx.ep.proto);
    let Ok(spans) = contact_spans(m) else {
        return -1;
    };
    for (uri_end, contact_end) in spans {
        if in_uri {
            ctx.edits
                .insert(uri_end, format!(";received={rcv}").into_bytes());
        } else {
            ctx.edits
                .insert(contact_end, format!(";received=\"{rcv}\"").into_bytes());
        }
    }
    1
}

/// For each contact of every Contact header: (end of its URI, end of the whole contact).
fn contact_spans(m: &SipMsg) -> Result<Vec<(u32, u32)>, ()> {
    let mut out = Vec::new();
    for h in m.all(HdrName::Contact) {
        let base = h.value_span.start as usize;
        let v = m.value(h);
        let mut i = 0;
        while i < v.len() {
            while i < v.len() && (v[i].is_ascii_whitespace() || v[i] == b',') {
                i += 1;
            }
            if i >= v.len() {
                break;
            }
            if v[i] == b'*' {
                return Err(());
            }
            let mut in_quote = false;
            let mut in_angle = false;
            let mut uri_end = None;
            let mut j = i;
            while j < v.len() {
                match v[j] {
                    b'\\' if in_quote => j += 1,
                    b'"' if !in_angle => in_quote = !in_quote,
                    b'<' if !in_quote => in_angle = true,
                    b'>' if in_angle => {
                        in_angle = false;
                        uri_end = Some(j);
                    }
                    b';' if !in_quote && !in_angle && uri_end.is_none() => uri_end = Some(j),
                    b',' if !in_quote && !in_angle => break,
                    _ => {}
                }
                j += 1;
            }
            let mut end = j;
            while end > i && v[end - 1].is_ascii_whitespace() {
                end -= 1;
            }
            let uri_end = uri_end.unwrap_or(end);
            out.push(((base + uri_end) as u32, (base + end) as u32));
            i = j + 1;
        }
    }
    if out.is_empty() {
        return Err(());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_values_decode_as_handle_ruri_alias_does() {
        assert_eq!(
            alias_dst("203.0.113.9~40001~1").as_deref(),
            Some("sip:203.0.113.9:40001")
        );
        assert_eq!(
            alias_dst("2001:db8::5~5062~2").as_deref(),
            Some("sip:[2001:db8::5]:5062;transport=tcp")
        );
        assert_eq!(alias_dst("1.2.3.4~5060"), None);
        assert_eq!(alias_dst("1.2.3.4~5060~9"), None);
        assert_eq!(alias_dst("1.2.3.4~x~1"), None);
    }

    #[test]
    fn hostport_and_params_split() {
        let t = "sip:alice@192.168.0.103:5060;transport=udp;alias=1.2.3.4~5~1?X=1";
        let (s, e) = hostport_range(t).unwrap();
        assert_eq!(&t[s..e], "192.168.0.103:5060");
        assert_eq!(
            split_params(&t[e..]),
            [";transport=udp", ";alias=1.2.3.4~5~1", "?X=1"]
        );
        let (trimmed, had) = trim_alias(t, "alias");
        assert!(had);
        assert_eq!(trimmed, "sip:alice@192.168.0.103:5060;transport=udp?X=1");
        let v6 = "sip:[2001:db8::1]:5070;lr";
        let (s, e) = hostport_range(v6).unwrap();
        assert_eq!(&v6[s..e], "[2001:db8::1]:5070");
    }
}
