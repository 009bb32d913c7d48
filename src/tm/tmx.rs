//! `KSR.tmx.*` (Kamailio src/modules/tmx/tmx_mod.c).

use super::kemi::with_tx;
use super::key::ServerKey;
use super::relay::cancel_pending;
use crate::script::ctx::{RouteCtx, RouteKind};
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use crate::sip::Method;

fn b(x: bool) -> Val {
    Val::Int(if x { 1 } else { -1 })
}

fn t_precheck_trans(ctx: &mut RouteCtx, _: &Args) -> Val {
    let core = ctx.core.clone();
    let Some(msg) = ctx.request() else {
        return b(false);
    };
    if matches!(msg.method(), Method::Ack | Method::Cancel) {
        return b(false);
    }
    b(ServerKey::from_request(msg)
        .and_then(|k| core.tm.table.get(&k))
        .is_some())
}
fn t_is_failure_route(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(ctx.kind == RouteKind::Failure)
}
fn t_is_branch_route(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(ctx.kind == RouteKind::Branch)
}
fn t_is_reply_route(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(ctx.kind == RouteKind::Reply)
}
fn t_is_request_route(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(ctx.kind == RouteKind::Request)
}
fn t_cancel_branches(ctx: &mut RouteCtx, a: &Args) -> Val {
    let which = a.str(0).to_string();
    let current = ctx.tm.branch_idx;
    let r = with_tx(ctx, |core, g| match which.as_str() {
        "all" => cancel_pending(core, g, None),
        "others" => cancel_pending(core, g, Some(current)),
        "this" if g.branches.get(current).is_some_and(|b| b.pending()) => {
            super::relay::send_cancel(core, g, current)
        }
        _ => {}
    });
    b(r.is_some())
}
fn t_flush_flags(ctx: &mut RouteCtx, _: &Args) -> Val {
    let flags = ctx.flags;
    b(with_tx(ctx, |_, g| g.saved.flags = flags).is_some())
}

/// `KSR.tmx.*` exports.
pub static EXPORTS: &[Export] = &[
    ex("tmx", "t_precheck_trans", &[], Int, "1 if the request's transaction is already being handled (retransmission), else -1; -1 for ACK and CANCEL", t_precheck_trans),
    ex("tmx", "t_is_failure_route", &[], Int, "1 when running in a failure route, else -1", t_is_failure_route),
    ex("tmx", "t_is_branch_route", &[], Int, "1 when running in a branch route, else -1", t_is_branch_route),
    ex("tmx", "t_is_reply_route", &[], Int, "1 when running in a reply route, else -1", t_is_reply_route),
    ex("tmx", "t_is_request_route", &[], Int, "1 when running in the request route, else -1", t_is_request_route),
    ex("tmx", "t_cancel_branches", &[("mode", Str)], Int, "CANCEL pending branches: \"all\", \"others\" or \"this\"", t_cancel_branches),
    ex("tmx", "t_flush_flags", &[], Int, "Copy the message flags to the transaction", t_flush_flags),
];
