//! Core `KSR.*` exports (Kamailio src/core/kemi.c): logging, method tests, myself, flags, drop, forward.

use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use crate::sip::{Method, Uri};

fn log_at(level: &str, text: &str) {
    // Scripts add their own "\n" (Kamailio prints verbatim); one log line each is enough here.
    let t = text.strip_suffix('\n').unwrap_or(text);
    match level {
        "dbg" | "debug" => tracing::debug!(target: "ksr", "{t}"),
        "info" | "notice" => tracing::info!(target: "ksr", "{t}"),
        "warn" => tracing::warn!(target: "ksr", "{t}"),
        _ => tracing::error!(target: "ksr", "{t}"),
    }
}

fn dbg(_: &mut RouteCtx, a: &Args) -> Val {
    log_at("dbg", a.str(0));
    Val::None
}
fn info(_: &mut RouteCtx, a: &Args) -> Val {
    log_at("info", a.str(0));
    Val::None
}
fn notice(_: &mut RouteCtx, a: &Args) -> Val {
    log_at("notice", a.str(0));
    Val::None
}
fn warn(_: &mut RouteCtx, a: &Args) -> Val {
    log_at("warn", a.str(0));
    Val::None
}
fn err(_: &mut RouteCtx, a: &Args) -> Val {
    log_at("err", a.str(0));
    Val::None
}
fn crit(_: &mut RouteCtx, a: &Args) -> Val {
    log_at("crit", a.str(0));
    Val::None
}
fn log(_: &mut RouteCtx, a: &Args) -> Val {
    log_at(a.str(0), a.str(1));
    Val::None
}

/// The request method, or the CSeq method of a reply.
fn method_of(ctx: &RouteCtx) -> Option<(Method, &str)> {
    let m = ctx.msg.as_ref()?;
    Some((m.method(), m.method_str()))
}

fn is_method(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Bool(method_of(ctx).is_some_and(|(_, s)| s.eq_ignore_ascii_case(a.str(0))))
}

fn is_method_in(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some((m, _)) = method_of(ctx) else {
        return Val::Bool(false);
    };
    let hit = a.str(0).chars().any(|c| {
        matches!(
            (c.to_ascii_uppercase(), m),
            ('I', Method::Invite)
                | ('A', Method::Ack)
                | ('B', Method::Bye)
                | ('C', Method::Cancel)
                | ('R', Method::Register)
                | ('O', Method::Options)
                | ('S', Method::Subscribe)
                | ('P', Method::Publish)
                | ('N', Method::Notify)
                | ('U', Method::Update)
                | ('M', Method::Message)
                | ('E', Method::Prack)
                | ('F', Method::Refer)
                | ('K', Method::Kdmq)
                | ('G', Method::Get)
                | ('T', Method::Post)
                | ('V', Method::Put)
                | ('D', Method::Delete)
        )
    });
    Val::Bool(hit)
}

macro_rules! method_tests {
    ($($f:ident => $m:ident),* $(,)?) => {
        $(fn $f(ctx: &mut RouteCtx, _: &Args) -> Val {
            Val::Bool(method_of(ctx).is_some_and(|(m, _)| m == Method::$m))
        })*
    };
}
method_tests! {
    is_invite => Invite, is_ack => Ack, is_bye => Bye, is_cancel => Cancel, is_register => Register,
    is_options => Options, is_subscribe => Subscribe, is_notify => Notify, is_publish => Publish,
    is_message => Message, is_info => Info, is_update => Update, is_prack => Prack, is_refer => Refer,
    is_kdmq => Kdmq, is_get => Get, is_post => Post, is_put => Put, is_delete => Delete,
}

/// `is_myself` of a SIP URI or a bare host (Kamailio `sr_kemi_core_is_myself`).
pub fn myself_uri(ctx: &RouteCtx, s: &str) -> bool {
    if s.starts_with("sip:") || s.starts_with("sips:") {
        match Uri::parse(s.as_bytes()) {
            Ok(u) => ctx.core.myself.check(&u.host, u.port),
            Err(_) => false,
        }
    } else {
        ctx.core.myself.check(s, None)
    }
}

