//! `KSR.tm.*` (Kamailio src/modules/tm/tm.c `tm_kemi_exports`): names, parameters and return
//! codes as Kamailio's.

use std::time::{Duration, Instant};

use super::key::ServerKey;
use super::relay::{cancel_pending, send_branches, BranchSpec};
use super::txn::{Saved, Txn};
use super::uas::{self, new_tran, NewTran};
use super::{lock_from_python, reply};
use crate::core::Core;
use crate::script::ctx::{RouteCtx, RouteKind};
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use crate::sip::Method;
use crate::transport::Proto;

fn int(v: i64) -> Val {
    Val::Int(v)
}
fn b(x: bool) -> Val {
    Val::Int(if x { 1 } else { -1 })
}

/// Run `f` on the transaction of the current route: the locked one of a reply/failure route,
/// or the one the request route created.
pub fn with_tx<R>(ctx: &mut RouteCtx, f: impl FnOnce(&Core, &mut Txn) -> R) -> Option<R> {
    let core = ctx.core.clone();
    if let Some(g) = ctx.tm.tx.as_mut() {
        return Some(f(&core, g));
    }
    let t = ctx.tm.t.clone()?;
    let mut g = lock_from_python(&t);
    Some(f(&core, &mut g))
}

/// Stateful relay of the current request (`t_relay` and its variants).
pub fn relay(ctx: &mut RouteCtx, uri: Option<String>, proto: Option<Proto>) -> i64 {
    let core = ctx.core.clone();
    let Some(method) = ctx.request().map(|m| m.method()) else {
        return -1;
    };
    match (method, ctx.kind) {
        (Method::Ack, _) => {
            // An ACK (for a 2xx) is relayed statelessly: it has no transaction of its own.
            if let Some(p) = proto {
                let target = uri
                    .or_else(|| ctx.dst_uri.clone())
                    .or_else(|| ctx.ruri().map(|c| c.into_owned()))
                    .unwrap_or_default();
                let u = with_transport(&target, p);
                return ok(crate::core::forward::forward_request(ctx, Some(&u)).is_ok());
            }
            return ok(crate::core::forward::forward_request(ctx, uri.as_deref()).is_ok());
        }
        (Method::Cancel, RouteKind::Request) => return relay_cancel(ctx),
        _ => {}
    }
    let Some(ruri) = ctx.ruri().map(|c| c.into_owned()) else {
        return -1;
    };
    let mut specs = Vec::with_capacity(1 + ctx.tm.branches.len());
    if ruri_is_new(ctx) || uri.is_some() {
        specs.push(BranchSpec {
            uri: ruri,
            dst_uri: uri.or_else(|| ctx.dst_uri.clone()),
            bflags: ctx.bflags,
            q: None,
            proto,
        });
    }
    specs.extend(ctx.tm.branches.drain(..).map(|mut b| {
        b.proto = b.proto.or(proto);
        b
    }));
    if specs.is_empty() {
        tracing::error!(
            "t_relay: no destination (the R-URI was already used and no branch was appended)"
        );
        return -1;
    }
    mark_consumed(ctx);
    let saved = Saved {
        new_ruri: ctx.new_ruri.clone(),
        dst_uri: ctx.dst_uri.clone(),
        edits: ctx.forward_edits(),
        force_rport: ctx.force_rport,
        flags: ctx.flags,
        rr: ctx.rr.clone(),
    };
    let cb = std::mem::take(&mut ctx.tm.cb);
    let fr = ctx.tm.fr;
    let avps = ctx.avps.clone();
    let xavps = ctx.xavps.clone();
    let no_internal_reply = ctx.tm.no_internal_reply;
    if matches!(ctx.kind, RouteKind::Failure | RouteKind::BranchFailure) {
        let Some(g) = ctx.tm.tx.as_mut() else {
            return -1;
        };
        merge_cb(&mut g.cb, cb);
        g.saved = saved;
        g.round_start = g.branches.len();
        if let Some(route) = g.cb.on_branch.clone() {
            ctx.tm.pending_relay = Some(PendingRelay {
                tx: None,
                specs,
                route,
                internal_reply: false,
            });
            return 1;
        }
        return match send_branches(&core, g, &specs) {
            Ok(_) => 1,
            Err(_) => -1,
        };
    }
    if ctx.kind != RouteKind::Request {
        return -1;
    }
    let tx = match ctx.tm.t.clone() {
        Some(t) => t,
        None => {
            let Some(msg) = ctx.request() else { return -1 };
            match new_tran(
                &core,
                msg,
                &ctx.ep,
                ctx.force_rport,
                ctx.req_key,
                ctx.tm.opts,
            ) {
                NewTran::Created(t) => {
                    ctx.tm.t = Some(t.clone());
                    t
                }
                // Kamailio: a retransmission absorbed by t_relay counts as success.
                NewTran::Retransmission => return 1,
                NewTran::Error => return -1,
            }
        }
    };
    let mut g = lock_from_python(&tx);
    if !g.branches.is_empty() || g.final_sent() {
        tracing::error!("t_relay: the transaction was already relayed or answered");
        return -1;
    }
    g.saved = saved;
    merge_cb(&mut g.cb, cb);
    if let Some((inv, nonin)) = fr {
        g.fr_inv = inv.or(g.fr_inv);
        g.fr = nonin.or(g.fr);
    }
    g.avps = avps;
    g.xavps = xavps;
    g.contacts = std::mem::take(&mut ctx.tm.contacts);
    if let Some(route) = g.cb.on_branch.clone() {
        // Branch routes are Python: they run right after this KSR call returns.
        drop(g);
        ctx.tm.pending_relay = Some(PendingRelay {
            tx: Some(tx),
            specs,
            route,
            internal_reply: !no_internal_reply,
        });
        return 1;
    }
    let r = send_branches(&core, &mut g, &specs);
    relay_failed(&core, &mut g, r.err(), !no_internal_reply, ctx)
}

