//! nathelper (`KSR.nathelper.*`, Kamailio src/modules/nathelper): NAT detection, Contact and
//! SDP rewriting, `;alias=` handling and NAT keepalives.

pub mod contact;
pub mod natping;
pub mod nets;
pub mod sdp;
pub mod uac_test;

use std::sync::Arc;

use serde_json::{json, Value};

use crate::core::Core;
use crate::modules::modparam::{ModParams, ModuleParams, ParamKind};
use crate::modules::pv::PvVal;
use crate::rpc::{Registry, RpcError};
use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};

/// Module settings and the pinger (owned by `Core`).
pub struct NatHelper {
    /// `alias_name` (core `;alias=` parameter name, "alias").
    pub alias_name: String,
    /// `nortpproxy_str` (fix_nated_sdp flag 4).
    pub nortpproxy_str: String,
    /// `append_sdp_oldmediaip` (1).
    pub append_sdp_oldmediaip: bool,
    /// `nat_addr_mode` (1: 192.0.0.0/24 counts as private).
    pub nat_addr_mode: i64,
    /// AVP name of `received_avp` (fix_nated_register's target).
    pub received_avp: Option<String>,
    /// NAT keepalives.
    pub ping: natping::Pinger,
}

impl NatHelper {
    /// Read `[modparam.nathelper]`.
    pub fn from_modparams(p: &ModParams) -> NatHelper {
        NatHelper {
            alias_name: p
                .get_str("nathelper", "alias_name")
                .filter(|s| !s.is_empty())
                .unwrap_or("alias")
                .to_string(),
            nortpproxy_str: p
                .get_str("nathelper", "nortpproxy_str")
                .unwrap_or("a=nortpproxy:yes")
                .to_string(),
            append_sdp_oldmediaip: p.get_int("nathelper", "append_sdp_oldmediaip").unwrap_or(1)
                != 0,
            nat_addr_mode: p.get_int("nathelper", "nat_addr_mode").unwrap_or(1),
            received_avp: p
                .get_str("nathelper", "received_avp")
                .map(crate::modules::registrar::params::avp_name),
            ping: natping::Pinger::new(natping::PingCfg::from_modparams(p)),
        }
    }
}

/// Per-message nathelper state.
#[derive(Default, Debug)]
pub struct NatCtx {
    /// The first Contact URI as rewritten by fix_nated_contact / *_contact_alias: the
    /// registrar saves it, and a second rewrite is refused (as Kamailio does).
    pub contact_uri: Option<String>,
}

/// Module parameters (nathelper.c `params[]`).
pub const PARAMS: ModuleParams = ModuleParams {
    module: "nathelper",
    params: &[
        ("natping_interval", ParamKind::Int),
        ("ping_nated_only", ParamKind::Int),
        ("nortpproxy_str", ParamKind::Str),
        ("received_avp", ParamKind::Str),
        ("force_socket", ParamKind::Str),
        ("sipping_from", ParamKind::Str),
        ("sipping_method", ParamKind::Str),
        ("sipping_bflag", ParamKind::Int),
        ("natping_disable_bflag", ParamKind::Int),
        ("natping_processes", ParamKind::Int),
        ("natping_socket", ParamKind::Str),
        ("keepalive_timeout", ParamKind::Int),
        ("udpping_from_path", ParamKind::Int),
        ("ignore_path", ParamKind::Int),
        ("append_sdp_oldmediaip", ParamKind::Int),
        ("filter_server_id", ParamKind::Int),
        ("nat_addr_mode", ParamKind::Int),
        ("alias_name", ParamKind::Str),
    ],
};

/// Config checks: values Kamailio would refuse at start-up, named by key.
pub fn validate(p: &ModParams) -> Result<(), (String, String)> {
    let key = |n: &str| format!("modparam.nathelper.{n}");
    for n in ["sipping_bflag", "natping_disable_bflag"] {
        if let Some(b) = p.get_int("nathelper", n) {
            if !(-1..64).contains(&b) {
                return Err((key(n), format!("{b} is not a branch flag (0..63, or -1)")));
            }
        }
    }
    for n in ["natping_interval", "keepalive_timeout"] {
        if let Some(v) = p.get_int("nathelper", n) {
            if v < 0 {
                return Err((key(n), format!("{v} is negative")));
            }
        }
    }
    if let Some(m) = p.get_int("nathelper", "nat_addr_mode") {
        if !(0..=1).contains(&m) {
            return Err((key("nat_addr_mode"), format!("{m} is not 0 or 1")));
        }
    }
    let sipping = p.get_int("nathelper", "sipping_bflag").unwrap_or(-1) >= 0;
    if sipping
        && p.get_str("nathelper", "sipping_from")
            .unwrap_or("")
            .is_empty()
    {
        return Err((
            key("sipping_from"),
            "sipping_bflag is set: SIP pings need a From URI (e.g. \"sip:pinger@example.com\")"
                .into(),
        ));
    }
    if let Some(f) = p
        .get_str("nathelper", "sipping_from")
        .filter(|f| !f.is_empty())
    {
        if crate::sip::Uri::parse(f.as_bytes()).is_err() {
            return Err((key("sipping_from"), format!("{f:?} is not a SIP URI")));
        }
    }
    if p.get_int("nathelper", "udpping_from_path").unwrap_or(0) != 0 {
        tracing::warn!("modparam.nathelper.udpping_from_path needs raw sockets: ksrd ignores it");
    }
    Ok(())
}

fn nat_uac_test(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(uac_test::nat_uac_test(ctx, a.int(0)))
}

fn fix_nated_contact(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(contact::fix_nated_contact(ctx))
}

