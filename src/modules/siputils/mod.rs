//! siputils (`KSR.siputils.*`, Kamailio src/modules/siputils).

use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use crate::sip::HdrName;

fn b(x: bool) -> Val {
    Val::Int(if x { 1 } else { -1 })
}
fn has_totag(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(ctx
        .msg
        .as_ref()
        .and_then(|m| m.to_hdr().ok())
        .is_some_and(|t| t.tag().is_some_and(|t| !t.is_empty())))
}
fn is_request(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(ctx.msg.as_ref().is_some_and(|m| m.is_request()))
}
fn is_reply(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(ctx.msg.as_ref().is_some_and(|m| !m.is_request()))
}
/// siputils is_first_hop: a request with one Via; a reply whose top Record-Route is ours (mode
/// 0 also wants an IP there and a source address that is not ours, to skip local loops).
fn first_hop(ctx: &RouteCtx, mode: i64) -> bool {
    let Some(m) = ctx.msg.as_ref() else {
        return false;
    };
    if m.is_request() {
        return m.vias().map(|v| v.len()).unwrap_or(0) == 1;
    }
    let Some(h) = m.first(HdrName::RecordRoute) else {
        return false;
    };
    let v = m.value(h);
    let Some(first) = v.split(|c| *c == b',').next() else {
        return false;
    };
    let Ok(na) = crate::sip::NameAddr::parse(first) else {
        return false;
    };
    let host = na.uri.host.as_str();
    if !ctx.core.myself.check(host, na.uri.port) {
        return false;
    }
    if mode == 0 {
        let is_ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok();
        if !is_ip || ctx.core.myself.check(&ctx.ep.remote.ip().to_string(), None) {
            return false;
        }
    }
    true
}
fn is_first_hop(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(first_hop(ctx, 0))
}
fn is_first_hop_mode(ctx: &mut RouteCtx, a: &Args) -> Val {
    b(first_hop(ctx, a.int(0)))
}

/// `KSR.siputils.*` exports.
pub static EXPORTS: &[Export] = &[
    ex(
        "siputils",
        "has_totag",
        &[],
        Int,
        "1 if the To header has a tag, else -1",
        has_totag,
    ),
    ex(
        "siputils",
        "is_request",
        &[],
        Int,
        "1 if the message is a request, else -1",
        is_request,
    ),
    ex(
        "siputils",
        "is_reply",
        &[],
        Int,
        "1 if the message is a reply, else -1",
        is_reply,
    ),
    ex(
        "siputils",
        "is_first_hop",
        &[],
        Int,
        "1 if a request has a single Via, or a reply's top Record-Route is ours with an IP",
        is_first_hop,
    ),
    ex(
        "siputils",
        "is_first_hop_mode",
        &[("mode", Int)],
        Int,
        "is_first_hop; for replies mode 1 skips the IP and local-source checks",
        is_first_hop_mode,
    ),
];