/// A t_relay whose branches run a branch route first (see `tm::branch_route`).
pub struct PendingRelay {
    /// The transaction (None in a failure route: it is the locked `ctx.tm.tx`).
    pub tx: Option<std::sync::Arc<super::TxCell>>,
    /// The branches to create.
    pub specs: Vec<BranchSpec>,
    /// The branch route's Python name.
    pub route: String,
    /// Send 477/478 when no branch goes out.
    pub internal_reply: bool,
}

/// t_relay's result: 1, or -1 after the internal error reply (477/478) when nothing went out.
pub fn relay_failed(
    core: &Core,
    g: &mut Txn,
    err: Option<crate::core::forward::FwdError>,
    internal_reply: bool,
    ctx: &mut RouteCtx,
) -> i64 {
    let Some(e) = err else { return 1 };
    tracing::error!(error = %e, "t_relay failed");
    if internal_reply {
        let (code, reason) = match e {
            crate::core::forward::FwdError::BadUri(_)
            | crate::core::forward::FwdError::Resolve(_) => (478, "Unresolvable destination"),
            _ => (477, "Unfortunately error on sending to next hop occurred"),
        };
        uas::send_local(core, g, code, reason, b"", b"");
        ctx.replied = true;
    }
    -1
}

/// The Request-URI (or `$du`) changed since it was last used for a branch.
fn ruri_is_new(ctx: &RouteCtx) -> bool {
    match &ctx.tm.consumed {
        None => true,
        Some((ru, du)) => *ru != ctx.new_ruri || *du != ctx.dst_uri,
    }
}

/// Remember the current `$ru`/`$du` as used for a branch.
fn mark_consumed(ctx: &mut RouteCtx) {
    ctx.tm.consumed = Some((ctx.new_ruri.clone(), ctx.dst_uri.clone()));
}

/// `append_branch` (corex): add `uri` (or the current `$ru`) with `$du`, q and branch flags to
/// the destination set; 1 or -1.
pub fn append_branch(ctx: &mut RouteCtx, uri: Option<&str>, q: Option<&str>) -> i64 {
    let q = match q.filter(|q| !q.is_empty()) {
        None => None,
        Some(s) => match s.trim().parse::<f32>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Some((v * 1000.0).round() as i32),
            _ => {
                tracing::error!(q = s, "append_branch: bad q value");
                return -1;
            }
        },
    };
    let target = match uri.filter(|u| !u.is_empty()) {
        Some(u) => u.to_string(),
        None => match ctx.ruri() {
            Some(u) => u.into_owned(),
            None => return -1,
        },
    };
    ctx.tm.branches.push(BranchSpec {
        uri: target,
        dst_uri: ctx.dst_uri.clone(),
        bflags: ctx.bflags,
        q,
        proto: None,
    });
    if uri.is_none_or(str::is_empty) {
        // Kamailio (core/action.c APPEND_BRANCH_T): the R-URI moved into the set is consumed,
        // so t_relay does not send it twice; $du and branch flags start afresh.
        ctx.dst_uri = None;
        ctx.bflags = 0;
        mark_consumed(ctx);
    }
    1
}

fn ok(x: bool) -> i64 {
    if x {
        1
    } else {
        -1
    }
}

fn merge_cb(into: &mut super::txn::Callbacks, from: super::txn::Callbacks) {
    if from.on_reply.is_some() {
        into.on_reply = from.on_reply;
    }
    if from.on_failure.is_some() {
        into.on_failure = from.on_failure;
    }
    if from.on_branch.is_some() {
        into.on_branch = from.on_branch;
    }
    if from.on_branch_failure.is_some() {
        into.on_branch_failure = from.on_branch_failure;
    }
}

