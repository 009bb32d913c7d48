//! The client side: sending branches, their retransmissions, CANCEL and the hop-by-hop ACK.

use std::fmt::Write as _;
use std::time::Instant;

use bytes::Bytes;

use super::txn::{Branch, BranchReply, CancelState, Txn, UacState};
use super::TimerKind;
use crate::core::forward::{build_request, next_hop, BuildSpec, FwdError};
use crate::core::stats::Stat;
use crate::core::Core;
use crate::sip::{HdrName, Method, SipMsg};
use crate::transport::Proto;

/// A branch to create: where the request goes and with which flags.
#[derive(Debug, Clone, Default)]
pub struct BranchSpec {
    /// Request-URI.
    pub uri: String,
    /// Destination URI (`$du`), if any.
    pub dst_uri: Option<String>,
    /// Branch flags.
    pub bflags: u64,
    /// q-value in thousandths (1000 = q 1.0), when known.
    pub q: Option<i32>,
    /// Forced transport (`t_relay_to_proto`).
    pub proto: Option<Proto>,
}

/// Create and send one branch per spec on the locked transaction; returns how many went out
/// (the error of the last failure when none did).
pub fn send_branches(core: &Core, g: &mut Txn, specs: &[BranchSpec]) -> Result<usize, FwdError> {
    let mut sent = 0;
    let mut last_err = None;
    for spec in specs {
        let edits = g.saved.edits.clone();
        let rr = g.saved.rr.clone();
        match send_branch(core, g, spec, edits, rr.as_ref()) {
            Ok(()) => sent += 1,
            Err(e) => {
                tracing::warn!(uri = %spec.uri, error = %e, "branch not sent");
                last_err = Some(e);
            }
        }
    }
    match (sent, last_err) {
        (0, Some(e)) => Err(e),
        _ => Ok(sent),
    }
}

/// Create and send one branch with these header edits and Record-Route (a branch route's).
pub fn send_branch(
    core: &Core,
    g: &mut Txn,
    spec: &BranchSpec,
    mut edits: crate::sip::Edits,
    rr: Option<&crate::rr::RrState>,
) -> Result<(), FwdError> {
    let target = spec.dst_uri.as_deref().unwrap_or(&spec.uri);
    let hop = next_hop(core, target, spec.proto)?;
    // Before our Via goes in, so the Record-Route ends up above it (as Kamailio's does).
    if let Some(rr) = rr {
        crate::rr::render(rr, &g.req, &g.ep, hop.proto, hop.local, &mut edits);
    }
    let idx = g.branches.len();
    let branch_param = core.tm.branch_param(g.id, idx);
    let orig = String::from_utf8_lossy(g.req.ruri_bytes());
    let new_ruri = (spec.uri != orig).then_some(spec.uri.as_str());
    let mut out = Vec::with_capacity(g.req.raw().len() + 256);
    build_request(
        &BuildSpec {
            msg: &g.req,
            src: g.ep.remote,
            force_rport: g.saved.force_rport,
            new_ruri,
            hop: &hop,
            branch: &branch_param,
        },
        edits,
        &mut out,
    )?;
    core.stats.inc(Stat::FwdRequests);
    core.stats.inc(Stat::TmUacTransactions);
    core.sender
        .send(hop.proto, hop.dest, Some(hop.local), &out)?;
    let p = &core.tm.params;
    let now = Instant::now();
    let t1 = g.t1(p);
    let retr =
        (hop.proto == Proto::Udp).then(|| core.tm.arm(now + t1, g.id, TimerKind::UacRetr, idx));
    let fr_after = g.fr_for(p, false);
    g.branches.push(Branch {
        uri: spec.uri.clone(),
        dst_uri: spec.dst_uri.clone(),
        hop,
        branch_param,
        request: Bytes::from(out),
        state: UacState::Calling,
        last_code: 0,
        reply: None,
        bflags: spec.bflags,
        timed_out: false,
        reply_dropped: false,
        cancel: CancelState::None,
        cancel_retr: None,
        retr,
        retr_interval: t1,
        fr: Some(core.tm.arm(now + fr_after, g.id, TimerKind::UacFr, idx)),
    });
    Ok(())
}

/// Timer A/E fired for branch `idx`: resend the request while no reply says stop.
pub fn retransmit(core: &Core, g: &mut Txn, idx: usize) {
    let invite = g.method == Method::Invite;
    let t2 = g.t2(&core.tm.params);
    let id = g.id;
    let Some(b) = g.branches.get_mut(idx) else {
        return;
    };
    b.retr = None;
    let go_on = match b.state {
        UacState::Calling => true,
        // Timer E keeps running at T2 for a non-INVITE after a provisional; an INVITE stops.
        UacState::Proceeding => !invite,
        UacState::Completed => false,
    };
    if !go_on {
        return;
    }
    if let Err(e) = core
        .sender
        .send(b.hop.proto, b.hop.dest, Some(b.hop.local), &b.request)
    {
        tracing::debug!(error = %e, "request retransmission failed");
    }
    b.retr_interval = if invite {
        b.retr_interval * 2
    } else if b.state == UacState::Proceeding {
        t2
    } else {
        (b.retr_interval * 2).min(t2)
    };
    b.retr = Some(core.tm.arm(
        Instant::now() + b.retr_interval,
        id,
        TimerKind::UacRetr,
        idx,
    ));
}

