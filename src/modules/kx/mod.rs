//! kemix (`KSR.kx.*`, Kamailio src/modules/kemix): getters without pseudo-variable parsing.

use crate::modules::pv::{self, Pv};
use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};

fn g(ctx: &RouteCtx, p: Pv) -> Val {
    pv::get(ctx, &p).map(Val::from).unwrap_or(Val::None)
}
fn ge(ctx: &RouteCtx, p: Pv) -> Val {
    pv::get(ctx, &p)
        .map(Val::from)
        .unwrap_or(Val::Str(String::new()))
}

macro_rules! getters {
    ($($f:ident, $fe:ident => $pv:expr;)*) => {
        $(fn $f(ctx: &mut RouteCtx, _: &Args) -> Val { g(ctx, $pv) }
          fn $fe(ctx: &mut RouteCtx, _: &Args) -> Val { ge(ctx, $pv) })*
    };
}
getters! {
    get_ruri, gete_ruri => Pv::Ru;
    get_ruser, gete_ruser => Pv::RUser;
    get_rhost, gete_rhost => Pv::RDomain;
    get_furi, gete_furi => Pv::FromUri;
    get_fuser, gete_fuser => Pv::FromUser;
    get_fhost, gete_fhost => Pv::FromDomain;
    get_turi, gete_turi => Pv::ToUri;
    get_tuser, gete_tuser => Pv::ToUser;
    get_thost, gete_thost => Pv::ToDomain;
    get_duri, gete_duri => Pv::Du;
    get_srcip, gete_srcip => Pv::SrcIp;
    get_ua, gete_ua => Pv::UserAgent;
    get_method, gete_method => Pv::Method;
    get_callid, gete_callid => Pv::CallId;
    get_body, gete_body => Pv::Body;
    get_au, gete_au => Pv::AuthUser;
    get_srcuri, gete_srcuri => Pv::SrcUri;
    get_proto, gete_proto => Pv::Proto;
}
fn get_srcport(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(ctx.ep.remote.port() as i64)
}
fn get_rcvport(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(ctx.ep.local.port() as i64)
}
fn get_status(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(
        ctx.msg
            .as_ref()
            .and_then(|m| m.status())
            .map(|s| s as i64)
            .unwrap_or(-1),
    )
}
fn get_timestamp(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(ctx.msg_time)
}
fn get_def(ctx: &mut RouteCtx, a: &Args) -> Val {
    ctx.core
        .cfg
        .defines
        .get(a.str(0))
        .map(|v| Val::Str(v.clone()))
        .unwrap_or(Val::None)
}
fn get_defn(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(
        ctx.core
            .cfg
            .defines
            .get(a.str(0))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
    )
}
fn ifdef(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Bool(ctx.core.cfg.defines.contains_key(a.str(0)))
}
fn get_env(_: &mut RouteCtx, a: &Args) -> Val {
    std::env::var(a.str(0)).map(Val::Str).unwrap_or(Val::None)
}

