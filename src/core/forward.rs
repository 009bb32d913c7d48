//! Stateless forwarding: requests to `$du`/`$ru` with our Via on top; replies back by the next Via.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Instant;

use bytes::Bytes;

use super::retrans::Resend;
use super::stats::Stat;
use super::Core;
use crate::script::ctx::{PendingSend, RouteCtx};
use crate::sip::{Edits, HdrName, Scheme, SipMsg, Span, Uri, Via};
use crate::transport::Proto;

/// Why a message could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum FwdError {
    /// No message, or not the right kind.
    #[error("no request to forward")]
    NoMessage,
    /// The target URI does not parse or has no host.
    #[error("bad destination URI {0:?}")]
    BadUri(String),
    /// The host did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Transport ksrd does not speak.
    #[error("unsupported transport {0}")]
    Transport(String),
    /// Sending failed.
    #[error(transparent)]
    Send(#[from] crate::transport::SendError),
    /// A reply whose top Via is not ours, or with no Via left to follow.
    #[error("reply cannot be routed: {0}")]
    NoRoute(&'static str),
}

/// Resolve a SIP URI to transport and address (RFC 3263 without NAPTR/SRV: A/AAAA, default port).
pub fn resolve(uri: &Uri) -> Result<(Proto, SocketAddr), FwdError> {
    if !matches!(uri.scheme, Scheme::Sip | Scheme::Sips) || uri.host.is_empty() {
        return Err(FwdError::BadUri(uri.to_string()));
    }
    let proto = match uri.transport() {
        None => Proto::Udp,
        Some(t) => Proto::parse(t).ok_or_else(|| FwdError::Transport(t.to_string()))?,
    };
    let port = uri.port.unwrap_or(if uri.scheme == Scheme::Sips {
        5061
    } else {
        5060
    });
    Ok((proto, resolve_host(&uri.host, port)?))
}

/// Address of `host:port`; literal IPs need no lookup.
pub fn resolve_host(host: &str, port: u16) -> Result<SocketAddr, FwdError> {
    let h = host
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    // Blocking lookup: route scripts on these machines use literal addresses; names are rare.
    let r =
        pyo3::Python::attach(|py| py.detach(|| (h, port).to_socket_addrs().map(|mut a| a.next())));
    match r {
        Ok(Some(a)) => Ok(a),
        _ => Err(FwdError::Resolve(host.to_string())),
    }
}

fn refuse_dest(a: &SocketAddr) -> bool {
    let bad_ip = match a.ip() {
        IpAddr::V4(v4) => v4.is_broadcast() || v4.is_multicast() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified(),
    };
    bad_ip || a.port() == 0
}

/// Re-serialise the top Via with `received`/`rport` as RFC 3261 §18.2.1 and RFC 3581 ask.
fn fix_top_via(top: &Via, src: SocketAddr, force_rport: bool, edits: &mut Edits) {
    let src_ip = src.ip();
    let host_is_src = top
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|h| h == src_ip);
    let want_rport = top.rport().is_some() || force_rport;
    if host_is_src && !want_rport {
        return;
    }
    let mut v = String::with_capacity(top.span.len() + 40);
    let _ = write!(v, "{}/{} {}", top.protocol, top.transport, top.host);
    if let Some(p) = top.port {
        let _ = write!(v, ":{p}");
    }
    let mut had_received = false;
    let mut had_rport = false;
    for (k, val) in &top.params {
        if k.eq_ignore_ascii_case("received") {
            had_received = true;
            let _ = write!(v, ";received={src_ip}");
        } else if k.eq_ignore_ascii_case("rport") {
            had_rport = true;
            let _ = write!(v, ";rport={}", src.port());
        } else {
            match val {
                Some(x) => {
                    let _ = write!(v, ";{k}={x}");
                }
                None => {
                    let _ = write!(v, ";{k}");
                }
            }
        }
    }
    if want_rport && !had_rport {
        let _ = write!(v, ";rport={}", src.port());
    }
    if !had_received && (!host_is_src || want_rport) {
        let _ = write!(v, ";received={src_ip}");
    }
    edits.replace(top.span, v.into_bytes());
}

