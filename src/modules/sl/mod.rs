//! sl: stateless replies (`KSR.sl.*`, Kamailio src/modules/sl).

use crate::core::reply::send_reply;
use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use crate::sip::Method;

/// Send a local reply for the current request; at most one final reply per request
/// (kamailio-defects.md: a second final reply sends nothing and returns -1).
pub fn reply(ctx: &mut RouteCtx, code: i64, reason: &str) -> i64 {
    if !(100..=699).contains(&code) {
        tracing::error!(code, "invalid reply code");
        return -1;
    }
    let Some(req) = ctx.msg.as_ref().filter(|m| m.is_request()) else {
        tracing::error!("sl reply outside a request route");
        return -1;
    };
    if req.method() == Method::Ack {
        return -1;
    }
    if ctx.replied && code >= 200 {
        tracing::debug!(code, "a final reply was already sent; not sending another");
        return -1;
    }
    let mut out = std::mem::take(&mut ctx.out);
    let r = send_reply(
        &ctx.core,
        req,
        &ctx.ep,
        code as u16,
        reason,
        &ctx.reply_hdrs,
        b"",
        ctx.force_rport,
        ctx.req_key,
        &mut out,
    );
    ctx.out = out;
    match r {
        Ok(()) => {
            if code >= 200 {
                ctx.replied = true;
            }
            1
        }
        Err(_) => -1,
    }
}

fn sl_send_reply(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(reply(ctx, a.int(0), a.str(1)))
}
fn sl_send_reply_stateful(ctx: &mut RouteCtx, a: &Args) -> Val {
    // Kamailio sl `send_reply`: stateful once the request has a transaction.
    if ctx.tm.t.is_some() || ctx.tm.tx.is_some() {
        return Val::Int(crate::tm::kemi::t_reply_code(ctx, a.int(0), a.str(1)));
    }
    sl_send_reply(ctx, a)
}
/// Reply statefully when the request has a transaction, else statelessly, with extra header
/// lines for this reply only (auth challenges).
pub fn send_reply_with(ctx: &mut RouteCtx, code: i64, reason: &str, extra: &[u8]) -> i64 {
    let n = ctx.reply_hdrs.len();
    ctx.reply_hdrs.extend_from_slice(extra);
    let r = if ctx.tm.t.is_some() || ctx.tm.tx.is_some() {
        crate::tm::kemi::t_reply_code(ctx, code, reason)
    } else {
        reply(ctx, code, reason)
    };
    ctx.reply_hdrs.truncate(n);
    r
}

fn sl_reply_error(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(reply(ctx, 500, "Server Internal Error"))
}

/// `KSR.sl.*` exports.
pub static EXPORTS: &[Export] = &[
    ex(
        "sl",
        "sl_send_reply",
        &[("code", Int), ("reason", Str)],
        Int,
        "Send a stateless reply; 1 on success, -1 on error",
        sl_send_reply,
    ),
    ex(
        "sl",
        "send_reply",
        &[("code", Int), ("reason", Str)],
        Int,
        "Send a reply (statefully once a transaction exists, else statelessly)",
        sl_send_reply_stateful,
    ),
    ex(
        "sl",
        "sl_reply_error",
        &[],
        Int,
        "Send the error reply for the last internal error (500)",
        sl_reply_error,
    ),
    ex(
        "sl",
        "send_reply_error",
        &[],
        Int,
        "Send the error reply for the last internal error (500)",
        sl_reply_error,
    ),
];