fn is_myself(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Bool(myself_uri(ctx, a.str(0)))
}
fn is_myself_ruri(ctx: &mut RouteCtx, _: &Args) -> Val {
    let Some(u) = ctx.ruri().map(|c| c.into_owned()) else {
        return Val::Bool(false);
    };
    Val::Bool(myself_uri(ctx, &u))
}
fn is_myself_furi(ctx: &mut RouteCtx, _: &Args) -> Val {
    let u = ctx
        .msg
        .as_ref()
        .and_then(|m| m.from_hdr().ok())
        .map(|f| f.uri_text.clone());
    Val::Bool(u.is_some_and(|u| myself_uri(ctx, &u)))
}
fn is_myself_turi(ctx: &mut RouteCtx, _: &Args) -> Val {
    let u = ctx
        .msg
        .as_ref()
        .and_then(|m| m.to_hdr().ok())
        .map(|f| f.uri_text.clone());
    Val::Bool(u.is_some_and(|u| myself_uri(ctx, &u)))
}
fn is_myself_duri(ctx: &mut RouteCtx, _: &Args) -> Val {
    let u = ctx.dst_uri.clone();
    Val::Bool(u.is_some_and(|u| myself_uri(ctx, &u)))
}
fn is_myself_srcip(ctx: &mut RouteCtx, _: &Args) -> Val {
    let ip = ctx.ep.remote.ip().to_string();
    Val::Bool(ctx.core.myself.check(&ip, None))
}

/// Kamailio's `flag_t` is a 32-bit unsigned int: flags 0..=MAX_FLAG (31); others are refused
/// (`flag_in_range`, src/core/flags.h).
fn flag_ok(n: i64) -> Option<u64> {
    (0..32).contains(&n).then(|| 1u64 << n)
}
fn setflag(ctx: &mut RouteCtx, a: &Args) -> Val {
    flag_ok(a.int(0)).map(|b| ctx.flags |= b).is_some().into()
}
fn resetflag(ctx: &mut RouteCtx, a: &Args) -> Val {
    flag_ok(a.int(0)).map(|b| ctx.flags &= !b).is_some().into()
}
fn isflagset(ctx: &mut RouteCtx, a: &Args) -> Val {
    flag_ok(a.int(0)).is_some_and(|b| ctx.flags & b != 0).into()
}
fn setbflag(ctx: &mut RouteCtx, a: &Args) -> Val {
    flag_ok(a.int(0)).map(|b| ctx.bflags |= b).is_some().into()
}
fn resetbflag(ctx: &mut RouteCtx, a: &Args) -> Val {
    flag_ok(a.int(0)).map(|b| ctx.bflags &= !b).is_some().into()
}
fn isbflagset(ctx: &mut RouteCtx, a: &Args) -> Val {
    flag_ok(a.int(0))
        .is_some_and(|b| ctx.bflags & b != 0)
        .into()
}
// Only branch 0 exists until tm forking lands; other indexes report false.
fn setbiflag(ctx: &mut RouteCtx, a: &Args) -> Val {
    (a.int(1) == 0 && flag_ok(a.int(0)).map(|b| ctx.bflags |= b).is_some()).into()
}
fn resetbiflag(ctx: &mut RouteCtx, a: &Args) -> Val {
    (a.int(1) == 0 && flag_ok(a.int(0)).map(|b| ctx.bflags &= !b).is_some()).into()
}
fn isbiflagset(ctx: &mut RouteCtx, a: &Args) -> Val {
    (a.int(1) == 0 && flag_ok(a.int(0)).is_some_and(|b| ctx.bflags & b != 0)).into()
}

fn set_drop(ctx: &mut RouteCtx, _: &Args) -> Val {
    ctx.drop = true;
    Val::None
}
fn isdsturiset(ctx: &mut RouteCtx, _: &Args) -> Val {
    ctx.dst_uri.is_some().into()
}
fn force_rport(ctx: &mut RouteCtx, _: &Args) -> Val {
    ctx.force_rport = true;
    Val::Bool(true)
}

fn do_forward(ctx: &mut RouteCtx, uri: Option<&str>) -> Val {
    match crate::core::forward::forward_request(ctx, uri) {
        Ok(()) => Val::Int(1),
        Err(e) => {
            tracing::error!("forward failed: {e}");
            Val::Int(-1)
        }
    }
}
fn forward(ctx: &mut RouteCtx, _: &Args) -> Val {
    do_forward(ctx, None)
}
fn forward_uri(ctx: &mut RouteCtx, a: &Args) -> Val {
    do_forward(ctx, Some(a.str(0)))
}