/// Forward the current request statelessly to `uri`, or `$du`, or `$ru`.
pub fn forward_request(ctx: &mut RouteCtx, uri: Option<&str>) -> Result<(), FwdError> {
    let mut out = std::mem::take(&mut ctx.out);
    let r = forward_into(ctx, uri, &mut out);
    ctx.out = out;
    r
}

fn forward_into(ctx: &mut RouteCtx, uri: Option<&str>, out: &mut Vec<u8>) -> Result<(), FwdError> {
    let core = ctx.core.clone();
    let msg = ctx.request().ok_or(FwdError::NoMessage)?;
    let target: String = match uri.filter(|u| !u.is_empty()).or(ctx.dst_uri.as_deref()) {
        Some(u) => u.to_string(),
        None => ctx.ruri().map(|c| c.into_owned()).unwrap_or_default(),
    };
    let hop = next_hop(&core, &target, None)?;
    let vias = msg.vias().map_err(|_| FwdError::NoMessage)?;
    // RFC 3261 §16.11: a stateless proxy's branch is a function of the request, so a
    // retransmission (and the CANCEL/ACK of the same INVITE) gets the same branch.
    let in_branch = vias.first().and_then(|v| v.branch()).unwrap_or("");
    let h = core.hash(&[
        in_branch.as_bytes(),
        msg.call_id().unwrap_or("").as_bytes(),
        ctx.new_ruri.as_deref().unwrap_or("").as_bytes(),
        msg.ruri_bytes(),
    ]);
    let branch = format!("z9hG4bKsl{h:016x}");
    let mut edits = ctx.forward_edits();
    if let Some(rr) = &ctx.rr {
        crate::rr::render(rr, msg, &ctx.ep, hop.proto, hop.local, &mut edits);
    }
    build_request(
        &BuildSpec {
            msg,
            src: ctx.ep.remote,
            force_rport: ctx.force_rport,
            new_ruri: ctx.new_ruri.as_deref(),
            hop: &hop,
            branch: &branch,
        },
        edits,
        out,
    )?;
    let key = ctx.req_key;
    let send = PendingSend {
        proto: hop.proto,
        dest: hop.dest,
        local: Some(hop.local),
        data: Bytes::copy_from_slice(out),
        key,
    };
    if ctx.gen.as_ref().is_some_and(|g| g.has_onsend_route) && !ctx.in_onsend {
        // ksr_onsend_route sees the request before it leaves; the KSR binding runs it right
        // after this call returns (it needs the routing context back).
        ctx.pending_sends.push(send);
        return Ok(());
    }
    transmit(&core, send)
}

/// Where a request goes next: transport, address and the local socket it leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// Transport.
    pub proto: Proto,
    /// Destination address.
    pub dest: SocketAddr,
    /// Local socket address (our Via).
    pub local: SocketAddr,
}

/// Resolve a target URI (`$du`, `$ru` or an explicit one) to a next hop; `proto` overrides the
/// URI's transport (`t_relay_to_proto`).
pub fn next_hop(core: &Core, target: &str, proto: Option<Proto>) -> Result<NextHop, FwdError> {
    let turi = Uri::parse(target.as_bytes()).map_err(|_| FwdError::BadUri(target.to_string()))?;
    let (p, dest) = resolve(&turi)?;
    let proto = proto.unwrap_or(p);
    if refuse_dest(&dest) {
        return Err(FwdError::BadUri(target.to_string()));
    }
    let local = core
        .sender
        .local_for(proto, dest)
        .ok_or(crate::transport::SendError::NoSocket(proto))?;
    Ok(NextHop { proto, dest, local })
}

