//! corex: small helpers (`KSR.corex.*`, Kamailio src/modules/corex).

use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use crate::sip::{HdrName, Uri};

fn has_ruri_user(ctx: &mut RouteCtx, _: &Args) -> Val {
    let u = ctx.ruri().and_then(|u| Uri::parse(u.as_bytes()).ok());
    Val::Int(if u.and_then(|u| u.user).is_some_and(|s| !s.is_empty()) {
        1
    } else {
        -1
    })
}
fn has_user_agent(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(
        if ctx
            .msg
            .as_ref()
            .and_then(|m| m.first(HdrName::UserAgent))
            .is_some()
        {
            1
        } else {
            -1
        },
    )
}

fn append_branch(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(crate::tm::kemi::append_branch(ctx, None, None))
}
fn append_branch_uri(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(crate::tm::kemi::append_branch(ctx, Some(a.str(0)), None))
}
fn append_branch_uri_q(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(crate::tm::kemi::append_branch(
        ctx,
        Some(a.str(0)),
        Some(a.str(1)),
    ))
}

/// `KSR.corex.*` exports.
pub static EXPORTS: &[Export] = &[
    ex(
        "corex",
        "append_branch",
        &[],
        Int,
        "Add the current $ru/$du as a new branch of the destination set",
        append_branch,
    ),
    ex(
        "corex",
        "append_branch_uri",
        &[("uri", Str)],
        Int,
        "Add a branch with this URI (and the current $du)",
        append_branch_uri,
    ),
    ex(
        "corex",
        "append_branch_uri_q",
        &[("uri", Str), ("q", Str)],
        Int,
        "Add a branch with this URI and q value (\"0.5\")",
        append_branch_uri_q,
    ),
    ex(
        "corex",
        "has_ruri_user",
        &[],
        Int,
        "1 if the R-URI has a user part, else -1",
        has_ruri_user,
    ),
    ex(
        "corex",
        "has_user_agent",
        &[],
        Int,
        "1 if a User-Agent header is present, else -1",
        has_user_agent,
    ),
];
