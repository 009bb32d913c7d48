//! One transaction: the server side (the request we received and the replies we sent upstream)
//! and its client branches (the requests we relayed and the replies they got).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::key::ServerKey;
use super::timer::TimerHandle;
use crate::core::forward::NextHop;
use crate::modules::pv::PvVal;
use crate::sip::{Edits, Method, SipMsg};
use crate::transport::Endpoint;

/// Server transaction state (RFC 3261 §17.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UasState {
    /// No final reply sent yet (Trying/Proceeding).
    Proceeding,
    /// A final reply was sent; waiting for ACK (INVITE non-2xx) or absorbing retransmissions.
    Completed,
    /// ACK received for a non-2xx final (INVITE only).
    Confirmed,
}

/// Client branch state (RFC 3261 §17.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UacState {
    /// Request sent, nothing heard yet (Calling/Trying).
    Calling,
    /// A provisional reply arrived.
    Proceeding,
    /// A final reply arrived (or the branch timed out).
    Completed,
}

/// Where a branch's CANCEL stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelState {
    /// Not cancelled.
    None,
    /// To be cancelled as soon as a provisional reply arrives (RFC 3261 §9.1).
    Pending,
    /// CANCEL sent (its bytes, for retransmissions).
    Sent(Bytes),
    /// CANCEL answered or no longer needed.
    Done,
}

/// The final reply a branch ended with.
#[derive(Debug, Clone)]
pub enum BranchReply {
    /// A reply that arrived, with the edits the reply routes made to it.
    Received(Box<SipMsg>, Edits),
    /// A reply ksrd made up: 408 on timeout, 487 for a cancelled branch without answer.
    Local(u16),
}

impl BranchReply {
    /// Status code.
    pub fn code(&self) -> u16 {
        match self {
            BranchReply::Received(m, _) => m.status().unwrap_or(500),
            BranchReply::Local(c) => *c,
        }
    }
}

/// One outgoing branch (client transaction).
#[derive(Debug)]
pub struct Branch {
    /// Request-URI of the branch.
    pub uri: String,
    /// Destination URI (`$du`) of the branch, if set.
    pub dst_uri: Option<String>,
    /// Where it was sent.
    pub hop: NextHop,
    /// Our Via branch parameter.
    pub branch_param: String,
    /// The request as sent (for retransmissions, CANCEL and ACK).
    pub request: Bytes,
    /// State.
    pub state: UacState,
    /// Highest status code received (0 = none).
    pub last_code: u16,
    /// The final reply, once there is one.
    pub reply: Option<BranchReply>,
    /// Branch flags.
    pub bflags: u64,
    /// The final-response timer ran out.
    pub timed_out: bool,
    /// `t_drop_replies` took the reply out of the choice of the final reply.
    pub reply_dropped: bool,
    /// CANCEL state.
    pub cancel: CancelState,
    /// Retransmission timer (A/E) or CANCEL retransmission.
    pub retr: Option<TimerHandle>,
    /// Current retransmission interval.
    pub retr_interval: Duration,
    /// CANCEL retransmission timer.
    pub cancel_retr: Option<TimerHandle>,
    /// Final-response timer (B/F, fr_timer/fr_inv_timer).
    pub fr: Option<TimerHandle>,
}

impl Branch {
    /// True until the branch has a final reply.
    pub fn pending(&self) -> bool {
        self.state != UacState::Completed
    }
}

/// What the request route had set when it relayed, restored for failure routes (Kamailio's
/// `fake_req` of `uas.request`).
#[derive(Debug, Clone, Default)]
pub struct Saved {
    /// `$ru` as the request route left it.
    pub new_ruri: Option<String>,
    /// `$du` as the request route left it.
    pub dst_uri: Option<String>,
    /// Header edits of the request route (applied to every branch, also later ones).
    pub edits: Edits,
    /// `force_rport()` was called.
    pub force_rport: bool,
    /// Message flags.
    pub flags: u64,
    /// Record-Route to add on every branch (rendered per branch: it names the outgoing socket).
    pub rr: Option<crate::rr::RrState>,
}

/// Per-transaction settings a route changed (`t_set_retr`, `t_set_disable_6xx`, …); `None`
/// keeps the module parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct TxOpts {
    /// T1 (`t_set_retr`).
    pub t1: Option<Duration>,
    /// T2 (`t_set_retr`).
    pub t2: Option<Duration>,
    /// A 6xx does not cancel other branches (`t_set_disable_6xx`).
    pub disable_6xx: Option<bool>,
    /// No failure route runs (`t_set_disable_failover`).
    pub disable_failover: bool,
    /// Send 100 Trying for an INVITE (`t_set_auto_inv_100`).
    pub auto_inv_100: Option<bool>,
    /// Longest life of the transaction (`t_set_max_lifetime`).
    pub max_lifetime: Option<Duration>,
}

