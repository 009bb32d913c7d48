//! maxfwd (`KSR.maxfwd.*`, Kamailio src/modules/maxfwd).

use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use crate::sip::HdrName;

/// Default of the `max_limit` module parameter.
pub const DEFAULT_MAX_LIMIT: i64 = 70;

fn process_maxfwd(ctx: &mut RouteCtx, a: &Args) -> Val {
    let limit = a.int(0);
    let max_limit = ctx
        .core
        .cfg
        .modparams
        .get_int("maxfwd", "max_limit")
        .unwrap_or(DEFAULT_MAX_LIMIT);
    // maxfwd.c process_maxfwd_header: an out-of-range limit is -1, not -2.
    if !(0..=255).contains(&limit) {
        tracing::error!(limit, "invalid process_maxfwd limit");
        return Val::Int(-1);
    }
    let Some(m) = ctx.request() else {
        return Val::Int(-2);
    };
    match m.first(HdrName::MaxForwards) {
        None => {
            let at = m.first_header_offset();
            ctx.edits
                .insert(at, format!("Max-Forwards: {limit}\r\n").into_bytes());
            Val::Int(2)
        }
        Some(h) => {
            let span = h.value_span;
            let Ok(Some(v)) = m.max_forwards() else {
                return Val::Int(-2);
            };
            if v == 0 {
                return Val::Int(-1);
            }
            // Kamailio (maxfwd.c) sets a value above max_limit to max_limit + 1, then decrements:
            // the request leaves with max_limit.
            let v = if (v as i64) > max_limit {
                max_limit + 1
            } else {
                v as i64
            };
            ctx.edits.replace(span, (v - 1).to_string().into_bytes());
            Val::Int(1)
        }
    }
}

fn is_maxfwd_lt(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(m) = ctx.request() else {
        return Val::Int(-2);
    };
    match m.max_forwards() {
        Ok(Some(v)) => Val::Int(if (v as i64) < a.int(0) { 1 } else { -1 }),
        Ok(None) => Val::Int(-1),
        Err(_) => Val::Int(-2),
    }
}

/// `KSR.maxfwd.*` exports.
pub static EXPORTS: &[Export] = &[
    ex("maxfwd", "process_maxfwd", &[("limit", Int)], Int, "Decrement Max-Forwards (add it with limit if absent): 2 added, 1 decremented, -1 it was 0, -2 error", process_maxfwd),
    ex("maxfwd", "is_maxfwd_lt", &[("limit", Int)], Int, "1 if Max-Forwards is lower than limit, -1 if not or absent, -2 on error", is_maxfwd_lt),
];
