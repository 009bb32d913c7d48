//! The `KSR.rr.*` functions (rr_mod.c `ki_*` wrappers and their return codes).

use super::loose::{self, is_self_uri};
use super::params::{self, Direction};
use super::{RecordKind, RecordRoute, RrConfig, RrState};
use crate::modules::pv::PvVal;
use crate::script::ctx::RouteCtx;
use crate::script::exports::{Args, Val};
use crate::sip::{Scheme, SipMsg, Uri};

/// Kamailio `E_CFG`: `is_direction()` used without `append_fromtag`, or with a bad direction.
const E_CFG: i64 = -6;
/// Room for `add_rr_param()` text before record-routing (record.c `RR_PARAM_BUF_SIZE`).
const RR_PARAM_BUF_SIZE: usize = 512;

fn cfg(ctx: &RouteCtx) -> RrConfig {
    RrConfig::from_params(&ctx.core.cfg.modparams)
}

fn state(ctx: &mut RouteCtx) -> &mut RrState {
    ctx.rr.get_or_insert_with(RrState::default)
}

fn code(c: i64) -> Val {
    Val::Int(c)
}

/// Direction of the current request by our Route's ftag (downstream when unknown).
fn current_direction(ctx: &RouteCtx) -> Direction {
    let Some(msg) = ctx.request() else {
        return Direction::Downstream;
    };
    let myself = &ctx.core.myself;
    let rp = params::routed_params(ctx.rr.as_ref(), msg, &|u| is_self_uri(myself, u));
    let from_tag = msg.from_hdr().ok().and_then(|f| f.tag());
    params::direction(rp.as_deref(), from_tag)
}

/// The Record-Route user for `add_username`: `custom_user_avp`, else the R-URI user (the
/// rewritten R-URI's when the received one has none) — record.c get_custom_user/get_username.
fn username(ctx: &RouteCtx, cfg: &RrConfig, msg: &SipMsg) -> Option<String> {
    if let Some(name) = &cfg.custom_user_avp {
        if let Some(PvVal::Str(s)) = ctx.avps.get(name).and_then(|v| v.last()) {
            if !s.is_empty() {
                return Some(s.clone());
            }
        }
    }
    let user = msg.ruri().ok()?.user.clone().unwrap_or_default();
    match &ctx.new_ruri {
        Some(n) if user.is_empty() => Some(Uri::parse(n.as_bytes()).ok()?.user.unwrap_or_default()),
        _ => Some(user),
    }
}

/// Note a Record-Route for this request; `render` writes it when the request is sent.
fn do_record(ctx: &mut RouteCtx, kind: RecordKind, params: &str) -> Val {
    if ctx.rr.as_ref().is_some_and(|s| s.added) {
        tracing::error!("Double attempt to record-route");
        return code(-1);
    }
    let cfg = cfg(ctx);
    let Some(msg) = ctx.request() else {
        return code(-1);
    };
    let user = if cfg.add_username {
        match username(ctx, &cfg, msg) {
            Some(u) => u,
            None => {
                tracing::error!("record_route: failed to extract username");
                return code(-1);
            }
        }
    } else {
        String::new()
    };
    let tag = if cfg.append_fromtag {
        // An upstream request carries the caller's tag in To: ftag stays the caller's.
        let upstream =
            !matches!(kind, RecordKind::Preset(_)) && current_direction(ctx) == Direction::Upstream;
        let hdr = if upstream {
            msg.to_hdr()
        } else {
            msg.from_hdr()
        };
        match hdr {
            Ok(h) => h.tag().unwrap_or("").to_string(),
            Err(e) => {
                tracing::error!("record_route: {e}");
                return code(-1);
            }
        }
    } else {
        String::new()
    };
    let sips = !cfg.ignore_sips
        && ctx
            .ruri()
            .and_then(|u| Uri::parse(u.as_bytes()).ok())
            .is_some_and(|u| u.scheme == Scheme::Sips);
    let st = state(ctx);
    let mut all_params = params.to_string();
    all_params.push_str(&st.pending_params);
    st.pending_params.clear();
    st.record = Some(RecordRoute {
        kind,
        user,
        tag,
        sips,
        lr: cfg.lr(),
        double_rr: cfg.enable_double_rr,
        params: all_params,
        late_params: String::new(),
    });
    st.added = true;
    code(1)
}

pub(super) fn record_route(ctx: &mut RouteCtx, _: &Args) -> Val {
    do_record(ctx, RecordKind::Socket, "")
}

pub(super) fn record_route_params(ctx: &mut RouteCtx, a: &Args) -> Val {
    do_record(ctx, RecordKind::Socket, a.str(0))
}

pub(super) fn record_route_preset_one(ctx: &mut RouteCtx, a: &Args) -> Val {
    let addr = a.str(0);
    if addr.is_empty() {
        return code(-1);
    }
    do_record(ctx, RecordKind::Preset(vec![addr.to_string()]), "")
}