/// `KSR.kx.*` exports.
pub static EXPORTS: &[Export] = &[
    ex("kx", "get_ruri", &[], Xval, "Request URI ($ru)", get_ruri),
    ex(
        "kx",
        "gete_ruri",
        &[],
        Xval,
        "Request URI, or \"\"",
        gete_ruri,
    ),
    ex("kx", "get_ruser", &[], Xval, "R-URI user ($rU)", get_ruser),
    ex(
        "kx",
        "gete_ruser",
        &[],
        Xval,
        "R-URI user, or \"\"",
        gete_ruser,
    ),
    ex("kx", "get_rhost", &[], Xval, "R-URI host ($rd)", get_rhost),
    ex(
        "kx",
        "gete_rhost",
        &[],
        Xval,
        "R-URI host, or \"\"",
        gete_rhost,
    ),
    ex("kx", "get_furi", &[], Xval, "From URI ($fu)", get_furi),
    ex("kx", "gete_furi", &[], Xval, "From URI, or \"\"", gete_furi),
    ex("kx", "get_fuser", &[], Xval, "From user ($fU)", get_fuser),
    ex(
        "kx",
        "gete_fuser",
        &[],
        Xval,
        "From user, or \"\"",
        gete_fuser,
    ),
    ex("kx", "get_fhost", &[], Xval, "From host ($fd)", get_fhost),
    ex(
        "kx",
        "gete_fhost",
        &[],
        Xval,
        "From host, or \"\"",
        gete_fhost,
    ),
    ex("kx", "get_turi", &[], Xval, "To URI ($tu)", get_turi),
    ex("kx", "gete_turi", &[], Xval, "To URI, or \"\"", gete_turi),
    ex("kx", "get_tuser", &[], Xval, "To user ($tU)", get_tuser),
    ex(
        "kx",
        "gete_tuser",
        &[],
        Xval,
        "To user, or \"\"",
        gete_tuser,
    ),
    ex("kx", "get_thost", &[], Xval, "To host ($td)", get_thost),
    ex(
        "kx",
        "gete_thost",
        &[],
        Xval,
        "To host, or \"\"",
        gete_thost,
    ),
    ex(
        "kx",
        "get_duri",
        &[],
        Xval,
        "Destination URI ($du)",
        get_duri,
    ),
    ex(
        "kx",
        "gete_duri",
        &[],
        Xval,
        "Destination URI, or \"\"",
        gete_duri,
    ),
    ex("kx", "get_srcip", &[], Xval, "Source IP ($si)", get_srcip),
    ex(
        "kx",
        "gete_srcip",
        &[],
        Xval,
        "Source IP, or \"\"",
        gete_srcip,
    ),
    ex(
        "kx",
        "get_srcuri",
        &[],
        Xval,
        "Source as a SIP URI ($su)",
        get_srcuri,
    ),
    ex(
        "kx",
        "gete_srcuri",
        &[],
        Xval,
        "Source as a SIP URI, or \"\"",
        gete_srcuri,
    ),
    ex(
        "kx",
        "get_proto",
        &[],
        Xval,
        "Transport name ($pr)",
        get_proto,
    ),
    ex(
        "kx",
        "gete_proto",
        &[],
        Xval,
        "Transport name, or \"\"",
        gete_proto,
    ),
    ex(
        "kx",
        "get_srcport",
        &[],
        Int,
        "Source port ($sp)",
        get_srcport,
    ),
    ex(
        "kx",
        "get_rcvport",
        &[],
        Int,
        "Local port the message arrived on ($Rp)",
        get_rcvport,
    ),
    ex(
        "kx",
        "get_ua",
        &[],
        Xval,
        "User-Agent header body ($ua)",
        get_ua,
    ),
    ex(
        "kx",
        "gete_ua",
        &[],
        Xval,
        "User-Agent header body, or \"\"",
        gete_ua,
    ),
    ex("kx", "get_method", &[], Xval, "Method ($rm)", get_method),
    ex(
        "kx",
        "gete_method",
        &[],
        Xval,
        "Method, or \"\"",
        gete_method,
    ),
    ex("kx", "get_callid", &[], Xval, "Call-ID ($ci)", get_callid),
    ex(
        "kx",
        "gete_callid",
        &[],
        Xval,
        "Call-ID, or \"\"",
        gete_callid,
    ),
    ex("kx", "get_body", &[], Xval, "Message body ($rb)", get_body),
    ex(
        "kx",
        "gete_body",
        &[],
        Xval,
        "Message body, or \"\"",
        gete_body,
    ),
    ex(
        "kx",
        "get_au",
        &[],
        Xval,
        "Authorization username ($au)",
        get_au,
    ),
    ex(
        "kx",
        "gete_au",
        &[],
        Xval,
        "Authorization username, or \"\"",
        gete_au,
    ),
    ex(
        "kx",
        "get_status",
        &[],
        Int,
        "Reply status code, -1 for requests",
        get_status,
    ),
    ex(
        "kx",
        "get_timestamp",
        &[],
        Int,
        "Unix time of the message ($Ts)",
        get_timestamp,
    ),
    ex(
        "kx",
        "get_def",
        &[("name", Str)],
        Xval,
        "Value of a [define] entry (kamailio #!define), or None",
        get_def,
    ),
    ex(
        "kx",
        "get_defn",
        &[("name", Str)],
        Int,
        "Integer value of a [define] entry, or 0",
        get_defn,
    ),
    ex(
        "kx",
        "ifdef",
        &[("name", Str)],
        Bool,
        "True if the [define] entry exists",
        ifdef,
    ),
    ex(
        "kx",
        "get_env",
        &[("name", Str)],
        Xval,
        "Environment variable, or None",
        get_env,
    ),
];
