//! Replies on branches: state updates, reply routes, choosing what goes upstream (RFC 3261
//! §16.7) and failure routes.

use std::sync::Arc;

use super::relay::{cancel_pending, send_ack, send_cancel};
use super::txn::{BranchReply, CancelState, Txn, UacState};
use super::uas::{relay_reply, relay_reply_with_extra, send_local};
use super::{TimerKind, TxCell, TxGuard};
use crate::core::stats::Stat;
use crate::core::Core;
use crate::script::ctx::{RouteCtx, RouteKind};
use crate::sip::{HdrName, Method, SipMsg};
use crate::transport::Endpoint;

/// Runs a Python route by name with the routing context as prepared (the worker's).
pub type Runner<'a> = &'a mut dyn FnMut(&mut RouteCtx, &str);

/// The transaction and branch a reply belongs to, from our Via branch parameter.
pub fn lookup(core: &Core, msg: &SipMsg) -> Option<(Arc<TxCell>, usize)> {
    let branch = msg.vias().ok()?.first()?.branch()?;
    let (id, idx) = core.tm.parse_branch(branch)?;
    let tx = core.tm.table.by_id(id)?;
    Some((tx, idx))
}

/// Reason phrase of a reply ksrd makes up.
pub fn local_reason(code: u16) -> &'static str {
    match code {
        408 => "Request Timeout",
        487 => "Request Terminated",
        480 => "Temporarily Unavailable",
        500 => "Server Internal Error",
        _ => "Server Error",
    }
}

/// Handle a reply that matched branch `idx` of `tx`.
#[allow(clippy::too_many_arguments)]
pub fn on_reply(
    core: &Core,
    ctx: &mut RouteCtx,
    tx: Arc<TxCell>,
    idx: usize,
    msg: SipMsg,
    ep: Endpoint,
    core_reply_route: bool,
    run: Runner<'_>,
) {
    let mut g = tx.lock_arc();
    if g.deleted || idx >= g.branches.len() || g.branches[idx].branch_param.is_empty() {
        return;
    }
    // Our branch is in the Via, but it must be exactly ours (the prefix check was in lookup).
    let top_branch = msg
        .vias()
        .ok()
        .and_then(|v| v.first())
        .and_then(|v| v.branch())
        .unwrap_or("");
    if top_branch != g.branches[idx].branch_param {
        return;
    }
    core.stats.inc(Stat::TmRplReceived);
    let code = msg.status().unwrap_or(0);
    let cseq_method = msg.cseq().map(|c| c.method).unwrap_or(Method::Other);
    if cseq_method == Method::Cancel {
        // The answer to our CANCEL: stop resending it; the INVITE's 487 follows separately.
        let b = &mut g.branches[idx];
        if code >= 200 {
            b.cancel = CancelState::Done;
            core.tm.disarm(&mut b.cancel_retr);
        }
        core.stats.inc(Stat::TmRplAbsorbed);
        return;
    }
    let invite = g.method == Method::Invite;
    if !g.branches[idx].pending() {
        // A retransmitted final: ACK a negative one again; relay every 2xx of an INVITE.
        if invite && code >= 300 {
            send_ack(core, &g.branches[idx], &msg);
        } else if invite && (200..300).contains(&code) {
            relay_reply(core, &mut g, &msg, &Default::default());
            return;
        }
        core.stats.inc(Stat::TmRplAbsorbed);
        return;
    }
    update_branch(core, &mut g, idx, code, &msg);

    // Routes: the core reply route sees every reply, then the transaction's onreply route.
    let on_reply = g.cb.on_reply.clone();
    let reason = String::from_utf8_lossy(msg.reason()).into_owned();
    ctx.begin(RouteKind::Reply, msg, ep);
    ctx.tm.branch_idx = idx;
    ctx.tm.reply = Some((code, reason));
    std::mem::swap(&mut ctx.avps, &mut g.avps);
    std::mem::swap(&mut ctx.xavps, &mut g.xavps);
    ctx.flags = g.saved.flags;
    // The reply's branch flags, as Kamailio's onreply routes see them (isbflagset(FLB_NATB)).
    ctx.bflags = g.branches[idx].bflags;
    ctx.tm.tx = Some(g);
    if core_reply_route {
        run(ctx, "ksr_reply_route");
    }
    if let Some(name) = on_reply.as_deref() {
        ctx.kind = RouteKind::Reply;
        run(ctx, name);
    }
    let Some(mut g) = ctx.tm.tx.take() else {
        ctx.end();
        return;
    };
    std::mem::swap(&mut ctx.avps, &mut g.avps);
    std::mem::swap(&mut ctx.xavps, &mut g.xavps);
    g.saved.flags = ctx.flags;
    if let Some(b) = g.branches.get_mut(idx) {
        b.bflags = ctx.bflags;
    }
    let drop = ctx.drop;
    let edits = ctx.forward_edits();
    let Some(msg) = ctx.end() else { return };

    if code < 200 {
        // Hop-by-hop 100 stays here; a route may drop provisional replies (Kamailio: drop in
        // an onreply route only stops provisional ones).
        if code > 100 && !drop && !g.final_sent() {
            relay_reply(core, &mut g, &msg, &edits);
        } else {
            core.stats.inc(Stat::TmRplAbsorbed);
        }
        return;
    }
    if code < 300 {
        // Every 2xx goes upstream (RFC 3261 §16.7 step 5); the other branches are cancelled.
        if invite || !g.final_sent() {
            relay_reply(core, &mut g, &msg, &edits);
        }
        if invite {
            cancel_pending(core, &mut g, Some(idx));
        }
        return;
    }
    if code >= 600
        && invite
        && !g
            .opts
            .disable_6xx
            .unwrap_or(core.tm.params.disable_6xx_block)
    {
        cancel_pending(core, &mut g, Some(idx));
    }
    let reason = String::from_utf8_lossy(msg.reason()).into_owned();
    g.branches[idx].reply = Some(BranchReply::Received(Box::new(msg), edits));
    let Some(g) = branch_failure(ctx, g, idx, code, reason, run) else {
        return;
    };
    if !g.final_sent() && g.all_final() {
        finalize(core, ctx, g, run);
    }
}