pub(super) fn record_route_preset(ctx: &mut RouteCtx, a: &Args) -> Val {
    let (addr1, addr2) = (a.str(0), a.str(1));
    if addr1.is_empty() {
        return code(-1);
    }
    if ctx.rr.as_ref().is_some_and(|s| s.added) {
        tracing::error!("Double attempt to record-route");
        return code(-1);
    }
    if !addr2.is_empty() && cfg(ctx).enable_double_rr == 0 {
        tracing::error!(
            "Attempt to double record-route while 'enable_double_rr' param is disabled"
        );
        return code(-1);
    }
    let mut addrs = vec![addr1.to_string()];
    if !addr2.is_empty() {
        addrs.push(addr2.to_string());
    }
    do_record(ctx, RecordKind::Preset(addrs), "")
}

pub(super) fn record_route_advertised_address(ctx: &mut RouteCtx, a: &Args) -> Val {
    let addr = a.str(0);
    if addr.is_empty() {
        return code(-1);
    }
    do_record(ctx, RecordKind::Advertised(addr.to_string()), "")
}

pub(super) fn add_rr_param(ctx: &mut RouteCtx, a: &Args) -> Val {
    let p = a.str(0);
    let st = state(ctx);
    if let Some(rec) = st.record.as_mut() {
        rec.late_params.push_str(p);
        return code(1);
    }
    if st.pending_params.len() + p.len() > RR_PARAM_BUF_SIZE {
        tracing::error!("maximum size of rr_param_buf exceeded");
        return code(-1);
    }
    st.pending_params.push_str(p);
    code(1)
}

pub(super) fn remove_record_route(ctx: &mut RouteCtx, _: &Args) -> Val {
    // Like Kamailio, FL_RR_ADDED stays set: record-routing again fails.
    if let Some(st) = ctx.rr.as_mut() {
        st.record = None;
    }
    code(1)
}

/// Run loose routing and keep what it decided in the context.
fn route_with(ctx: &mut RouteCtx, mode: i64) -> i64 {
    let double_rr = cfg(ctx).enable_double_rr != 0;
    let Some(ruri) = ctx.ruri().map(|c| c.into_owned()) else {
        return loose::RR_ERROR;
    };
    let core = ctx.core.clone();
    let Some(msg) = ctx.msg.as_ref() else {
        return loose::RR_ERROR;
    };
    let is_me = |u: &Uri| is_self_uri(&core.myself, u);
    let r = loose::loose_route(msg, &ruri, mode, double_rr, &is_me, &mut ctx.edits);
    if let Some(u) = r.new_ruri {
        ctx.new_ruri = Some(u);
    }
    if let Some(d) = r.dst_uri {
        ctx.dst_uri = Some(d);
    }
    let st = state(ctx);
    st.routed_params = r.routed_params;
    st.route_addr |= r.route_addr;
    r.code
}

pub(super) fn loose_route(ctx: &mut RouteCtx, _: &Args) -> Val {
    // KEMI loose_route ignores the loose_route_mode parameter (rr_mod.c exports loose_route itself).
    code(route_with(ctx, 0))
}

pub(super) fn loose_route_mode(ctx: &mut RouteCtx, a: &Args) -> Val {
    code(route_with(ctx, a.int(0)))
}

pub(super) fn loose_route_preloaded(ctx: &mut RouteCtx, _: &Args) -> Val {
    code(if route_with(ctx, 0) == loose::RR_PRELOADED {
        1
    } else {
        -1
    })
}

pub(super) fn check_route_param(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(msg) = ctx.request() else {
        return code(-1);
    };
    let myself = &ctx.core.myself;
    let Some(rp) = params::routed_params(ctx.rr.as_ref(), msg, &|u| is_self_uri(myself, u)) else {
        return code(-1);
    };
    match params::params_match(a.str(0), &rp) {
        Ok(true) => code(1),
        Ok(false) => code(-1),
        Err(e) => {
            tracing::error!("check_route_param: bad re {:?}: {e}", a.str(0));
            code(-1)
        }
    }
}

pub(super) fn is_direction(ctx: &mut RouteCtx, a: &Args) -> Val {
    if !cfg(ctx).append_fromtag {
        tracing::error!(
            "usage of \"is_direction\" function requires parameter \"append_fromtag\" enabled"
        );
        return code(E_CFG);
    }
    let Some(want) = Direction::parse(a.str(0)) else {
        tracing::error!(
            "unknown direction {:?} - use 'downstream' or 'upstream'",
            a.str(0)
        );
        return code(E_CFG);
    };
    code(if current_direction(ctx) == want {
        1
    } else {
        -1
    })
}

pub(super) fn next_hop_route(ctx: &mut RouteCtx, _: &Args) -> Val {
    code(if ctx.rr.as_ref().is_some_and(|s| s.route_addr) {
        1
    } else {
        -1
    })
}
