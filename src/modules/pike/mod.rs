//! pike (`KSR.pike.*`, Kamailio src/modules/pike): request-rate flood detection per source
//! address, with Kamailio's parameters, return codes and `pike.top` RPC.

pub mod tree;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::core::Core;
use crate::modules::modparam::{ModParams, ModuleParams, ParamKind};
use crate::rpc::{Registry, RpcError};
use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use tree::{Status, Tree, Verdict};

/// Module state: the tree and its clock.
pub struct Pike {
    /// The address tree.
    pub tree: Tree,
    /// `sampling_time_unit` seconds.
    pub time_unit: u64,
    started: Instant,
}

impl Pike {
    /// Read `[modparam.pike]` (Kamailio's defaults: 2 s, 30 requests, 120 s).
    pub fn from_modparams(p: &ModParams) -> Pike {
        let int = |n: &str, d: i64| p.get_int("pike", n).unwrap_or(d).max(1);
        Pike {
            tree: Tree::new(
                int("reqs_density_per_unit", 30) as u32,
                int("remove_latency", 120) as u64,
            ),
            time_unit: int("sampling_time_unit", 2) as u64,
            started: Instant::now(),
        }
    }

    /// Seconds since start (pike's ticks).
    pub fn now(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Check one request from `ip`: 1 fine, -1 blocked, -2 blocked just now.
    pub fn check(&self, ip: IpAddr) -> i64 {
        match self.tree.mark(ip, self.now()) {
            Verdict::Ok => 1,
            Verdict::Red => -1,
            Verdict::NewRed => {
                tracing::warn!(%ip, "PIKE - BLOCKing ip {ip}");
                -2
            }
        }
    }

    /// Start the sampling and cleaning timer (one thread; Kamailio's swap and clean routines).
    pub fn start(core: &Arc<Core>) {
        let weak = Arc::downgrade(core);
        let spawned = std::thread::Builder::new()
            .name("ksrd-pike".into())
            .spawn(move || {
                let mut last_swap = 0;
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    let Some(core) = weak.upgrade() else { return };
                    let p = &core.pike;
                    let now = p.now();
                    if now >= last_swap + p.time_unit {
                        p.tree.swap();
                        last_swap = now;
                    }
                    p.tree.clean(now);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("pike: cannot start its timer: {e}");
        }
    }
}

/// Module parameters (pike.c `params[]`).
pub const PARAMS: ModuleParams = ModuleParams {
    module: "pike",
    params: &[
        ("sampling_time_unit", ParamKind::Int),
        ("reqs_density_per_unit", ParamKind::Int),
        ("remove_latency", ParamKind::Int),
        ("pike_log_level", ParamKind::Int),
    ],
};

/// Config checks: Kamailio refuses non-positive values.
pub fn validate(p: &ModParams) -> Result<(), (String, String)> {
    for n in [
        "sampling_time_unit",
        "reqs_density_per_unit",
        "remove_latency",
    ] {
        if let Some(v) = p.get_int("pike", n) {
            if v <= 0 {
                return Err((
                    format!("modparam.pike.{n}"),
                    format!("{v} must be positive"),
                ));
            }
        }
    }
    Ok(())
}

fn pike_check_req(ctx: &mut RouteCtx, _: &Args) -> Val {
    Val::Int(ctx.core.pike.check(ctx.ep.remote.ip()))
}

fn pike_check_ip(ctx: &mut RouteCtx, a: &Args) -> Val {
    let s = a.str(0).trim();
    match s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) => Val::Int(ctx.core.pike.check(ip)),
        Err(_) => {
            tracing::error!(ip = s, "pike_check_ip: not an IP address");
            Val::Int(-1)
        }
    }
}

/// `KSR.pike.*` exports (pike.c sr_kemi_pike_exports).
pub static EXPORTS: &[Export] = &[
    ex(
        "pike",
        "pike_check_req",
        &[],
        Int,
        "Count a request from $si: 1 ok, -1 source is flooding, -2 flooding detected now",
        pike_check_req,
    ),
    ex(
        "pike",
        "pike_check_ip",
        &[("ip", Str)],
        Int,
        "pike_check_req for the given address instead of the source",
        pike_check_ip,
    ),
];

/// Register `pike.top` and its alias `pike.list` (pike_rpc.c), reply as Kamailio's.
pub fn register_rpc(reg: &mut Registry, core: Arc<Core>) {
    for name in ["pike.top", "pike.list"] {
        let c = core.clone();
        reg.register_sync(
            name,
            "Dump parts of the pike table: ALL, HOT (default) or WARM",
            move |p| {
                let opt = match p.first() {
                    Some(Value::String(s)) => s.to_ascii_uppercase(),
                    None => "HOT".into(),
                    Some(_) => String::new(),
                };
                let only = if opt.contains("ALL") {
                    None
                } else if opt.contains("HOT") {
                    Some(Status::Hot)
                } else if opt.contains("WARM") {
                    Some(Status::Warm)
                } else {
                    return Err(RpcError::new(500, "Bad argument. Select: ALL, HOT or WARM"));
                };
                let pike = &c.pike;
                let list: Vec<Value> = pike
                    .tree
                    .top(only, pike.now())
                    .into_iter()
                    .map(|e| {
                        json!({
                            "ip_addr": e.ip.to_string(),
                            "leaf_hits_prev": e.leaf_hits[0],
                            "leaf_hits_curr": e.leaf_hits[1],
                            "expires": e.expires,
                            "status": e.status.name(),
                        })
                    })
                    .collect();
                let n = list.len();
                Ok(json!({"max_hits": pike.tree.max_hits(), "list": list, "number_of_rows": n}))
            },
        );
    }
}