fn seturi(ctx: &mut RouteCtx, a: &Args) -> Val {
    let t = a.str(0);
    if ctx.request().is_none() || Uri::parse(t.as_bytes()).is_err() {
        return Val::Bool(false);
    }
    ctx.new_ruri = Some(t.to_string());
    Val::Bool(true)
}
fn set_ruri_part(ctx: &mut RouteCtx, f: impl FnOnce(&mut Uri)) -> Val {
    let cur = ctx.ruri().map(|c| c.into_owned()).unwrap_or_default();
    match Uri::parse(cur.as_bytes()) {
        Ok(mut u) => {
            f(&mut u);
            ctx.new_ruri = Some(u.to_string());
            Val::Bool(true)
        }
        Err(_) => Val::Bool(false),
    }
}
fn setuser(ctx: &mut RouteCtx, a: &Args) -> Val {
    let v = a.str(0);
    set_ruri_part(ctx, |u| u.user = (!v.is_empty()).then(|| v.to_string()))
}
fn sethost(ctx: &mut RouteCtx, a: &Args) -> Val {
    let v = a.str(0);
    if v.is_empty() {
        return Val::Bool(false);
    }
    set_ruri_part(ctx, |u| u.host = v.to_string())
}
fn setdsturi(ctx: &mut RouteCtx, a: &Args) -> Val {
    let t = a.str(0);
    if Uri::parse(t.as_bytes()).is_err() {
        return Val::Bool(false);
    }
    ctx.dst_uri = Some(t.to_string());
    Val::Bool(true)
}
fn resetdsturi(ctx: &mut RouteCtx, _: &Args) -> Val {
    ctx.dst_uri = None;
    Val::Bool(true)
}
fn is_proto(ctx: &mut RouteCtx, a: &Args) -> Val {
    let p = ctx.ep.proto.as_str();
    let want = a.str(0).to_ascii_lowercase();
    Val::Bool(want.chars().any(|c| match c {
        'u' => p == "udp",
        't' => p == "tcp",
        _ => false,
    }))
}
fn is_udp(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Bool(ctx.ep.proto == crate::transport::Proto::Udp)
}
fn is_tcp(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Bool(ctx.ep.proto == crate::transport::Proto::Tcp)
}
fn is_false(_: &mut RouteCtx, _: &Args) -> Val {
    Val::Bool(false)
}

