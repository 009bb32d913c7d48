//! The server side of a transaction: creating it, answering upstream (local and relayed
//! replies), absorbing retransmissions and ACKs, and removing it when its time is up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use super::key::ServerKey;
use super::txn::{Callbacks, Saved, Txn, UasState};
use super::{TimerKind, TxCell};
use crate::core::reply::reply_dest;
use crate::core::stats::Stat;
use crate::core::Core;
use crate::sip::{build_reply, HdrName, Method, SipMsg, Span};
use crate::transport::{Endpoint, Proto};

/// Result of looking for a request's transaction before routing it.
pub enum Absorbed {
    /// Not ours: route it.
    No,
    /// A retransmission or a hop-by-hop ACK, handled here.
    Yes,
}

/// Handle a request that belongs to an existing transaction without running Python: a
/// retransmission gets the last reply again, an ACK to a negative final reply confirms the
/// transaction (RFC 3261 §17.2.1).
pub fn absorb(core: &Core, msg: &SipMsg) -> Absorbed {
    if core.tm.table.is_empty() {
        return Absorbed::No;
    }
    let Some(key) = ServerKey::from_request(msg) else {
        return Absorbed::No;
    };
    let Some(tx) = core.tm.table.get(&key) else {
        return Absorbed::No;
    };
    let mut g = tx.lock();
    if g.deleted {
        return Absorbed::No;
    }
    let invite_to_tag = g
        .req
        .to_hdr()
        .ok()
        .and_then(|t| t.tag())
        .map(str::to_string);
    if !key.to_tag_matches(msg, invite_to_tag.as_deref(), g.reply_to_tag.as_deref()) {
        return Absorbed::No;
    }
    if msg.method() == Method::Ack {
        if g.uas_code >= 200 && g.uas_code < 300 {
            // An ACK for a 2xx is end to end (RFC 2543 peers reuse the branch): route it.
            return Absorbed::No;
        }
        if g.uas_state == UasState::Completed {
            g.uas_state = UasState::Confirmed;
            core.tm.disarm(&mut g.uas_retr);
            let linger = if g.ep.proto == Proto::Udp {
                core.tm.params.t4
            } else {
                Duration::ZERO
            };
            rearm_delete(core, &mut g, linger);
        }
        core.stats.inc(Stat::TmAckAbsorbed);
        return Absorbed::Yes;
    }
    core.stats.inc(Stat::TmRetransmissions);
    if let Some(r) = g.last_reply.clone() {
        send_up(core, &g, &r);
    }
    Absorbed::Yes
}

/// Outcome of `new_tran`.
pub enum NewTran {
    /// A transaction was created for the request.
    Created(Arc<TxCell>),
    /// The request is a retransmission of a live transaction (its last reply was resent).
    Retransmission,
    /// No transaction can be made (ACK, or the headers needed for a key are bad).
    Error,
}

/// Kamailio's `t_newtran`: file a transaction for the request being routed.
pub fn new_tran(
    core: &Core,
    msg: &SipMsg,
    ep: &Endpoint,
    force_rport: bool,
    req_key: Option<u64>,
    opts: super::txn::TxOpts,
) -> NewTran {
    if msg.method() == Method::Ack {
        return NewTran::Error;
    }
    let Some(key) = ServerKey::from_request(msg) else {
        return NewTran::Error;
    };
    let id = core.tm.table.next_id();
    let to_tag = core.to_tag(msg, req_key);
    let tx = Txn {
        id,
        key: key.clone(),
        method: msg.method(),
        req: msg.clone(),
        ep: *ep,
        reply_dest: reply_dest(msg, ep, force_rport),
        req_key,
        to_tag,
        uas_state: UasState::Proceeding,
        uas_code: 0,
        last_reply: None,
        local_final: false,
        reply_to_tag: None,
        uas_retr: None,
        uas_retr_interval: core.tm.params.t1,
        wait: None,
        branches: Vec::new(),
        cb: Callbacks::default(),
        saved: Saved::default(),
        avps: Default::default(),
        xavps: Default::default(),
        canceled: false,
        opts,
        fr: None,
        fr_inv: None,
        round_start: 0,
        contacts: Vec::new(),
        winning: None,
        created_at: Instant::now(),
        deleted: false,
    };
    let cell = Arc::new(Mutex::new(tx));
    match core.tm.table.insert(key, id, cell.clone()) {
        Ok(()) => {
            core.stats.inc(Stat::TmUasTransactions);
            // A transaction nobody finishes must not live for ever.
            let mut g = cell.lock();
            let life = g.max_lifetime(&core.tm.params);
            g.wait = Some(core.tm.arm(Instant::now() + life, id, TimerKind::Delete, 0));
            let auto_100 = opts.auto_inv_100.unwrap_or(core.tm.params.auto_inv_100);
            if msg.method() == Method::Invite && auto_100 {
                let reason = core.tm.params.auto_inv_100_reason.clone();
                send_local(core, &mut g, 100, &reason, b"", b"");
            }
            drop(g);
            NewTran::Created(cell)
        }
        Err(existing) => {
            let g = existing.lock();
            if let Some(r) = g.last_reply.clone() {
                send_up(core, &g, &r);
            }
            NewTran::Retransmission
        }
    }
}

