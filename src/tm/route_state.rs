//! What a route has told tm so far (`t_on_*`, `append_branch`, `t_set_fr`), and the transaction
//! the route runs for; lives in the worker's routing context.

use std::sync::Arc;
use std::time::Duration;

use super::relay::BranchSpec;
use super::txn::Callbacks;
use super::{TxCell, TxGuard};

/// tm's part of the routing context.
#[derive(Default)]
pub struct TmCtx {
    /// Transaction of the request being routed (after `t_newtran`/`t_relay`), unlocked.
    pub t: Option<Arc<TxCell>>,
    /// The locked transaction a reply or failure route runs for.
    pub tx: Option<TxGuard>,
    /// Callbacks armed by this route, handed to the transaction by `t_relay`.
    pub cb: Callbacks,
    /// Extra branches (`append_branch`), taken by the next `t_relay`.
    pub branches: Vec<BranchSpec>,
    /// `$T_branch_idx`.
    pub branch_idx: usize,
    /// `$T_reply_code` / `$T_reply_reason` (the reply being handled, or the winning one).
    pub reply: Option<(u16, String)>,
    /// `t_set_fr` before the transaction exists: (fr_inv, fr).
    pub fr: Option<(Option<Duration>, Option<Duration>)>,
    /// Per-transaction settings made before the transaction exists.
    pub opts: super::txn::TxOpts,
    /// `t_set_disable_internal_reply(1)`.
    pub no_internal_reply: bool,
    /// `($ru, $du)` when the Request-URI was last used for a branch (Kamailio's
    /// `ruri_mark_consumed`); `t_relay` forks to `$ru` only when it changed since.
    pub consumed: Option<(Option<String>, Option<String>)>,
    /// Serial-forking queue (`t_load_contacts`), highest q first; travels with the transaction.
    pub contacts: Vec<BranchSpec>,
    /// q of the Request-URI branch (set by `t_next_contacts`, later by registrar lookup).
    pub ruri_q: Option<i32>,
    /// A t_relay waiting for its branch routes (run by the KSR binding after the call).
    pub pending_relay: Option<super::kemi::PendingRelay>,
}

impl TmCtx {
    /// Forget everything at the end of a message.
    pub fn reset(&mut self) {
        self.t = None;
        self.tx = None;
        self.cb = Callbacks::default();
        self.branches.clear();
        self.branch_idx = 0;
        self.reply = None;
        self.fr = None;
        self.no_internal_reply = false;
        self.opts = Default::default();
        self.consumed = None;
        self.contacts.clear();
        self.ruri_q = None;
        self.pending_relay = None;
    }
}