/// State changes a reply causes on its branch, before any route runs.
fn update_branch(core: &Core, g: &mut Txn, idx: usize, code: u16, msg: &SipMsg) {
    let invite = g.method == Method::Invite;
    let p = &core.tm.params;
    let proceeding_fr = g.fr_for(p, true);
    let id = g.id;
    let b = &mut g.branches[idx];
    b.last_code = b.last_code.max(code);
    if code < 200 {
        let first = b.state == UacState::Calling;
        b.state = UacState::Proceeding;
        if invite {
            core.tm.disarm(&mut b.retr);
        }
        if invite && (first || p.restart_fr_on_each_reply) {
            core.tm.disarm(&mut b.fr);
            b.fr = Some(core.tm.arm(
                std::time::Instant::now() + proceeding_fr,
                id,
                TimerKind::UacFr,
                idx,
            ));
        }
        if b.cancel == CancelState::Pending {
            send_cancel(core, g, idx);
        }
        return;
    }
    b.state = UacState::Completed;
    core.tm.disarm(&mut b.retr);
    core.tm.disarm(&mut b.fr);
    if invite && code >= 300 {
        send_ack(core, b, msg);
    }
}

/// The final-response timer of branch `idx` ran out (runs on a worker: it may run Python).
pub fn on_timeout(core: &Core, ctx: &mut RouteCtx, tx: Arc<TxCell>, idx: usize, run: Runner<'_>) {
    let mut g = tx.lock_arc();
    if g.deleted || idx >= g.branches.len() || !g.branches[idx].pending() {
        return;
    }
    let code = if g.canceled { 487 } else { 408 };
    {
        let b = &mut g.branches[idx];
        b.fr = None;
        let was_proceeding = b.state == UacState::Proceeding;
        b.state = UacState::Completed;
        b.timed_out = true;
        core.tm.disarm(&mut b.retr);
        b.reply = Some(BranchReply::Local(code));
        // An INVITE branch that rang but never answered is cancelled (RFC 3261 §16.8).
        let cancel = was_proceeding && b.cancel == CancelState::None;
        if cancel && g.method == Method::Invite {
            send_cancel(core, &mut g, idx);
        }
    }
    let Some(g) = branch_failure(ctx, g, idx, code, local_reason(code).to_string(), run) else {
        return;
    };
    if !g.final_sent() && g.all_final() {
        finalize(core, ctx, g, run);
    }
}