/// Send bytes to the transaction's upstream peer.
fn send_up(core: &Core, g: &Txn, data: &[u8]) -> bool {
    match core
        .sender
        .send(g.ep.proto, g.reply_dest, Some(g.ep.local), data)
    {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, dest = %g.reply_dest, "cannot send reply upstream");
            false
        }
    }
}

/// Send a reply generated here (`t_reply`, 100 Trying, 408/487 on timeout or cancel).
/// Returns false when a final reply was already sent or the send failed.
pub fn send_local(
    core: &Core,
    g: &mut Txn,
    code: u16,
    reason: &str,
    extra_headers: &[u8],
    body: &[u8],
) -> bool {
    if g.final_sent() {
        return false;
    }
    let mut out = Vec::with_capacity(512 + body.len());
    // 100 Trying has no To tag (RFC 3261 §8.2.6.1); everything else carries ours.
    let tag = if code == 100 { "" } else { g.to_tag.as_str() };
    build_reply(
        &g.req,
        g.ep.remote,
        code,
        reason,
        tag,
        extra_headers,
        body,
        &mut out,
    );
    core.stats.inc(Stat::TmRplGenerated);
    core.stats.inc(Stat::TmLocalReplies);
    let ok = send_up(core, g, &out);
    g.uas_code = g.uas_code.max(code);
    if code >= 200 {
        g.local_final = true;
        g.reply_to_tag = Some(g.to_tag.clone());
        g.last_reply = Some(Bytes::from(out));
        after_final(core, g);
    } else {
        g.last_reply = Some(Bytes::from(out));
    }
    ok
}

/// Relay a reply from a branch upstream: drop our Via (the top one) and apply the reply
/// routes' edits. Final replies are kept for retransmissions.
pub fn relay_reply(core: &Core, g: &mut Txn, reply: &SipMsg, edits: &crate::sip::Edits) -> bool {
    let mut edits = edits.clone();
    let Ok(vias) = reply.vias() else { return false };
    let Some(top) = vias.first() else {
        return false;
    };
    match vias.get(1) {
        Some(next) if next.header_index == top.header_index => edits.delete(Span {
            start: top.span.start,
            end: next.span.start,
        }),
        _ => edits.delete(reply.headers()[top.header_index].line_span),
    }
    edits.fix_content_length(reply);
    let mut out = Vec::with_capacity(reply.raw().len());
    edits.apply(reply.raw(), &mut out);
    relay_bytes(core, g, reply, out)
}

/// Relay a final reply assembled from several (401/407 challenges merged, RFC 3261 §16.7.7).
pub fn relay_reply_with_extra(
    core: &Core,
    g: &mut Txn,
    reply: &SipMsg,
    edits: &crate::sip::Edits,
    extra: &[u8],
) -> bool {
    if extra.is_empty() {
        return relay_reply(core, g, reply, edits);
    }
    let mut e = edits.clone();
    let at = reply
        .first(HdrName::ContentLength)
        .map(|h| h.line_span.start)
        .unwrap_or(reply.headers_end());
    e.insert(at, extra.to_vec());
    relay_reply(core, g, reply, &e)
}

