//! The transaction timer thread: one thread drives every transaction timer from the shared
//! wheel (no task per timer). Retransmissions and clean-up happen here; timeouts, which may run
//! a failure route, go to a SIP worker.

use std::sync::Arc;

use super::{relay, uas, Timeout, TimerEv, TimerKind};
use crate::core::Core;

/// Start the timer thread.
pub fn start(core: Arc<Core>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("ksrd-tm-timer".into())
        .spawn(move || {
            let c = core.clone();
            rt.block_on(core.tm.wheel.run(move |ev| fire(&c, ev)));
        })?;
    Ok(())
}

/// Handle one expired timer.
pub fn fire(core: &Core, ev: TimerEv) {
    let Some(tx) = core.tm.table.by_id(ev.id) else {
        return;
    };
    let idx = ev.branch as usize;
    if ev.kind == TimerKind::UacFr {
        match core.tm.dispatch.get() {
            Some(d) => d(Timeout {
                id: ev.id,
                branch: ev.branch,
            }),
            None => tracing::warn!("transaction timeout with no worker to handle it"),
        }
        return;
    }
    let mut g = tx.lock();
    if g.deleted {
        return;
    }
    match ev.kind {
        TimerKind::UacRetr => relay::retransmit(core, &mut g, idx),
        TimerKind::CancelRetr => relay::retransmit_cancel(core, &mut g, idx),
        TimerKind::UasRetr => uas::retransmit_reply(core, &mut g),
        TimerKind::Delete => {
            g.wait = None;
            uas::delete(core, &mut g);
        }
        TimerKind::UacFr => {}
    }
}