/// What `build_request` needs to turn a received request into the one we send.
pub struct BuildSpec<'a> {
    /// The received request.
    pub msg: &'a SipMsg,
    /// Its source address (for `received`/`rport` on its Via).
    pub src: SocketAddr,
    /// `force_rport()` was called.
    pub force_rport: bool,
    /// New Request-URI, if rewritten.
    pub new_ruri: Option<&'a str>,
    /// Where it goes.
    pub hop: &'a NextHop,
    /// The branch parameter of our Via.
    pub branch: &'a str,
}

/// Build the outgoing request: the route's `edits`, the fixed top Via, the new R-URI and our
/// Via on top.
pub fn build_request(
    spec: &BuildSpec<'_>,
    mut edits: Edits,
    out: &mut Vec<u8>,
) -> Result<(), FwdError> {
    let msg = spec.msg;
    let vias = msg.vias().map_err(|_| FwdError::NoMessage)?;
    if let Some(top) = vias.first() {
        fix_top_via(top, spec.src, spec.force_rport, &mut edits);
    }
    if let (Some(new), Some(span)) = (spec.new_ruri, msg.uri_span()) {
        edits.replace(span, new.as_bytes().to_vec());
    }
    let local = spec.hop.local;
    let host = match local.ip() {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    let via = format!(
        "Via: SIP/2.0/{} {}:{};branch={}\r\n",
        spec.hop.proto.via_str(),
        host,
        local.port(),
        spec.branch
    );
    // Above the first Via (not simply first), so headers a route inserted at the top stay above it.
    let at = msg
        .first(HdrName::Via)
        .map(|h| h.line_span.start)
        .unwrap_or_else(|| msg.first_header_offset());
    edits.insert(at, via.into_bytes());
    edits.fix_content_length(msg);
    out.clear();
    edits.apply(msg.raw(), out);
    Ok(())
}

/// Send a forwarded request and remember it for retransmissions.
pub fn transmit(core: &Core, s: PendingSend) -> Result<(), FwdError> {
    // Counted first, for the same reason as local replies (see core::reply::send_reply).
    core.stats.inc(Stat::FwdRequests);
    core.sender.send(s.proto, s.dest, s.local, &s.data)?;
    if let Some(key) = s.key {
        let r = Resend {
            data: s.data,
            proto: s.proto,
            dest: s.dest,
            local: s.local,
        };
        core.retrans.lock().put(key, r, Instant::now());
    }
    Ok(())
}

/// Forward a reply statelessly: drop our top Via and send to the next one (received/rport first).
pub fn forward_reply(
    core: &Core,
    msg: &SipMsg,
    edits: &Edits,
    out: &mut Vec<u8>,
) -> Result<(), FwdError> {
    let vias = msg.vias().map_err(|_| FwdError::NoRoute("bad Via"))?;
    let top = vias.first().ok_or(FwdError::NoRoute("no Via"))?;
    if !core.myself.check(&top.host, Some(top.port.unwrap_or(5060))) {
        return Err(FwdError::NoRoute("top Via is not ours"));
    }
    let next = vias.get(1).ok_or(FwdError::NoRoute("reply was for us"))?;
    let mut edits = edits.clone();
    if next.header_index == top.header_index {
        // Comma-joined: remove just our value and the separator after it.
        edits.delete(Span {
            start: top.span.start,
            end: next.span.start,
        });
    } else {
        let h = &msg.headers()[top.header_index];
        edits.delete(h.line_span);
    }
    let proto =
        Proto::parse(&next.transport).ok_or_else(|| FwdError::Transport(next.transport.clone()))?;
    let host = next.received().unwrap_or(&next.host);
    let port = match next.rport() {
        Some(Some(p)) => p,
        _ => next.port.unwrap_or(5060),
    };
    let dest = resolve_host(host, port)?;
    if refuse_dest(&dest) {
        return Err(FwdError::NoRoute("broadcast or unspecified destination"));
    }
    edits.fix_content_length(msg);
    out.clear();
    edits.apply(msg.raw(), out);
    core.stats.inc(Stat::FwdReplies);
    core.sender.send(proto, dest, None, out)?;
    Ok(())
}