/// Route callbacks armed for the transaction (`t_on_*`), by Python function name.
#[derive(Debug, Clone, Default)]
pub struct Callbacks {
    /// `t_on_reply`.
    pub on_reply: Option<String>,
    /// `t_on_failure`.
    pub on_failure: Option<String>,
    /// `t_on_branch`.
    pub on_branch: Option<String>,
    /// `t_on_branch_failure`.
    pub on_branch_failure: Option<String>,
}

/// One transaction.
#[derive(Debug)]
pub struct Txn {
    /// Process-unique id (timers and our branch parameters refer to it).
    pub id: u64,
    /// Server key it is filed under.
    pub key: ServerKey,
    /// Method of the request.
    pub method: Method,
    /// The request as received.
    pub req: SipMsg,
    /// Where it came from.
    pub ep: Endpoint,
    /// Where replies go (RFC 3261 §18.2.2).
    pub reply_dest: SocketAddr,
    /// Retransmission-cache key of the request (stateless cache; 100 Trying and local replies).
    pub req_key: Option<u64>,
    /// To-tag of the replies ksrd generates for this transaction.
    pub to_tag: String,
    /// Server side state.
    pub uas_state: UasState,
    /// Highest status sent upstream (0 = none).
    pub uas_code: u16,
    /// The last reply sent upstream (resent on request retransmissions).
    pub last_reply: Option<Bytes>,
    /// The final reply was generated here (t_reply, timeout), not relayed.
    pub local_final: bool,
    /// To-tag of the final reply sent upstream (an RFC 2543 ACK must carry it).
    pub reply_to_tag: Option<String>,
    /// Timer G (reply retransmission) interval and handle.
    pub uas_retr: Option<TimerHandle>,
    /// Current timer G interval.
    pub uas_retr_interval: Duration,
    /// Wait/cleanup timer (H, I, J, D, K and the linger after a 2xx).
    pub wait: Option<TimerHandle>,
    /// Branches, in the order they were created.
    pub branches: Vec<Branch>,
    /// Armed callbacks.
    pub cb: Callbacks,
    /// Request-route state for failure routes.
    pub saved: Saved,
    /// `$avp(...)` of the transaction.
    pub avps: HashMap<String, Vec<PvVal>>,
    /// `$xavp(...)` of the transaction.
    pub xavps: crate::modules::pv::Xavps,
    /// A CANCEL for this INVITE arrived.
    pub canceled: bool,
    /// Settings changed by the route.
    pub opts: TxOpts,
    /// Per-transaction `fr_timer` (`t_set_fr`), if set.
    pub fr: Option<Duration>,
    /// Per-transaction `fr_inv_timer` (`t_set_fr`), if set.
    pub fr_inv: Option<Duration>,
    /// Index of the first branch of the current forking round (serial forking via failure routes).
    pub round_start: usize,
    /// Contacts `t_load_contacts` queued and `t_next_contacts` has not used yet.
    pub contacts: Vec<super::relay::BranchSpec>,
    /// The winning reply code when a failure route ran (for `$T_reply_code`).
    pub winning: Option<(usize, u16)>,
    /// The request route sent no reply and relayed nothing yet (t_newtran only).
    pub created_at: Instant,
    /// The transaction was removed from the table.
    pub deleted: bool,
}

impl Txn {
    /// True once a final reply went upstream.
    pub fn final_sent(&self) -> bool {
        self.uas_code >= 200
    }

    /// True when no branch waits for a final reply.
    pub fn all_final(&self) -> bool {
        self.branches.iter().all(|b| !b.pending())
    }

    /// T1 for this transaction.
    pub fn t1(&self, p: &super::params::TmParams) -> Duration {
        self.opts.t1.unwrap_or(p.t1)
    }

    /// T2 for this transaction.
    pub fn t2(&self, p: &super::params::TmParams) -> Duration {
        self.opts.t2.unwrap_or(p.t2)
    }

    /// Longest life of this transaction.
    pub fn max_lifetime(&self, p: &super::params::TmParams) -> Duration {
        self.opts
            .max_lifetime
            .unwrap_or(if self.method == Method::Invite {
                p.max_inv_lifetime
            } else {
                p.max_noninv_lifetime
            })
    }

    /// Final-response timer for a branch in this state.
    pub fn fr_for(&self, p: &super::params::TmParams, proceeding: bool) -> Duration {
        if self.method == Method::Invite && proceeding {
            self.fr_inv.unwrap_or(p.fr_inv_timer)
        } else {
            self.fr.unwrap_or(p.fr_timer)
        }
    }
}
