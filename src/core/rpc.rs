//! Core RPC commands with Kamailio's names and reply shapes: core.*, stats.*.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::Core;
use crate::rpc::Registry;

/// `ksrd <version> (<arch>/<os>)`, the shape of Kamailio's core.version.
pub fn version_string() -> String {
    format!(
        "ksrd {} ({}/{})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

/// ctime(3)-style local time, as Kamailio prints in core.uptime.
fn ctime(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let mut buf = [0u8; 64];
    unsafe {
        libc::localtime_r(&secs, &mut tm);
        let n = libc::strftime(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%a %b %e %H:%M:%S %Y".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

fn statistics(core: &Core, params: &[Value]) -> Vec<String> {
    let wanted: Vec<String> = if params.is_empty() {
        vec!["all".into()]
    } else {
        params
            .iter()
            .map(|p| {
                p.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| p.to_string())
            })
            .collect()
    };
    core.stats
        .all()
        .filter(|(name, _)| {
            let (group, short) = name.split_once(':').unwrap_or(("", name));
            wanted.iter().any(|w| {
                w == "all" || w.strip_suffix(':').is_some_and(|g| g == group) || w == short
            })
        })
        .map(|(n, v)| format!("{n} = {v}"))
        .collect()
}

/// Register core.* and stats.*.
pub fn register(reg: &mut Registry, core: Arc<Core>) {
    reg.register_sync("core.version", "Server version string", |_| {
        Ok(json!(version_string()))
    });
    let c = core.clone();
    reg.register_sync(
        "core.uptime",
        "{now, up_since, uptime} in seconds",
        move |_| {
            let now = SystemTime::now();
            let up = now
                .duration_since(c.started)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            Ok(json!({"now": ctime(now), "up_since": ctime(c.started), "uptime": up}))
        },
    );
    reg.register_sync(
        "core.info",
        "Version, compile information and flags",
        |_| {
            Ok(json!({
                "version": format!("ksrd {}", env!("CARGO_PKG_VERSION")),
                "id": env!("CARGO_PKG_VERSION"),
                "compiler": "rustc",
                "compiled": "",
                "flags": "USE_TCP, USE_PYTHON_ROUTES",
            }))
        },
    );
    let c = core.clone();
    reg.register_sync(
        "stats.get_statistics",
        "Counters: \"all\", \"group:\" or a name; [\"core:rcv_requests = N\", …]",
        move |p| Ok(json!(statistics(&c, &p))),
    );
    let c = core;
    reg.register_sync(
        "stats.fetch",
        "Counters as an object {\"group.name\": \"value\"}",
        move |p| {
            let mut m = serde_json::Map::new();
            for line in statistics(&c, &p) {
                if let Some((n, v)) = line.split_once(" = ") {
                    m.insert(n.replacen(':', ".", 1), json!(v));
                }
            }
            Ok(Value::Object(m))
        },
    );
    reg.register_sync("core.ps", "Threads of this process", |_| {
        let tasks = std::fs::read_dir("/proc/self/task")
            .map(|d| d.count())
            .unwrap_or(0);
        Ok(json!({"threads": tasks}))
    });
}
