//! Branch routes (`t_on_branch`): run once per outgoing branch, after the `t_relay` KSR call
//! that created the branches has returned (the route needs the routing context back). Each run
//! sees the branch's `$ru`/`$du`/branch flags; its header changes apply to that branch only, and
//! `KSR.set_drop()` (or `KSR.x.drop()`) drops the branch.

use pyo3::prelude::*;

use super::kemi::{relay_failed, PendingRelay};
use super::relay::{send_branch, BranchSpec};
use super::{lock_from_python, TxGuard};
use crate::script::ctx::{with_current, RouteCtx, RouteKind};
use crate::script::exports::Val;
use crate::script::host::{call_route, RouteOutcome};
use crate::script::msgobj::PyMsg;

/// The routing context as the request route left it, restored after each branch route.
struct Before {
    kind: RouteKind,
    new_ruri: Option<String>,
    dst_uri: Option<String>,
    bflags: u64,
    edits: crate::sip::Edits,
    hdr_overrides: Vec<(crate::sip::Span, String)>,
    drop: bool,
    branch_idx: usize,
    rr: Option<crate::rr::RrState>,
}

/// Run the pending t_relay of the current context, if any; returns t_relay's final value.
pub fn run_pending(py: Python<'_>) -> Option<Val> {
    let p: PendingRelay = with_current(|c| c.tm.pending_relay.take()).flatten()?;
    let mut sent = 0usize;
    let mut last_err = None;
    let name = pyo3::types::PyString::new(py, &p.route);
    for spec in &p.specs {
        let Some((before, gen, seq)) = with_current(|c| enter(c, &p, spec)) else {
            return Some(Val::Int(-1));
        };
        let outcome = match &gen {
            Some(g) => {
                let pm = Bound::new(py, PyMsg::new(seq)).ok().map(|b| b.into_any());
                call_route(py, g, &name, pm)
            }
            None => RouteOutcome::Missing,
        };
        match outcome {
            RouteOutcome::Error(tb) => tracing::error!("exception in {}:\n{tb}", p.route),
            RouteOutcome::Missing => {
                tracing::error!(route = %p.route, "branch route not found or not callable")
            }
            _ => {}
        }
        let r = with_current(|c| leave_and_send(c, &p, spec, before)).flatten();
        match r {
            Some(Ok(true)) => sent += 1,
            Some(Ok(false)) => {}
            Some(Err(e)) => last_err = Some(e),
            None => {}
        }
    }
    let v = with_current(|c| {
        let core = c.core.clone();
        let err = if sent == 0 { last_err } else { None };
        if sent == 0 && err.is_none() {
            tracing::info!("t_relay: every branch was dropped by the branch route");
            return -1;
        }
        with_locked(c, &p, |g, c| {
            relay_failed(&core, g, err, p.internal_reply, c)
        })
        .unwrap_or(-1)
    })?;
    Some(Val::Int(v))
}

/// Set the context up as branch `spec` and return what to restore.
fn enter(
    c: &mut RouteCtx,
    p: &PendingRelay,
    spec: &BranchSpec,
) -> (
    Before,
    Option<std::sync::Arc<crate::script::host::Generation>>,
    u64,
) {
    let idx = match &p.tx {
        Some(t) => lock_from_python(t).branches.len(),
        None => c.tm.tx.as_ref().map(|g| g.branches.len()).unwrap_or(0),
    };
    let before = Before {
        kind: c.kind,
        new_ruri: c.new_ruri.replace(spec.uri.clone()),
        dst_uri: std::mem::replace(&mut c.dst_uri, spec.dst_uri.clone()),
        bflags: std::mem::replace(&mut c.bflags, spec.bflags),
        edits: c.edits.clone(),
        hdr_overrides: c.hdr_overrides.clone(),
        drop: std::mem::replace(&mut c.drop, false),
        branch_idx: std::mem::replace(&mut c.tm.branch_idx, idx),
        rr: c.rr.clone(),
    };
    c.kind = RouteKind::Branch;
    (before, c.gen.clone(), c.msg_seq)
}

/// Collect the branch route's result, restore the context and send the branch unless dropped.
fn leave_and_send(
    c: &mut RouteCtx,
    p: &PendingRelay,
    spec: &BranchSpec,
    before: Before,
) -> Option<Result<bool, crate::core::forward::FwdError>> {
    let dropped = c.drop;
    let branch = BranchSpec {
        uri: c.new_ruri.clone().unwrap_or_else(|| spec.uri.clone()),
        dst_uri: c.dst_uri.clone(),
        bflags: c.bflags,
        q: spec.q,
        proto: spec.proto,
    };
    let edits = c.forward_edits();
    // add_rr_param in a branch route changes that branch's Record-Route only.
    let rr = std::mem::replace(&mut c.rr, before.rr);
    c.kind = before.kind;
    c.new_ruri = before.new_ruri;
    c.dst_uri = before.dst_uri;
    c.bflags = before.bflags;
    c.edits = before.edits;
    c.hdr_overrides = before.hdr_overrides;
    c.drop = before.drop;
    c.tm.branch_idx = before.branch_idx;
    if dropped {
        tracing::debug!(uri = %branch.uri, "branch dropped by the branch route");
        return Some(Ok(false));
    }
    let core = c.core.clone();
    with_locked(c, p, |g, _| {
        send_branch(&core, g, &branch, edits, rr.as_ref()).map(|_| true)
    })
}

/// Run `f` on the pending relay's transaction, locked (None if it is gone).
fn with_locked<R>(
    c: &mut RouteCtx,
    p: &PendingRelay,
    f: impl FnOnce(&mut super::Txn, &mut RouteCtx) -> R,
) -> Option<R> {
    match &p.tx {
        Some(t) => {
            let mut g: TxGuard = lock_from_python(t);
            Some(f(&mut g, c))
        }
        None => {
            // Failure route: the transaction is the context's locked one.
            let mut g = c.tm.tx.take()?;
            let r = f(&mut g, c);
            c.tm.tx = Some(g);
            Some(r)
        }
    }
}