/// `uri` with its transport parameter set to `p`.
fn with_transport(uri: &str, p: Proto) -> String {
    match crate::sip::Uri::parse(uri.as_bytes()) {
        Ok(mut u) => {
            u.set_param("transport", Some(p.as_str()));
            u.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

/// A CANCEL in the request route: answer it, cancel the INVITE's branches (RFC 3261 §16.10);
/// 481 when there is no such INVITE transaction.
fn relay_cancel(ctx: &mut RouteCtx) -> i64 {
    let core = ctx.core.clone();
    let Some(msg) = ctx.request() else { return -1 };
    let inv = ServerKey::invite_of(msg).and_then(|k| core.tm.table.get(&k));
    let Some(tx) = inv else {
        crate::modules::sl::reply(ctx, 481, "Call/Transaction Does Not Exist");
        return 1;
    };
    crate::modules::sl::reply(ctx, 200, "canceling");
    let mut g = lock_from_python(&tx);
    g.canceled = true;
    if !g.final_sent() {
        cancel_pending(&core, &mut g, None);
        if g.branches.is_empty() {
            uas::send_local(&core, &mut g, 487, "Request Terminated", b"", b"");
        }
    }
    1
}

fn t_relay(ctx: &mut RouteCtx, _: &Args) -> Val {
    int(relay(ctx, None, None))
}
fn t_relay_to_flags(ctx: &mut RouteCtx, _: &Args) -> Val {
    int(relay(ctx, None, None))
}
fn t_relay_to_proto(ctx: &mut RouteCtx, a: &Args) -> Val {
    match Proto::parse(&a.str(0).to_ascii_lowercase()) {
        Some(p) => int(relay(ctx, None, Some(p))),
        None => int(-1),
    }
}
fn t_relay_to_proto_addr(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(p) = Proto::parse(&a.str(0).to_ascii_lowercase()) else {
        return int(-1);
    };
    let host = a.str(1);
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let uri = format!("sip:{host}:{};transport={}", a.int(2), p.as_str());
    int(relay(ctx, Some(uri), Some(p)))
}
/// `proto:host:port` (proto and port optional) as a SIP URI.
fn proxy_uri(s: &str) -> Option<(String, Option<Proto>)> {
    let (proto, rest) = match s.split_once(':') {
        Some((p, r)) if Proto::parse(&p.to_ascii_lowercase()).is_some() => {
            (Proto::parse(&p.to_ascii_lowercase()), r)
        }
        _ => (None, s),
    };
    if rest.is_empty() {
        return None;
    }
    let uri = match proto {
        Some(p) => format!("sip:{rest};transport={}", p.as_str()),
        None => format!("sip:{rest}"),
    };
    Some((uri, proto))
}
fn t_relay_to_proxy(ctx: &mut RouteCtx, a: &Args) -> Val {
    match proxy_uri(a.str(0)) {
        Some((u, p)) => int(relay(ctx, Some(u), p)),
        None => int(-1),
    }
}
fn t_relay_to_proxy_flags(ctx: &mut RouteCtx, a: &Args) -> Val {
    t_relay_to_proxy(ctx, a)
}

/// Arm a callback on the route state and, when the transaction already exists, on it too.
fn set_cb(
    ctx: &mut RouteCtx,
    name: &str,
    which: fn(&mut super::txn::Callbacks) -> &mut Option<String>,
) -> Val {
    let v = (!name.is_empty()).then(|| name.to_string());
    *which(&mut ctx.tm.cb) = v.clone();
    if ctx.kind == RouteKind::Request {
        with_tx(ctx, |_, g| *which(&mut g.cb) = v);
    }
    int(1)
}
fn t_on_reply(ctx: &mut RouteCtx, a: &Args) -> Val {
    set_cb(ctx, a.str(0), |c| &mut c.on_reply)
}
fn t_on_failure(ctx: &mut RouteCtx, a: &Args) -> Val {
    set_cb(ctx, a.str(0), |c| &mut c.on_failure)
}
fn t_on_branch(ctx: &mut RouteCtx, a: &Args) -> Val {
    set_cb(ctx, a.str(0), |c| &mut c.on_branch)
}
fn t_on_branch_failure(ctx: &mut RouteCtx, a: &Args) -> Val {
    set_cb(ctx, a.str(0), |c| &mut c.on_branch_failure)
}
fn t_is_set(ctx: &mut RouteCtx, a: &Args) -> Val {
    let pick = |c: &super::txn::Callbacks| match a.str(0).as_bytes().first() {
        Some(b'b') => c.on_branch.is_some(),
        Some(b'f') => c.on_failure.is_some(),
        Some(b'o') => c.on_reply.is_some(),
        _ => false,
    };
    let local = pick(&ctx.tm.cb);
    b(local || with_tx(ctx, |_, g| pick(&g.cb)).unwrap_or(false))
}

fn t_check_trans(ctx: &mut RouteCtx, _: &Args) -> Val {
    if matches!(
        ctx.kind,
        RouteKind::Failure | RouteKind::Branch | RouteKind::BranchFailure
    ) || (ctx.kind == RouteKind::Reply && ctx.tm.tx.is_some())
    {
        return int(1);
    }
    let core = ctx.core.clone();
    let Some(msg) = ctx.msg.as_ref() else {
        return int(-1);
    };
    if !msg.is_request() {
        return b(reply::lookup(&core, msg).is_some());
    }
    match msg.method() {
        Method::Cancel => {
            let found = ServerKey::invite_of(msg).and_then(|k| core.tm.table.get(&k));
            b(found.is_some())
        }
        Method::Ack => {
            let Some(tx) = ServerKey::from_request(msg).and_then(|k| core.tm.table.get(&k)) else {
                return int(-1);
            };
            let g = lock_from_python(&tx);
            // An ACK to a negative reply is the transaction's: absorbed, stop (0).
            if g.uas_code >= 300 {
                int(0)
            } else {
                int(1)
            }
        }
        _ => {
            if ctx.tm.t.is_some() {
                return int(1);
            }
            let Some(tx) = ServerKey::from_request(msg).and_then(|k| core.tm.table.get(&k)) else {
                return int(-1);
            };
            let g = lock_from_python(&tx);
            if let Some(r) = g.last_reply.clone() {
                let _ = core
                    .sender
                    .send(g.ep.proto, g.reply_dest, Some(g.ep.local), &r);
            }
            int(0)
        }
    }
}

fn t_newtran(ctx: &mut RouteCtx, _: &Args) -> Val {
    if ctx.tm.t.is_some() {
        return int(1);
    }
    if ctx.kind != RouteKind::Request {
        return int(-1);
    }
    let core = ctx.core.clone();
    let Some(msg) = ctx.request() else {
        return int(-1);
    };
    match new_tran(
        &core,
        msg,
        &ctx.ep,
        ctx.force_rport,
        ctx.req_key,
        ctx.tm.opts,
    ) {
        NewTran::Created(t) => {
            ctx.tm.t = Some(t);
            int(1)
        }
        NewTran::Retransmission => int(0),
        NewTran::Error => int(-1),
    }
}

/// Stateful reply on the route's transaction; -1 when there is none.
pub fn t_reply_code(ctx: &mut RouteCtx, code: i64, reason: &str) -> i64 {
    if !(100..=699).contains(&code) {
        return -1;
    }
    let hdrs = ctx.reply_hdrs.clone();
    let sent = with_tx(ctx, |core, g| {
        uas::send_local(core, g, code as u16, reason, &hdrs, b"")
    });
    match sent {
        Some(true) => {
            if code >= 200 {
                ctx.replied = true;
            }
            1
        }
        _ => -1,
    }
}
fn t_reply(ctx: &mut RouteCtx, a: &Args) -> Val {
    int(t_reply_code(ctx, a.int(0), a.str(1)))
}
fn t_send_reply(ctx: &mut RouteCtx, a: &Args) -> Val {
    if ctx.tm.t.is_none() && ctx.tm.tx.is_none() {
        match t_newtran(ctx, a) {
            Val::Int(1) => {}
            Val::Int(0) => return int(0),
            _ => return int(-1),
        }
    }
    t_reply(ctx, a)
}
fn t_release(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(with_tx(ctx, uas::delete).is_some())
}

fn t_is_canceled(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(with_tx(ctx, |_, g| g.canceled).unwrap_or(false))
}
fn t_is_expired(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(with_tx(ctx, |core, g| {
        let life = if g.method == Method::Invite {
            core.tm.params.max_inv_lifetime
        } else {
            core.tm.params.max_noninv_lifetime
        };
        g.created_at + life <= Instant::now()
    })
    .unwrap_or(false))
}
fn branch_test(ctx: &mut RouteCtx, f: fn(&super::txn::Branch) -> bool) -> Val {
    let idx = ctx.tm.branch_idx;
    b(with_tx(ctx, |_, g| g.branches.get(idx).is_some_and(f)).unwrap_or(false))
}
fn any_test(ctx: &mut RouteCtx, f: fn(&super::txn::Branch) -> bool) -> Val {
    b(with_tx(ctx, |_, g| g.branches.iter().any(f)).unwrap_or(false))
}
fn replied(b: &super::txn::Branch) -> bool {
    b.last_code > 0
}
fn t_branch_timeout(ctx: &mut RouteCtx, _: &Args) -> Val {
    branch_test(ctx, |b| b.timed_out)
}
fn t_branch_replied(ctx: &mut RouteCtx, _: &Args) -> Val {
    branch_test(ctx, replied)
}
fn t_any_timeout(ctx: &mut RouteCtx, _: &Args) -> Val {
    any_test(ctx, |b| b.timed_out)
}
fn t_any_replied(ctx: &mut RouteCtx, _: &Args) -> Val {
    any_test(ctx, replied)
}
fn t_grep_status(ctx: &mut RouteCtx, a: &Args) -> Val {
    let code = a.int(0);
    b(with_tx(ctx, |_, g| {
        g.branches
            .iter()
            .any(|br| br.last_code as i64 == code || super::relay::branch_code(br) as i64 == code)
    })
    .unwrap_or(false))
}

/// The status `t_check_status` looks at: the reply being handled, the winning one in a
/// failure route, or the last one sent upstream.
fn current_status(ctx: &mut RouteCtx) -> Option<u16> {
    if let Some((c, _)) = ctx.tm.reply {
        return Some(c);
    }
    with_tx(ctx, |_, g| g.uas_code).filter(|c| *c > 0)
}
fn t_check_status(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(code) = current_status(ctx) else {
        return int(-1);
    };
    match regex::Regex::new(a.str(0)) {
        Ok(re) => b(re.is_match(&code.to_string())),
        Err(e) => {
            tracing::error!(error = %e, "t_check_status: bad regular expression");
            int(-1)
        }
    }
}
fn t_get_status_code(ctx: &mut RouteCtx, _: &Args) -> Val {
    int(current_status(ctx).map(i64::from).unwrap_or(-1))
}
fn t_get_branch_index(ctx: &mut RouteCtx, _: &Args) -> Val {
    int(ctx.tm.branch_idx as i64)
}

fn ms(v: i64) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v as u64))
}
fn set_fr(ctx: &mut RouteCtx, inv: Option<Duration>, nonin: Option<Duration>) -> Val {
    ctx.tm.fr = Some((inv, nonin));
    with_tx(ctx, |_, g| {
        g.fr_inv = inv;
        g.fr = nonin;
    });
    int(1)
}
fn t_set_fr(ctx: &mut RouteCtx, a: &Args) -> Val {
    set_fr(ctx, ms(a.int(0)), ms(a.int(1)))
}
fn t_set_fr_inv(ctx: &mut RouteCtx, a: &Args) -> Val {
    let nonin = ctx.tm.fr.and_then(|f| f.1);
    set_fr(ctx, ms(a.int(0)), nonin)
}
fn t_reset_fr(ctx: &mut RouteCtx, _: &Args) -> Val {
    set_fr(ctx, None, None)
}
fn t_set_disable_internal_reply(ctx: &mut RouteCtx, a: &Args) -> Val {
    ctx.tm.no_internal_reply = a.int(0) != 0;
    int(1)
}
fn t_exists(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(ctx.tm.t.is_some() || ctx.tm.tx.is_some())
}
fn t_lookup_cancel(ctx: &mut RouteCtx, _: &Args) -> Val {
    let core = ctx.core.clone();
    let found = ctx
        .request()
        .filter(|m| m.method() == Method::Cancel)
        .and_then(ServerKey::invite_of)
        .and_then(|k| core.tm.table.get(&k));
    b(found.is_some())
}
fn t_lookup_request(ctx: &mut RouteCtx, _: &Args) -> Val {
    let core = ctx.core.clone();
    let found = ctx
        .request()
        .and_then(ServerKey::from_request)
        .and_then(|k| core.tm.table.get(&k));
    b(found.is_some())
}
fn t_retransmit_reply(ctx: &mut RouteCtx, _: &Args) -> Val {
    b(with_tx(ctx, |core, g| match g.last_reply.clone() {
        Some(r) => core
            .sender
            .send(g.ep.proto, g.reply_dest, Some(g.ep.local), &r)
            .is_ok(),
        None => false,
    })
    .unwrap_or(false))
}