/// Resend a branch's CANCEL until it is answered or the INVITE branch completes.
pub fn retransmit_cancel(core: &Core, g: &mut Txn, idx: usize) {
    let id = g.id;
    let t2 = g.t2(&core.tm.params);
    let Some(b) = g.branches.get_mut(idx) else {
        return;
    };
    b.cancel_retr = None;
    let CancelState::Sent(bytes) = &b.cancel else {
        return;
    };
    if !b.pending() {
        return;
    }
    let _ = core
        .sender
        .send(b.hop.proto, b.hop.dest, Some(b.hop.local), bytes);
    b.retr_interval = (b.retr_interval * 2).min(t2);
    b.cancel_retr = Some(core.tm.arm(
        Instant::now() + b.retr_interval,
        id,
        TimerKind::CancelRetr,
        idx,
    ));
}

/// CANCEL every pending INVITE branch (RFC 3261 §16.10); a branch that has not answered yet is
/// cancelled when its first provisional reply arrives (§9.1).
pub fn cancel_pending(core: &Core, g: &mut Txn, except: Option<usize>) {
    if g.method != Method::Invite {
        return;
    }
    for idx in 0..g.branches.len() {
        if Some(idx) == except {
            continue;
        }
        let b = &mut g.branches[idx];
        if !b.pending() || b.cancel != CancelState::None {
            continue;
        }
        match b.state {
            UacState::Calling => {
                // Kamailio's default cancel_b_method 1: stop retransmitting, CANCEL once a
                // provisional reply shows the request arrived, else the fr timer ends it (487).
                b.cancel = CancelState::Pending;
                core.tm.disarm(&mut b.retr);
            }
            _ => send_cancel(core, g, idx),
        }
    }
}

/// Build and send the CANCEL of branch `idx` now.
pub fn send_cancel(core: &Core, g: &mut Txn, idx: usize) {
    let id = g.id;
    let t1 = g.t1(&core.tm.params);
    let b = &mut g.branches[idx];
    let Some(cancel) = build_hop_request(&b.request, "CANCEL", None) else {
        b.cancel = CancelState::Done;
        return;
    };
    if let Err(e) = core
        .sender
        .send(b.hop.proto, b.hop.dest, Some(b.hop.local), &cancel)
    {
        tracing::warn!(error = %e, "CANCEL not sent");
    }
    core.stats.inc(Stat::FwdRequests);
    b.cancel = CancelState::Sent(cancel);
    if b.hop.proto == Proto::Udp {
        b.retr_interval = t1;
        b.cancel_retr = Some(
            core.tm
                .arm(Instant::now() + t1, id, TimerKind::CancelRetr, idx),
        );
    }
}

/// Send the ACK for a non-2xx final reply on branch `idx` (RFC 3261 §17.1.1.3).
pub fn send_ack(core: &Core, b: &Branch, reply: &SipMsg) {
    let to = reply
        .first(HdrName::To)
        .map(|h| String::from_utf8_lossy(reply.value(h)).into_owned());
    if let Some(ack) = build_hop_request(&b.request, "ACK", to.as_deref()) {
        if let Err(e) = core
            .sender
            .send(b.hop.proto, b.hop.dest, Some(b.hop.local), &ack)
        {
            tracing::debug!(error = %e, "ACK not sent");
        }
    }
}

/// A CANCEL or hop-by-hop ACK for the request we sent (`sent`): same Request-URI, our Via only,
/// the Route set, From, To (or the reply's To for an ACK), Call-ID and the CSeq number.
pub(crate) fn build_hop_request(sent: &Bytes, method: &str, to: Option<&str>) -> Option<Bytes> {
    let req = SipMsg::parse(sent.clone()).ok()?;
    let via = req.first(HdrName::Via)?;
    let cseq = req.cseq().ok()?.num;
    let mut s = String::with_capacity(512);
    let _ = write!(
        s,
        "{method} {} SIP/2.0\r\n",
        String::from_utf8_lossy(req.ruri_bytes())
    );
    // Only our (top) Via value: a comma-joined header must not carry the upstream ones.
    let top = req.vias().ok()?.first()?;
    let _ = write!(
        s,
        "Via: {}\r\n",
        String::from_utf8_lossy(req.slice(top.span))
    );
    let _ = via;
    for h in req.all(HdrName::Route) {
        let _ = write!(s, "Route: {}\r\n", String::from_utf8_lossy(req.value(h)));
    }
    for n in [HdrName::From, HdrName::CallId] {
        let h = req.first(n)?;
        let _ = write!(
            s,
            "{}: {}\r\n",
            if n == HdrName::From {
                "From"
            } else {
                "Call-ID"
            },
            String::from_utf8_lossy(req.value(h))
        );
    }
    let to = match to {
        Some(t) => t.to_string(),
        None => String::from_utf8_lossy(req.value(req.first(HdrName::To)?)).into_owned(),
    };
    let _ = write!(
        s,
        "To: {to}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    Some(Bytes::from(s))
}

/// The reply a finished branch ended with, as a status code (0 while pending).
pub fn branch_code(b: &Branch) -> u16 {
    b.reply.as_ref().map(BranchReply::code).unwrap_or(0)
}