/// Core `KSR.*` exports.
pub static EXPORTS: &[Export] = &[
    ex(
        "",
        "dbg",
        &[("msg", Str)],
        Void,
        "Log the text at debug level",
        dbg,
    ),
    ex(
        "",
        "info",
        &[("msg", Str)],
        Void,
        "Log the text at info level",
        info,
    ),
    ex(
        "",
        "notice",
        &[("msg", Str)],
        Void,
        "Log the text at notice level",
        notice,
    ),
    ex(
        "",
        "warn",
        &[("msg", Str)],
        Void,
        "Log the text at warning level",
        warn,
    ),
    ex(
        "",
        "err",
        &[("msg", Str)],
        Void,
        "Log the text at error level",
        err,
    ),
    ex(
        "",
        "crit",
        &[("msg", Str)],
        Void,
        "Log the text at critical level",
        crit,
    ),
    ex(
        "",
        "log",
        &[("level", Str), ("msg", Str)],
        Void,
        "Log the text at level dbg|info|notice|warn|err|crit",
        log,
    ),
    ex(
        "",
        "is_method",
        &[("method", Str)],
        Bool,
        "True if the request method (CSeq method for replies) is this one",
        is_method,
    ),
    ex(
        "",
        "is_method_in",
        &[("letters", Str)],
        Bool,
        "True if the method is one of the letter codes (I A B C R O S P N U M E F K G T V D)",
        is_method_in,
    ),
    ex("", "is_INVITE", &[], Bool, "True for INVITE", is_invite),
    ex("", "is_ACK", &[], Bool, "True for ACK", is_ack),
    ex("", "is_BYE", &[], Bool, "True for BYE", is_bye),
    ex("", "is_CANCEL", &[], Bool, "True for CANCEL", is_cancel),
    ex(
        "",
        "is_REGISTER",
        &[],
        Bool,
        "True for REGISTER",
        is_register,
    ),
    ex("", "is_OPTIONS", &[], Bool, "True for OPTIONS", is_options),
    ex(
        "",
        "is_SUBSCRIBE",
        &[],
        Bool,
        "True for SUBSCRIBE",
        is_subscribe,
    ),
    ex("", "is_NOTIFY", &[], Bool, "True for NOTIFY", is_notify),
    ex("", "is_PUBLISH", &[], Bool, "True for PUBLISH", is_publish),
    ex("", "is_MESSAGE", &[], Bool, "True for MESSAGE", is_message),
    ex("", "is_INFO", &[], Bool, "True for INFO", is_info),
    ex("", "is_UPDATE", &[], Bool, "True for UPDATE", is_update),
    ex("", "is_PRACK", &[], Bool, "True for PRACK", is_prack),
    ex("", "is_REFER", &[], Bool, "True for REFER", is_refer),
    ex("", "is_KDMQ", &[], Bool, "True for KDMQ", is_kdmq),
    ex("", "is_GET", &[], Bool, "True for GET", is_get),
    ex("", "is_POST", &[], Bool, "True for POST", is_post),
    ex("", "is_PUT", &[], Bool, "True for PUT", is_put),
    ex("", "is_DELETE", &[], Bool, "True for DELETE", is_delete),
    ex(
        "",
        "is_myself",
        &[("uri", Str)],
        Bool,
        "True if the SIP URI or host is a local address or alias",
        is_myself,
    ),
    ex(
        "",
        "is_myself_ruri",
        &[],
        Bool,
        "True if the R-URI host:port is local",
        is_myself_ruri,
    ),
    ex(
        "",
        "is_myself_furi",
        &[],
        Bool,
        "True if the From URI host:port is local",
        is_myself_furi,
    ),
    ex(
        "",
        "is_myself_turi",
        &[],
        Bool,
        "True if the To URI host:port is local",
        is_myself_turi,
    ),
    ex(
        "",
        "is_myself_duri",
        &[],
        Bool,
        "True if the destination URI ($du) is local",
        is_myself_duri,
    ),
    ex(
        "",
        "is_myself_srcip",
        &[],
        Bool,
        "True if the source IP is a local address",
        is_myself_srcip,
    ),
    ex(
        "",
        "setflag",
        &[("flag", Int)],
        Bool,
        "Set a message flag",
        setflag,
    ),
    ex(
        "",
        "resetflag",
        &[("flag", Int)],
        Bool,
        "Reset a message flag",
        resetflag,
    ),
    ex(
        "",
        "isflagset",
        &[("flag", Int)],
        Bool,
        "True if the message flag is set",
        isflagset,
    ),
    ex(
        "",
        "setbflag",
        &[("flag", Int)],
        Bool,
        "Set a flag of branch 0",
        setbflag,
    ),
    ex(
        "",
        "resetbflag",
        &[("flag", Int)],
        Bool,
        "Reset a flag of branch 0",
        resetbflag,
    ),
    ex(
        "",
        "isbflagset",
        &[("flag", Int)],
        Bool,
        "True if the flag of branch 0 is set",
        isbflagset,
    ),
    ex(
        "",
        "setbiflag",
        &[("flag", Int), ("branch", Int)],
        Bool,
        "Set a flag of the given branch",
        setbiflag,
    ),
    ex(
        "",
        "resetbiflag",
        &[("flag", Int), ("branch", Int)],
        Bool,
        "Reset a flag of the given branch",
        resetbiflag,
    ),
    ex(
        "",
        "isbiflagset",
        &[("flag", Int), ("branch", Int)],
        Bool,
        "True if the flag of the given branch is set",
        isbiflagset,
    ),
    ex(
        "",
        "set_drop",
        &[],
        Void,
        "Drop the message when the route returns (no reply forwarding in reply routes)",
        set_drop,
    ),
    ex(
        "",
        "isdsturiset",
        &[],
        Bool,
        "True if the destination URI ($du) is set",
        isdsturiset,
    ),
    ex(
        "",
        "force_rport",
        &[],
        Bool,
        "Add rport to the top Via so replies go to the source port",
        force_rport,
    ),
    ex(
        "",
        "forward",
        &[],
        Int,
        "Forward the request statelessly to $du or the R-URI",
        forward,
    ),
    ex(
        "",
        "forward_uri",
        &[("uri", Str)],
        Int,
        "Forward the request statelessly to the given URI",
        forward_uri,
    ),
    ex("", "seturi", &[("uri", Str)], Bool, "Set the R-URI", seturi),
    ex(
        "",
        "setuser",
        &[("user", Str)],
        Bool,
        "Set the user part of the R-URI",
        setuser,
    ),
    ex(
        "",
        "sethost",
        &[("host", Str)],
        Bool,
        "Set the host part of the R-URI",
        sethost,
    ),
    ex(
        "",
        "setdsturi",
        &[("uri", Str)],
        Bool,
        "Set the destination URI ($du)",
        setdsturi,
    ),
    ex(
        "",
        "resetdsturi",
        &[],
        Bool,
        "Unset the destination URI ($du)",
        resetdsturi,
    ),
    ex(
        "",
        "is_proto",
        &[("protos", Str)],
        Bool,
        "True if the transport is one of the letters (u=udp t=tcp)",
        is_proto,
    ),
    ex("", "is_UDP", &[], Bool, "True if received over UDP", is_udp),
    ex("", "is_TCP", &[], Bool, "True if received over TCP", is_tcp),
    ex(
        "",
        "is_TLS",
        &[],
        Bool,
        "True if received over TLS (never: TLS is not enabled)",
        is_false,
    ),
    ex(
        "",
        "is_WS",
        &[],
        Bool,
        "True if received over WebSocket (never: WS is not enabled)",
        is_false,
    ),
];