/// Change a per-transaction setting: on the transaction if it exists, and for the one `t_relay`
/// or `t_newtran` will create.
fn set_opt(ctx: &mut RouteCtx, f: impl Fn(&mut super::txn::TxOpts)) -> Val {
    f(&mut ctx.tm.opts);
    with_tx(ctx, |_, g| f(&mut g.opts));
    int(1)
}
fn t_set_retr(ctx: &mut RouteCtx, a: &Args) -> Val {
    let (t1, t2) = (ms(a.int(0)), ms(a.int(1)));
    set_opt(ctx, |o| {
        o.t1 = t1;
        o.t2 = t2;
    })
}
fn t_reset_retr(ctx: &mut RouteCtx, _: &Args) -> Val {
    set_opt(ctx, |o| {
        o.t1 = None;
        o.t2 = None;
    })
}
fn t_set_max_lifetime(ctx: &mut RouteCtx, a: &Args) -> Val {
    let is_invite = ctx.request().is_some_and(|m| m.method() == Method::Invite);
    let life = ms(if is_invite { a.int(0) } else { a.int(1) });
    let r = set_opt(ctx, |o| o.max_lifetime = life);
    // An existing transaction's clean-up timer follows the new lifetime.
    with_tx(ctx, |core, g| {
        if g.uas_code < 200 {
            let left = (g.created_at + g.max_lifetime(&core.tm.params))
                .saturating_duration_since(Instant::now());
            uas::rearm_delete(core, g, left);
        }
    });
    r
}
fn t_reset_max_lifetime(ctx: &mut RouteCtx, _: &Args) -> Val {
    set_opt(ctx, |o| o.max_lifetime = None)
}
fn t_set_auto_inv_100(ctx: &mut RouteCtx, a: &Args) -> Val {
    let v = a.int(0) != 0;
    set_opt(ctx, |o| o.auto_inv_100 = Some(v))
}
fn t_set_disable_6xx(ctx: &mut RouteCtx, a: &Args) -> Val {
    let v = a.int(0) != 0;
    set_opt(ctx, |o| o.disable_6xx = Some(v))
}
fn t_set_disable_failover(ctx: &mut RouteCtx, a: &Args) -> Val {
    let v = a.int(0) != 0;
    set_opt(ctx, |o| o.disable_failover = v)
}
fn t_set_no_e2e_cancel_reason(_: &mut RouteCtx, _: &Args) -> Val {
    // ksrd never copies a Reason header into the CANCELs it sends.
    int(1)
}
fn t_save_lumps(_: &mut RouteCtx, _: &Args) -> Val {
    // Header changes are always kept with the transaction (Saved::edits).
    int(1)
}
fn t_reply_error(ctx: &mut RouteCtx, _: &Args) -> Val {
    int(t_reply_code(ctx, 500, "Server Internal Error"))
}
/// `t_drop_replies(mode)` in a failure route: take earlier replies out of the choice of the
/// final reply: "a" (or "") all, "l" the last round's, "n" none.
fn t_drop_replies(ctx: &mut RouteCtx, a: &Args) -> Val {
    let mode = a.str(0).to_string();
    let r = with_tx(ctx, |_, g| {
        let from = match mode.as_str() {
            "n" => return,
            "l" => g.round_start,
            _ => 0,
        };
        let from = from.min(g.branches.len());
        for b in &mut g.branches[from..] {
            if !b.pending() {
                b.reply_dropped = true;
            }
        }
    });
    b(r.is_some())
}
fn t_drop_replies_all(ctx: &mut RouteCtx, _: &Args) -> Val {
    let r = with_tx(ctx, |_, g| {
        for b in g.branches.iter_mut().filter(|b| !b.pending()) {
            b.reply_dropped = true;
        }
    });
    b(r.is_some())
}
fn t_lookup_cancel_flags(ctx: &mut RouteCtx, a: &Args) -> Val {
    t_lookup_cancel(ctx, a)
}
fn t_load_contacts_mode(ctx: &mut RouteCtx, a: &Args) -> Val {
    match a.int(0) {
        0 => t_load_contacts(ctx, a),
        m => {
            tracing::error!(
                mode = m,
                "t_load_contacts: only mode 0 (standard) is supported"
            );
            int(-1)
        }
    }
}

