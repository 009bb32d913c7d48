//! Transaction layer (RFC 3261 §17) and Kamailio's tm/tmx: stateful relaying, forking, CANCEL,
//! hop-by-hop ACK, reply/failure routes and transaction AVPs.
//!
//! Locking: the table maps keys to `Arc<TxCell>`; a lookup clones the `Arc` under the shard lock
//! and releases it before locking the transaction, so the order is always shard → (nothing) and
//! transaction → shard, never shard → transaction. Routes that run for a transaction (reply,
//! failure) run with its lock held; KSR calls that lock a transaction from Python release the GIL
//! while they wait (see `lock_from_python`), so a worker holding a transaction and waiting for the
//! GIL cannot deadlock with one holding the GIL and waiting for that transaction.

pub mod branch_route;
pub mod kemi;
pub mod key;
pub mod params;
pub mod relay;
pub mod reply;
pub mod route_state;
pub mod rpc;
pub mod table;
#[cfg(test)]
mod tests;
pub mod timer;
pub mod timers;
pub mod tmx;
pub mod txn;
pub mod uas;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::lock_api::ArcMutexGuard;
use parking_lot::{Mutex, RawMutex};

pub use params::TmParams;
pub use txn::Txn;

/// A transaction behind its lock.
pub type TxCell = Mutex<Txn>;
/// A locked transaction that can be moved around (into a routing context).
pub type TxGuard = ArcMutexGuard<RawMutex, Txn>;

/// What a timer refers to; small and `Copy` so the wheel stores it inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerEv {
    /// Transaction id.
    pub id: u64,
    /// Which timer.
    pub kind: TimerKind,
    /// Branch index, for branch timers.
    pub branch: u16,
}

/// The timers of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// Request retransmission on a branch (timers A and E).
    UacRetr,
    /// Final-response timeout on a branch (timers B and F; fr_timer / fr_inv_timer).
    UacFr,
    /// CANCEL retransmission on a branch.
    CancelRetr,
    /// Final-reply retransmission upstream until the ACK (timer G).
    UasRetr,
    /// Remove the transaction (timers H, I, J, D, K, linger after 2xx).
    Delete,
}

/// Work the timer thread hands to a SIP worker because it may run Python (failure routes).
#[derive(Debug, Clone, Copy)]
pub struct Timeout {
    /// Transaction id.
    pub id: u64,
    /// Branch that timed out.
    pub branch: u16,
}

/// Hands a timeout to a worker.
pub type Dispatch = Box<dyn Fn(Timeout) + Send + Sync>;

/// The transaction layer's state, owned by `Core`.
pub struct Tm {
    /// Settings.
    pub params: TmParams,
    /// Live transactions.
    pub table: table::Table,
    /// Every transaction timer.
    pub wheel: timer::SharedWheel<TimerEv>,
    /// Timeouts go to the SIP workers through this (set once workers exist).
    pub dispatch: OnceLock<Dispatch>,
    /// Prefix of our branch parameters (random per process, so a stale reply from before a
    /// restart never matches a new transaction).
    pub branch_prefix: String,
}

impl Tm {
    /// A transaction layer with these settings.
    pub fn new(params: TmParams) -> Tm {
        Tm {
            params,
            table: table::Table::new(),
            wheel: timer::SharedWheel::new(timer::DEFAULT_TICK, Instant::now()),
            dispatch: OnceLock::new(),
            branch_prefix: format!("z9hG4bKt{:08x}", fastrand::u32(..)),
        }
    }

    /// Our Via branch for branch `idx` of transaction `id`.
    pub fn branch_param(&self, id: u64, idx: usize) -> String {
        format!("{}{id:x}.{idx}", self.branch_prefix)
    }

    /// The transaction id and branch index a branch parameter of ours encodes.
    pub fn parse_branch(&self, b: &str) -> Option<(u64, usize)> {
        let rest = b.strip_prefix(self.branch_prefix.as_str())?;
        let (id, idx) = rest.split_once('.')?;
        Some((u64::from_str_radix(id, 16).ok()?, idx.parse().ok()?))
    }

    /// Arm a timer.
    pub fn arm(&self, at: Instant, id: u64, kind: TimerKind, branch: usize) -> timer::TimerHandle {
        self.wheel.insert(
            at,
            TimerEv {
                id,
                kind,
                branch: branch as u16,
            },
        )
    }

    /// Disarm a timer, if armed.
    pub fn disarm(&self, h: &mut Option<timer::TimerHandle>) {
        if let Some(h) = h.take() {
            self.wheel.cancel(h);
        }
    }
}

/// Lock a transaction from code that runs under the GIL (KSR calls): wait with the GIL released.
pub fn lock_from_python(tx: &Arc<TxCell>) -> TxGuard {
    if let Some(g) = tx.try_lock_arc() {
        return g;
    }
    pyo3::Python::attach(|py| py.detach(|| tx.lock_arc()))
}
