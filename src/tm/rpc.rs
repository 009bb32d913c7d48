//! tm RPC commands (Kamailio src/modules/tm/tm.c `tm_rpc`): `tm.stats`.

use std::sync::Arc;

use serde_json::json;

use crate::core::stats::Stat;
use crate::core::Core;
use crate::rpc::Registry;

/// Register `tm.stats`.
pub fn register(reg: &mut Registry, core: Arc<Core>) {
    reg.register_sync(
        "tm.stats",
        "Transactions: {current, total, total_local, rpl_received, rpl_generated, rpl_sent}",
        move |_| {
            let s = &core.stats;
            let relayed = s.get(Stat::TmRplRelayed);
            let generated = s.get(Stat::TmRplGenerated);
            Ok(json!({
                "current": core.tm.table.len(),
                "waiting": core.tm.wheel.len(),
                "total": s.get(Stat::TmUasTransactions),
                "total_local": 0,
                "rpl_received": s.get(Stat::TmRplReceived),
                "rpl_generated": generated,
                "rpl_sent": relayed + generated,
            }))
        },
    );
}