/// `t_load_contacts`: move the Request-URI and the appended branches into the serial-forking
/// queue, ordered by q (highest first; equal q keeps the order, R-URI first). Nothing to do
/// (1) when there is a single contact. Kamailio tm/t_serial.c `ki_t_load_contacts_mode`.
fn t_load_contacts(ctx: &mut RouteCtx, _: &Args) -> Val {
    if ctx.core.tm.params.contacts_avp.is_none() {
        tracing::error!("t_load_contacts: feature disabled; set [modparam.tm] contacts_avp");
        return int(-1);
    }
    let new = ruri_is_new(ctx);
    let n = ctx.tm.branches.len();
    if n == 0 || (n == 1 && !new) {
        return int(1);
    }
    let mut all = Vec::with_capacity(n + 1);
    if new {
        if let Some(u) = ctx.ruri().map(|c| c.into_owned()) {
            all.push(BranchSpec {
                uri: u,
                dst_uri: ctx.dst_uri.clone(),
                bflags: ctx.bflags,
                q: ctx.tm.ruri_q,
                proto: None,
            });
        }
    }
    all.append(&mut ctx.tm.branches);
    // Unspecified q sorts below every explicit one (Kamailio's Q_UNSPECIFIED is -1).
    all.sort_by_key(|b| std::cmp::Reverse(b.q.unwrap_or(-1)));
    ctx.tm.contacts = all;
    mark_consumed(ctx);
    int(1)
}