/// Kamailio's reply priority (tm/t_reply.c `get_prio`): lower wins. 6xx first, then 3xx, 4xx
/// (401, 407, 415, 420, 484 preferred: the caller can act on them), then 5xx.
pub(crate) fn prio(code: u16) -> u32 {
    let class = code / 100;
    let xx = (code % 100) as u32;
    let base = match class {
        6 => 0,
        2 => 0,
        3 => 1000,
        4 => 4000,
        5 => 5000,
        _ => 32000,
    };
    if class == 4 && matches!(xx, 1 | 7 | 15 | 20 | 84) {
        base
    } else {
        base + xx
    }
}

/// The branch whose final reply goes upstream: best priority over every branch of the
/// transaction, so serial forking reports the best answer of all rounds
/// (kamailio-defects.md), not just the last one.
pub fn pick_best(g: &Txn) -> Option<usize> {
    let mut best: Option<(u32, usize)> = None;
    for (i, b) in g.branches.iter().enumerate() {
        let Some(r) = b.reply.as_ref().filter(|_| !b.reply_dropped) else {
            continue;
        };
        let p = prio(r.code());
        if best.is_none_or(|(bp, _)| p < bp) {
            best = Some((p, i));
        }
    }
    best.map(|(_, i)| i)
}

/// Every branch has a final reply: run the failure route if one is armed, else (or when it
/// neither relayed again nor replied) send the best reply upstream.
pub fn finalize(core: &Core, ctx: &mut RouteCtx, mut g: TxGuard, run: Runner<'_>) {
    let Some(best) = pick_best(&g) else {
        // No branch ever went out (t_newtran without relay): nothing to choose from.
        send_local(core, &mut g, 500, local_reason(500), b"", b"");
        return;
    };
    let (code, reason) = match &g.branches[best].reply {
        Some(BranchReply::Received(m, _)) => (
            m.status().unwrap_or(500),
            String::from_utf8_lossy(m.reason()).into_owned(),
        ),
        Some(BranchReply::Local(c)) => (*c, local_reason(*c).to_string()),
        None => (500, local_reason(500).to_string()),
    };
    let failure_route = g.cb.on_failure.take().filter(|_| !g.opts.disable_failover);
    if let Some(name) = failure_route {
        g.winning = Some((best, code));
        let before = g.branches.len();
        let Some(back) = run_on_request(ctx, g, RouteKind::Failure, &name, best, code, reason, run)
        else {
            return;
        };
        g = back;
        if g.final_sent() {
            return;
        }
        if g.branches[before..].iter().any(|b| b.pending()) {
            // New branches are out: their replies decide (and may run a failure route again).
            return;
        }
    }
    relay_best(core, &mut g, best);
}

