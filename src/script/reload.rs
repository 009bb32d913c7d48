//! Hot reload: a watcher on the script's directory and a reload thread that loads new generations.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
use pyo3::prelude::*;

use super::ctx::{self, RouteCtx};
use super::host::Host;
use crate::core::stats::Stat;
use crate::core::Core;

/// Result of a reload: (old version, new version) or the error text.
pub type ReloadResult = Result<(u64, u64), String>;

/// Ask the reload thread for a reload; optionally get the result back.
pub struct ReloadRequest {
    /// Why (for the log).
    pub reason: &'static str,
    /// Where to send the result.
    pub reply: Option<tokio::sync::oneshot::Sender<ReloadResult>>,
}

/// Handle used by the watcher and the RPC to request reloads.
#[derive(Clone)]
pub struct Reloader(mpsc::Sender<ReloadRequest>);

impl Reloader {
    /// Request a reload and wait for the result (async, for RPC handlers).
    pub async fn reload(&self, reason: &'static str) -> ReloadResult {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0
            .send(ReloadRequest {
                reason,
                reply: Some(tx),
            })
            .map_err(|_| "reload thread is gone".to_string())?;
        rx.await.map_err(|_| "reload thread is gone".to_string())?
    }
    /// Request a reload without waiting.
    pub fn trigger(&self, reason: &'static str) {
        let _ = self.0.send(ReloadRequest {
            reason,
            reply: None,
        });
    }
}

/// Start the reload thread; it owns a routing context so `mod_init` can call KSR functions.
pub fn start(core: Arc<Core>, host: Arc<Host>) -> Reloader {
    let (tx, rx) = mpsc::channel::<ReloadRequest>();
    std::thread::Builder::new()
        .name("ksrd-reload".into())
        .spawn(move || {
            let mut ctx = Box::new(RouteCtx::new(core.clone()));
            ctx::set_current(&mut ctx);
            while let Ok(req) = rx.recv() {
                // Coalesce a burst of requests (an editor writing several files) into one load.
                let mut waiters = vec![req];
                while let Ok(more) = rx.try_recv() {
                    waiters.push(more);
                }
                let r = Python::attach(|py| host.load(py, true));
                match &r {
                    Ok((old, new)) => {
                        core.stats.inc(Stat::ScriptReloads);
                        tracing::info!(old, new, reason = waiters[0].reason, file = %host.file().display(), "routes reloaded");
                    }
                    Err(e) => tracing::error!(file = %host.file().display(), "reload failed, keeping the previous routes:\n{e}"),
                }
                for w in waiters {
                    if let Some(tx) = w.reply {
                        let _ = tx.send(r.clone());
                    }
                }
            }
        })
        .expect("spawn reload thread");
    Reloader(tx)
}

/// Watch the script's directory; a change to any `.py` file there triggers a reload.
/// The returned guard must be kept alive.
pub fn watch(dir: &Path, reloader: Reloader) -> notify::Result<impl Drop> {
    let mut d = new_debouncer(
        Duration::from_millis(100),
        None,
        move |res: DebounceEventResult| match res {
            Ok(events) => {
                let relevant = events.iter().any(|e| {
                    !e.kind.is_access()
                        && e.paths
                            .iter()
                            .any(|p| p.extension().and_then(|x| x.to_str()) == Some("py"))
                });
                if relevant {
                    reloader.trigger("file changed");
                }
            }
            Err(errs) => {
                for e in errs {
                    tracing::warn!(error = %e, "file watcher error");
                }
            }
        },
    )?;
    d.watch(dir, RecursiveMode::Recursive)?;
    Ok(d)
}