fn relay_bytes(core: &Core, g: &mut Txn, reply: &SipMsg, out: Vec<u8>) -> bool {
    let code = reply.status().unwrap_or(500);
    core.stats.inc(Stat::FwdReplies);
    core.stats.inc(Stat::TmRplRelayed);
    let ok = send_up(core, g, &out);
    g.uas_code = g.uas_code.max(code);
    if code >= 200 {
        g.local_final = false;
        g.reply_to_tag = reply
            .to_hdr()
            .ok()
            .and_then(|t| t.tag())
            .map(str::to_string);
        g.last_reply = Some(Bytes::from(out));
        after_final(core, g);
    } else if !g.final_sent() {
        // A retransmitted request gets the latest provisional reply (RFC 3261 §17.2.1).
        g.last_reply = Some(Bytes::from(out));
    }
    ok
}

/// Arm the timers that follow the first final reply sent upstream.
fn after_final(core: &Core, g: &mut Txn) {
    if g.uas_state != UasState::Proceeding {
        return;
    }
    g.uas_state = UasState::Completed;
    let p = &core.tm.params;
    let udp = g.ep.proto == Proto::Udp;
    let t1 = g.t1(p);
    if g.method == Method::Invite && g.uas_code >= 300 {
        // Timer G (UDP) until the ACK; timer H gives up waiting for it.
        if udp {
            g.uas_retr_interval = t1;
            g.uas_retr = Some(
                core.tm
                    .arm(Instant::now() + t1, g.id, TimerKind::UasRetr, 0),
            );
        }
        rearm_delete(core, g, t1 * 64);
    } else if g.method == Method::Invite {
        // After a 2xx the transaction lingers so late 2xx from other branches are still relayed.
        rearm_delete(core, g, p.wt_timer);
    } else {
        // Timer J absorbs retransmissions of the request.
        rearm_delete(core, g, if udp { p.wt_timer } else { Duration::ZERO });
    }
}

/// (Re)arm the deletion timer.
pub fn rearm_delete(core: &Core, g: &mut Txn, after: Duration) {
    core.tm.disarm(&mut g.wait);
    g.wait = Some(
        core.tm
            .arm(Instant::now() + after, g.id, TimerKind::Delete, 0),
    );
}

/// Timer G fired: resend the final reply, doubling the interval up to T2.
pub fn retransmit_reply(core: &Core, g: &mut Txn) {
    g.uas_retr = None;
    if g.uas_state != UasState::Completed {
        return;
    }
    if let Some(r) = g.last_reply.clone() {
        send_up(core, g, &r);
    }
    g.uas_retr_interval = (g.uas_retr_interval * 2).min(g.t2(&core.tm.params));
    g.uas_retr = Some(core.tm.arm(
        Instant::now() + g.uas_retr_interval,
        g.id,
        TimerKind::UasRetr,
        0,
    ));
}

/// Remove the transaction from the table and stop its timers.
pub fn delete(core: &Core, g: &mut Txn) {
    if g.deleted {
        return;
    }
    g.deleted = true;
    core.tm.disarm(&mut g.uas_retr);
    core.tm.disarm(&mut g.wait);
    for b in &mut g.branches {
        core.tm.disarm(&mut b.retr);
        core.tm.disarm(&mut b.fr);
    }
    core.tm.table.remove(&g.key, g.id);
}

/// The request route ended: the transaction keeps the AVPs and flags the route left, and a
/// transaction the route created but neither relayed nor answered is dropped (its
/// retransmissions then run the route again).
pub fn end_request_route(core: &Core, ctx: &mut crate::script::ctx::RouteCtx) {
    let Some(t) = ctx.tm.t.take() else { return };
    let mut g = t.lock();
    g.avps = std::mem::take(&mut ctx.avps);
    g.xavps = std::mem::take(&mut ctx.xavps);
    if g.branches.is_empty() {
        g.saved.flags = ctx.flags;
        if g.uas_code < 200 {
            tracing::debug!("transaction created but not relayed or answered; dropping it");
            delete(core, &mut g);
        }
    }
}