/// `t_next_contacts`: take the next group of equal q from the queue: the first becomes
/// `$ru`/`$du`, the others branches. 1 ok, -2 nothing left, -1 disabled.
fn t_next_contacts(ctx: &mut RouteCtx, _: &Args) -> Val {
    if ctx.core.tm.params.contacts_avp.is_none() {
        tracing::error!("t_next_contacts: feature disabled; set [modparam.tm] contacts_avp");
        return int(-1);
    }
    if ctx.tm.contacts.is_empty() {
        return int(-2);
    }
    let q = ctx.tm.contacts[0].q;
    let n = ctx.tm.contacts.iter().take_while(|c| c.q == q).count();
    let mut group: Vec<BranchSpec> = ctx.tm.contacts.drain(..n).collect();
    let first = group.remove(0);
    ctx.new_ruri = Some(first.uri);
    ctx.dst_uri = first.dst_uri;
    ctx.bflags = first.bflags;
    ctx.tm.ruri_q = first.q;
    ctx.tm.consumed = None;
    ctx.tm.branches.extend(group);
    int(1)
}

/// `KSR.tm.*` exports.
pub static EXPORTS: &[Export] = &[
    ex(
        "tm",
        "t_relay",
        &[],
        Int,
        "Relay the request statefully to $du or $ru (and appended branches); 1 ok, <0 error",
        t_relay,
    ),
    ex(
        "tm",
        "t_relay_to_flags",
        &[("flags", Int)],
        Int,
        "t_relay with flags",
        t_relay_to_flags,
    ),
    ex(
        "tm",
        "t_relay_to_proto",
        &[("proto", Str)],
        Int,
        "t_relay forcing the transport (udp, tcp)",
        t_relay_to_proto,
    ),
    ex(
        "tm",
        "t_relay_to_proto_addr",
        &[("proto", Str), ("host", Str), ("port", Int)],
        Int,
        "t_relay to an explicit transport, host and port",
        t_relay_to_proto_addr,
    ),
    ex(
        "tm",
        "t_relay_to_proxy",
        &[("proxy", Str)],
        Int,
        "t_relay to \"proto:host:port\"",
        t_relay_to_proxy,
    ),
    ex(
        "tm",
        "t_relay_to_proxy_flags",
        &[("proxy", Str), ("flags", Int)],
        Int,
        "t_relay to \"proto:host:port\" with flags",
        t_relay_to_proxy_flags,
    ),
    ex(
        "tm",
        "t_on_reply",
        &[("name", Str)],
        Int,
        "Run the Python function `name` for every reply of the transaction",
        t_on_reply,
    ),
    ex(
        "tm",
        "t_on_failure",
        &[("name", Str)],
        Int,
        "Run the Python function `name` when the transaction fails (negative final or timeout)",
        t_on_failure,
    ),
    ex(
        "tm",
        "t_on_branch",
        &[("name", Str)],
        Int,
        "Run the Python function `name` for each outgoing branch",
        t_on_branch,
    ),
    ex(
        "tm",
        "t_on_branch_failure",
        &[("name", Str)],
        Int,
        "Run the Python function `name` when a branch gets a negative final reply",
        t_on_branch_failure,
    ),
    ex(
        "tm",
        "t_is_set",
        &[("target", Str)],
        Int,
        "1 if branch_route, failure_route or onreply_route is armed, else -1",
        t_is_set,
    ),
    ex(
        "tm",
        "t_check_trans",
        &[],
        Int,
        "Transaction lookup: 0 = retransmission/ACK absorbed (stop), 1 found, -1 none",
        t_check_trans,
    ),
    ex(
        "tm",
        "t_newtran",
        &[],
        Int,
        "Create the transaction: 1 created, 0 retransmission absorbed (stop), -1 error",
        t_newtran,
    ),
    ex(
        "tm",
        "t_reply",
        &[("code", Int), ("reason", Str)],
        Int,
        "Stateful reply; the transaction must exist",
        t_reply,
    ),
    ex(
        "tm",
        "t_send_reply",
        &[("code", Int), ("reason", Str)],
        Int,
        "Create the transaction if needed, then reply statefully",
        t_send_reply,
    ),
    ex(
        "tm",
        "t_release",
        &[],
        Int,
        "Remove the transaction now",
        t_release,
    ),
    ex(
        "tm",
        "t_retransmit_reply",
        &[],
        Int,
        "Resend the last reply of the transaction",
        t_retransmit_reply,
    ),
    ex(
        "tm",
        "t_is_canceled",
        &[],
        Int,
        "1 if the transaction was cancelled, else -1",
        t_is_canceled,
    ),
    ex(
        "tm",
        "t_is_expired",
        &[],
        Int,
        "1 if the transaction outlived its maximum lifetime, else -1",
        t_is_expired,
    ),
    ex(
        "tm",
        "t_branch_timeout",
        &[],
        Int,
        "1 if the current branch timed out, else -1",
        t_branch_timeout,
    ),
    ex(
        "tm",
        "t_branch_replied",
        &[],
        Int,
        "1 if the current branch received a reply, else -1",
        t_branch_replied,
    ),
    ex(
        "tm",
        "t_any_timeout",
        &[],
        Int,
        "1 if any branch timed out, else -1",
        t_any_timeout,
    ),
    ex(
        "tm",
        "t_any_replied",
        &[],
        Int,
        "1 if any branch received a reply, else -1",
        t_any_replied,
    ),
    ex(
        "tm",
        "t_grep_status",
        &[("code", Int)],
        Int,
        "1 if any branch received this status code, else -1",
        t_grep_status,
    ),
    ex(
        "tm",
        "t_check_status",
        &[("sexp", Str)],
        Int,
        "1 if the relevant reply code matches the regular expression, else -1",
        t_check_status,
    ),
    ex(
        "tm",
        "t_get_status_code",
        &[],
        Int,
        "The relevant reply code, or -1",
        t_get_status_code,
    ),
    ex(
        "tm",
        "t_get_branch_index",
        &[],
        Int,
        "Index of the current branch",
        t_get_branch_index,
    ),
    ex(
        "tm",
        "t_set_fr",
        &[("fr_inv", Int), ("fr", Int)],
        Int,
        "Per-transaction fr_inv_timer and fr_timer in ms (0 = default)",
        t_set_fr,
    ),
    ex(
        "tm",
        "t_set_fr_inv",
        &[("fr_inv", Int)],
        Int,
        "Per-transaction fr_inv_timer in ms (0 = default)",
        t_set_fr_inv,
    ),
    ex(
        "tm",
        "t_reset_fr",
        &[],
        Int,
        "Back to the configured fr_inv_timer and fr_timer",
        t_reset_fr,
    ),
    ex(
        "tm",
        "t_set_disable_internal_reply",
        &[("state", Int)],
        Int,
        "1: t_relay sends no error reply of its own",
        t_set_disable_internal_reply,
    ),
    ex("tm", "t_load_contacts", &[], Int, "Queue $ru and the branches for serial forking by q (needs modparam contacts_avp); 1 ok, -1 error", t_load_contacts),
    ex("tm", "t_next_contacts", &[], Int, "Load the next highest-q group into $ru and branches; 1 ok, -2 nothing left, -1 error", t_next_contacts),
    ex("tm", "ki_t_load_contacts_mode", &[("mode", Int)], Int, "t_load_contacts with a mode (0 standard; proportional mode 1 is not supported)", t_load_contacts_mode),
    ex("tm", "t_set_retr", &[("t1", Int), ("t2", Int)], Int, "Per-transaction T1 and T2 in ms (0 = module value)", t_set_retr),
    ex("tm", "t_reset_retr", &[], Int, "Back to the configured T1 and T2", t_reset_retr),
    ex("tm", "t_set_max_lifetime", &[("tdi", Int), ("tdni", Int)], Int, "Per-transaction maximum lifetime in ms for INVITE / non-INVITE (0 = module value)", t_set_max_lifetime),
    ex("tm", "t_reset_max_lifetime", &[], Int, "Back to the configured maximum lifetimes", t_reset_max_lifetime),
    ex("tm", "t_set_auto_inv_100", &[("state", Int)], Int, "1/0: send (or not) 100 Trying for this INVITE", t_set_auto_inv_100),
    ex("tm", "t_set_disable_6xx", &[("state", Int)], Int, "1: a 6xx does not cancel the other branches", t_set_disable_6xx),
    ex("tm", "t_set_disable_failover", &[("state", Int)], Int, "1: no failure route runs for this transaction", t_set_disable_failover),
    ex("tm", "t_set_no_e2e_cancel_reason", &[("state", Int)], Int, "Accepted: ksrd does not copy Reason headers into CANCELs", t_set_no_e2e_cancel_reason),
    ex("tm", "t_save_lumps", &[], Int, "Accepted: header changes are always saved with the transaction", t_save_lumps),
    ex("tm", "t_reply_error", &[], Int, "Stateful 500 reply on the transaction", t_reply_error),
    ex("tm", "t_drop_replies", &[("mode", Str)], Int, "In a failure route: drop earlier replies from the final-reply choice (\"a\" all, \"l\" last round, \"n\" none)", t_drop_replies),
    ex("tm", "t_drop_replies_all", &[], Int, "In a failure route: drop every earlier reply from the final-reply choice", t_drop_replies_all),
    ex("tm", "t_lookup_cancel_flags", &[("flags", Int)], Int, "1 if the CANCEL's INVITE transaction exists, else -1", t_lookup_cancel_flags),
    ex(
        "tm",
        "t_exists",
        &[],
        Int,
        "1 if the message has a transaction, else -1",
        t_exists,
    ),
    ex(
        "tm",
        "t_lookup_cancel",
        &[],
        Int,
        "1 if the CANCEL's INVITE transaction exists, else -1",
        t_lookup_cancel,
    ),
    ex(
        "tm",
        "t_lookup_request",
        &[],
        Int,
        "1 if the request's transaction exists, else -1",
        t_lookup_request,
    ),
];
