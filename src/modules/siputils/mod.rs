//! siputils (`KSR.siputils.*`, Kamailio src/modules/siputils).

use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};

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
fn is_first_hop(ctx: &mut RouteCtx, _: &Args) -> Val {
    let Some(m) = ctx.msg.as_ref() else {
        return b(false);
    };
    let n = m.vias().map(|v| v.len()).unwrap_or(0);
    // A request from the first hop carries one Via; a reply to us carries only ours.
    b(n == 1)
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
        "1 if the message has a single Via (first hop), else -1",
        is_first_hop,
    ),
];
