//! Wiring: sockets, TCP layer, core, Python host, workers, reload and RPC.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::Config;
use crate::core::Core;
use crate::rpc::Registry;
use crate::script::host::{init_python, Host};
use crate::script::worker::{self, Worker};
use crate::script::{reload, rpc as script_rpc};
use crate::transport::{tcp, udp, Inbound, Proto, Sender};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A socket could not be bound.
    #[error("cannot listen on {0}")]
    Bind(String),
    /// The route script failed to load.
    #[error("route script failed to load:\n{0}")]
    Script(String),
    /// The database could not be opened.
    #[error("database {url}: {err}")]
    Db {
        /// The URL (password hidden).
        url: String,
        /// Why.
        err: crate::db::DbError,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Validate the route script like `kamailio -c`: compile it and run `mod_init()` (no sockets).
pub fn check_script(cfg: &Config) -> Result<(), String> {
    init_python();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let core = rt.block_on(async {
        let tcp = tcp::TcpHandle::disabled();
        Arc::new(Core::new(cfg.clone(), Sender::new(Vec::new(), tcp), &[]))
    });
    let host = Host::new(cfg.script.clone(), cfg.workers);
    let mut ctx = Box::new(crate::script::ctx::RouteCtx::new(core));
    crate::script::ctx::set_current(&mut ctx);
    let r = pyo3::Python::attach(|py| host.load(py, false)).map(|_| ());
    crate::script::ctx::clear_current();
    r
}

/// Open `db_url` and prepare its schema (see [`crate::db::Db::prepare`]). A file that cannot be
/// opened stops start-up; a PostgreSQL server that is down is logged and retried on use.
/// Give usrloc its database (`db_mode` 1 to 4) and load the `preload` tables (`location` when
/// none is named) before any worker runs.
fn attach_usrloc(core: &Arc<Core>, cfg: &Config) {
    use crate::modules::usrloc::{DbMode, Persist};
    let p = &cfg.modparams;
    let mode = DbMode::from_param(p.get_int("usrloc", "db_mode").unwrap_or(0));
    let (Some(mode), Some(db)) = (mode.filter(|m| *m != DbMode::NoDb), core.db.get()) else {
        return;
    };
    core.ul
        .attach(Persist::new(db.clone(), mode, core.registrar.use_domain));
    let mut tables = p.get_list("usrloc", "preload");
    if tables.is_empty() {
        tables.push("location".into());
    }
    for t in tables {
        core.ul.domain(&t);
    }
}

async fn open_db(cfg: &Config) -> Result<Option<crate::db::Db>, StartError> {
    let Some(url) = &cfg.db.url else {
        return Ok(None);
    };
    let db = crate::db::Db::open(&cfg.db)
        .await
        .map_err(|err| StartError::Db {
            url: url.to_string(),
            err,
        })?;
    match db.prepare().await {
        Ok(report) => {
            let created = report.created();
            if !created.is_empty() {
                tracing::info!(db = %db.url(), tables = %created.join(", "), "created Kamailio schema tables");
            }
            for p in report.problems() {
                tracing::warn!(db = %db.url(), "{p}");
            }
            tracing::info!(db = %db.url(), "database ready");
        }
        Err(e) if db.backend() == crate::db::Backend::Sqlite => {
            return Err(StartError::Db {
                url: db.url().to_string(),
                err: e,
            })
        }
        Err(e) if e.is_unavailable() => {
            // already logged by the pool's health check; calls fail until the server is up
        }
        Err(e) => tracing::error!(db = %db.url(), error = %e, "cannot check the database schema"),
    }
    Ok(Some(db))
}

/// Resolves when `sig` arrives; never when it could not be installed.
async fn received(sig: &mut Option<Signal>) {
    match sig {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Start everything and serve until a termination signal.
pub fn run(cfg: Config) -> Result<(), StartError> {
    let mut udp_socks = Vec::new();
    let mut tcp_addrs = Vec::new();
    for l in &cfg.listen {
        match l.proto {
            Proto::Udp => {
                udp_socks.push(udp::bind(l.addr).map_err(|e| StartError::Bind(e.to_string()))?)
            }
            Proto::Tcp => tcp_addrs.push(l.addr),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ksrd-io")
        .enable_all()
        .build()
        .map_err(|e| StartError::Other(e.to_string()))?;
    // Installed first: RPC answers (and test harnesses or supervisors may stop ksrd) before
    // start-up ends, and a SIGTERM that came before the handler would kill the process without
    // the graceful shutdown that saves the htables.
    let (mut term, mut int) = {
        let _e = rt.enter();
        let install = |kind: SignalKind, name: &str| {
            signal(kind)
                .map_err(|e| tracing::warn!("cannot handle {name}: {e}"))
                .ok()
        };
        (
            install(SignalKind::terminate(), "SIGTERM"),
            install(SignalKind::interrupt(), "SIGINT"),
        )
    };

    let mut queues = Vec::new();
    let mut inputs = Vec::new();
    for _ in 0..cfg.workers {
        let (q, i) = worker::queue().map_err(|e| StartError::Other(e.to_string()))?;
        queues.push(q);
        inputs.push(i);
    }
    let queues = Arc::new(queues);
    let qs = queues.clone();
    // One connection always goes to the same worker so its messages stay in order.
    let deliver: tcp::Deliver = Arc::new(move |m: Inbound| {
        let i = match m.ep.remote {
            SocketAddr::V4(a) => (u32::from(*a.ip()) as usize).wrapping_add(a.port() as usize),
            SocketAddr::V6(a) => a.port() as usize,
        } % qs.len();
        qs[i].push(m);
    });
    let tcp = rt
        .block_on(tcp::start(&tcp_addrs, deliver))
        .map_err(|e| StartError::Bind(e.to_string()))?;
    let mut bound: Vec<SocketAddr> = udp_socks
        .iter()
        .filter_map(|s| s.local_addr().ok())
        .collect();
    bound.extend(tcp.listen_addr(true));
    bound.extend(tcp.listen_addr(false));
    let sender = Sender::new(udp_socks.clone(), tcp);
    let core = Arc::new(Core::new(cfg.clone(), sender, &bound));
    if let Some(db) = rt.block_on(open_db(&cfg))? {
        let _ = core.db.set(db);
    }
    rt.block_on(core.sqlops.open(&cfg))
        .map_err(|(url, err)| StartError::Db { url, err })?;

    {
        // Timeouts may run failure routes, so they go to a worker, spread by transaction id.
        let qs = queues.clone();
        let _ = core.tm.dispatch.set(Box::new(move |t: crate::tm::Timeout| {
            qs[(t.id as usize) % qs.len()].push_job(worker::Job::Timeout(t));
        }));
        crate::tm::timers::start(core.clone()).map_err(|e| StartError::Other(e.to_string()))?;
    }
    attach_usrloc(&core, &cfg);
    if let Ok(db) = core.db() {
        core.htable
            .set_store(Arc::new(crate::modules::htable::DbStore::new(db.clone())));
    }
    // Before the script's mod_init, so that it already sees the loaded items.
    core.htable.load_all();
    core.htable
        .start_timer()
        .map_err(|e| StartError::Other(e.to_string()))?;
    init_python();
    let host = Arc::new(Host::new(cfg.script.clone(), cfg.workers));
    {
        let mut ctx = Box::new(crate::script::ctx::RouteCtx::new(core.clone()));
        crate::script::ctx::set_current(&mut ctx);
        let r = pyo3::Python::attach(|py| host.load(py, true));
        crate::script::ctx::clear_current();
        r.map_err(StartError::Script)?;
    }
    let reloader = reload::start(core.clone(), host.clone());
    let _watch = if cfg.script.watch {
        let dir = cfg
            .script
            .file
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        match reload::watch(&dir, reloader.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the routes directory; reload with RPC app_python.reload");
                None
            }
        }
    } else {
        None
    };

    let mut reg = Registry::new();
    crate::core::rpc::register(&mut reg, core.clone());
    crate::tm::rpc::register(&mut reg, core.clone());
    crate::modules::usrloc::rpc::register(&mut reg, core.ul.clone());
    let every = cfg
        .modparams
        .get_int("usrloc", "timer_interval")
        .filter(|s| *s > 0)
        .unwrap_or(60);
    core.ul
        .start_timer(std::time::Duration::from_secs(every as u64));
    crate::modules::htable::rpc::register(&mut reg, core.clone());
    crate::modules::nathelper::register_rpc(&mut reg, core.clone());
    crate::modules::nathelper::natping::Pinger::start(&core);
    crate::modules::pike::register_rpc(&mut reg, core.clone());
    crate::modules::geoip2::register_rpc(&mut reg, core.clone());
    crate::modules::pike::Pike::start(&core);
    script_rpc::register(&mut reg, reloader);
    let reg = Arc::new(reg);
    if let Some(addr) = cfg.rpc_http {
        let l = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| StartError::Bind(format!("rpc http {addr}: {e}")))?;
        rt.spawn(crate::rpc::serve_http(l, reg.clone()));
        tracing::info!(%addr, "JSON-RPC over HTTP");
    }
    let sock_path = cfg.rpc_socket.clone();
    if let Some(path) = &sock_path {
        let _ = std::fs::remove_file(path);
        let l = {
            let _e = rt.enter();
            tokio::net::UnixListener::bind(path)
                .map_err(|e| StartError::Bind(format!("rpc socket {}: {e}", path.display())))?
        };
        rt.spawn(crate::rpc::serve_unix(l, reg.clone()));
        tracing::info!(path = %path.display(), "JSON-RPC over unix socket");
    }

    for (i, input) in inputs.into_iter().enumerate() {
        let w = Worker::new(core.clone(), host.clone(), udp_socks.clone(), input);
        std::thread::Builder::new()
            .name(format!("ksrd-sip-{}", i + 1))
            .spawn(move || w.run())
            .map_err(|e| StartError::Other(e.to_string()))?;
    }
    for l in &cfg.listen {
        tracing::info!(listen = %l, "listening");
    }
    tracing::info!(script = %cfg.script.file.display(), workers = cfg.workers, "ksrd ready");

    rt.block_on(async {
        tokio::select! {
            _ = received(&mut term) => {}
            _ = received(&mut int) => {}
        }
    });
    tracing::info!("shutting down");
    core.htable.save_all();
    core.ul.flush();
    if let Some(p) = sock_path {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