/// `fix_nated_register()`: the source address goes into `received_avp`; the registrar saves it
/// with the binding and lookup sends there (nathelper.c fix_nated_register).
fn fix_nated_register(ctx: &mut RouteCtx, _: &Args) -> Val {
    let Some(name) = ctx.core.nathelper.received_avp.clone() else {
        return Val::Int(1);
    };
    let uri = contact::src_uri(ctx.ep.remote, ctx.ep.proto);
    ctx.avps.entry(name).or_default().push(PvVal::Str(uri));
    Val::Int(1)
}

fn set_contact_alias(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(contact::set_contact_alias(ctx, false))
}
fn set_contact_alias_trim(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(contact::set_contact_alias(ctx, true))
}
fn add_contact_alias(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(contact::add_contact_alias(ctx))
}
fn add_contact_alias_addr(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(contact::add_contact_alias_addr(
        ctx,
        a.str(0),
        a.str(1),
        a.str(2),
    ))
}
fn handle_ruri_alias(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(contact::handle_ruri_alias(ctx, 0))
}
fn handle_ruri_alias_mode(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(contact::handle_ruri_alias(ctx, a.int(0)))
}
fn is_rfc1918(ctx: &mut RouteCtx, a: &Args) -> Val {
    let s = a.str(0);
    if s.is_empty() {
        tracing::error!("is_rfc1918: empty address");
        return Val::Int(-2);
    }
    let mode = ctx.core.nathelper.nat_addr_mode;
    Val::Int(if nets::is_private_text(s, mode) == Some(true) {
        1
    } else {
        -1
    })
}
fn add_rcv_param(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(contact::add_rcv_param(ctx, a.int(0) != 0))
}
fn fix_nated_sdp(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(sdp::fix_nated_sdp(ctx, a.int(0), None))
}
fn fix_nated_sdp_ip(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(sdp::fix_nated_sdp(ctx, a.int(0), Some(a.str(1))))
}
fn set_alias_to_pv(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(contact::set_alias_to_pv(ctx, a.str(0)))
}

/// `KSR.nathelper.*` exports (nathelper.c sr_kemi_nathelper_exports).
pub static EXPORTS: &[Export] = &[
    ex(
        "nathelper",
        "nat_uac_test",
        &[("flags", Int)],
        Int,
        "1 if any selected test (bits 1..512) sees the sender behind a NAT, else -1",
        nat_uac_test,
    ),
    ex(
        "nathelper",
        "fix_nated_contact",
        &[],
        Int,
        "Rewrite the Contact URI's host:port to the source address",
        fix_nated_contact,
    ),
    ex(
        "nathelper",
        "fix_nated_register",
        &[],
        Int,
        "Put the source address into received_avp for registrar.save",
        fix_nated_register,
    ),
    ex(
        "nathelper",
        "set_contact_alias",
        &[],
        Int,
        "Append ;alias=ip~port~proto of the source address to the Contact URI",
        set_contact_alias,
    ),
    ex(
        "nathelper",
        "set_contact_alias_trim",
        &[],
        Int,
        "As set_contact_alias, removing existing alias parameters first",
        set_contact_alias_trim,
    ),
    ex(
        "nathelper",
        "handle_ruri_alias",
        &[],
        Int,
        "Take ;alias= off the R-URI and set $du from it: 1 done, 2 no alias, -1 error",
        handle_ruri_alias,
    ),
    ex(
        "nathelper",
        "handle_ruri_alias_mode",
        &[("mode", Int)],
        Int,
        "handle_ruri_alias using the first (0) or the last (other) alias",
        handle_ruri_alias_mode,
    ),
    ex(
        "nathelper",
        "is_rfc1918",
        &[("address", Str)],
        Int,
        "1 if the IPv4 address is private (RFC 1918/6598), else -1",
        is_rfc1918,
    ),
    ex(
        "nathelper",
        "add_contact_alias",
        &[],
        Int,
        "Add ;alias= of the source address when it differs from the Contact: 1 added, 2 not needed",
        add_contact_alias,
    ),
    ex(
        "nathelper",
        "add_contact_alias_addr",
        &[("ip", Str), ("port", Str), ("proto", Str)],
        Int,
        "Add ;alias= with the given address to the Contact URI",
        add_contact_alias_addr,
    ),
    ex(
        "nathelper",
        "add_rcv_param",
        &[("upos", Int)],
        Int,
        "Add ;received=\"sip:src\" to each Contact (0) or inside its URI (1)",
        add_rcv_param,
    ),
    ex(
        "nathelper",
        "fix_nated_sdp",
        &[("level", Int)],
        Int,
        "Rewrite SDP for NAT: 1 a=direction:active, 2 c= lines, 4 nortpproxy, 8 o= line",
        fix_nated_sdp,
    ),
    ex(
        "nathelper",
        "fix_nated_sdp_ip",
        &[("level", Int), ("ip", Str)],
        Int,
        "fix_nated_sdp with the given address instead of the source address",
        fix_nated_sdp_ip,
    ),
    ex(
        "nathelper",
        "set_alias_to_pv",
        &[("pvname", Str)],
        Int,
        "Store the Contact's ;alias= as a SIP URI in a pseudo-variable",
        set_alias_to_pv,
    ),
];

/// Register `nathelper.enable_ping` (nathelper.c nathelper_rpc_enable_ping).
pub fn register_rpc(reg: &mut Registry, core: Arc<Core>) {
    reg.register_sync(
        "nathelper.enable_ping",
        "Enable (1) or disable (0) the NAT keepalive pings.",
        move |p| {
            let v = match p.first() {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| RpcError::new(500, "No parameter"))?;
            core.nathelper
                .ping
                .enabled
                .store(v != 0, std::sync::atomic::Ordering::Relaxed);
            Ok(json!(null))
        },
    );
}