/// Run a failure or branch-failure route: on the request as the request route left it (Kamailio's
/// `fake_req`), with the transaction's AVPs, `$T_branch_idx` = `idx` and the reply `code`.
/// Gives the transaction back (None if a route lost it, which cannot happen short of a bug).
#[allow(clippy::too_many_arguments)]
fn run_on_request(
    ctx: &mut RouteCtx,
    mut g: TxGuard,
    kind: RouteKind,
    name: &str,
    idx: usize,
    code: u16,
    reason: String,
    run: Runner<'_>,
) -> Option<TxGuard> {
    let req = g.req.clone();
    ctx.begin(kind, req, g.ep);
    ctx.new_ruri = g.saved.new_ruri.clone();
    ctx.dst_uri = g.saved.dst_uri.clone();
    ctx.flags = g.saved.flags;
    ctx.bflags = g.branches.get(idx).map(|b| b.bflags).unwrap_or(0);
    ctx.force_rport = g.saved.force_rport;
    ctx.rr = g.saved.rr.clone();
    // The request route's header changes stay on the request the failure route relays.
    ctx.edits = g.saved.edits.clone();
    ctx.req_key = g.req_key;
    ctx.tm.branch_idx = idx;
    ctx.tm.reply = Some((code, reason));
    // The R-URI was used by the branches that failed: a new branch needs a new $ru/$du
    // or append_branch (Kamailio's ruri_mark_consumed in t_relay).
    ctx.tm.consumed = Some((ctx.new_ruri.clone(), ctx.dst_uri.clone()));
    std::mem::swap(&mut ctx.avps, &mut g.avps);
    std::mem::swap(&mut ctx.xavps, &mut g.xavps);
    std::mem::swap(&mut ctx.tm.contacts, &mut g.contacts);
    ctx.tm.tx = Some(g);
    run(ctx, name);
    let Some(mut back) = ctx.tm.tx.take() else {
        ctx.end();
        return None;
    };
    std::mem::swap(&mut ctx.avps, &mut back.avps);
    std::mem::swap(&mut ctx.xavps, &mut back.xavps);
    std::mem::swap(&mut ctx.tm.contacts, &mut back.contacts);
    back.saved.flags = ctx.flags;
    ctx.end();
    Some(back)
}

/// A branch ended negatively: run the branch-failure route if one is armed (Kamailio's
/// `event_route[tm:branch-failure]`, `t_on_branch_failure`). It may add branches with t_relay.
fn branch_failure(
    ctx: &mut RouteCtx,
    g: TxGuard,
    idx: usize,
    code: u16,
    reason: String,
    run: Runner<'_>,
) -> Option<TxGuard> {
    match g.cb.on_branch_failure.clone() {
        Some(name) if !g.final_sent() => run_on_request(
            ctx,
            g,
            RouteKind::BranchFailure,
            &name,
            idx,
            code,
            reason,
            run,
        ),
        _ => Some(g),
    }
}

/// Send the chosen final reply upstream, merging the challenges of every 401/407 branch into a
/// 401/407 (RFC 3261 §16.7 step 7).
fn relay_best(core: &Core, g: &mut Txn, best: usize) {
    match g.branches[best].reply.clone() {
        Some(BranchReply::Received(m, e)) => {
            let code = m.status().unwrap_or(500);
            let mut extra = Vec::new();
            if code == 401 || code == 407 {
                for (i, b) in g.branches.iter().enumerate() {
                    if i == best {
                        continue;
                    }
                    if let Some(BranchReply::Received(o, _)) = &b.reply {
                        if matches!(o.status(), Some(401 | 407)) {
                            for h in o.headers().iter().filter(|h| {
                                matches!(
                                    h.name,
                                    HdrName::WwwAuthenticate | HdrName::ProxyAuthenticate
                                )
                            }) {
                                extra.extend_from_slice(o.slice(crate::sip::Span {
                                    start: h.line_span.start,
                                    end: h.value_span.end,
                                }));
                                extra.extend_from_slice(b"\r\n");
                            }
                        }
                    }
                }
            }
            relay_reply_with_extra(core, g, &m, &e, &extra);
        }
        Some(BranchReply::Local(c)) => {
            send_local(core, g, c, local_reason(c), b"", b"");
        }
        None => {
            send_local(core, g, 500, local_reason(500), b"", b"");
        }
    }
}
