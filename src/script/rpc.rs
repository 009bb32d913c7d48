//! `app_python.*` RPC commands (apy_kemi.c): reload and api_list.

use serde_json::{json, Value};

use super::exports;
use super::reload::Reloader;
use crate::rpc::{Registry, RpcError};

/// The `app_python.api_list` reply (Kamailio shape).
pub fn api_list() -> Value {
    let methods: Vec<Value> = exports::all()
        .map(|e| {
            let params: Vec<&str> = e.params.iter().map(|(_, t)| t.api_name()).collect();
            json!({"func": {"ret": e.ret.api_name(), "module": e.module, "name": e.name, "params": if params.is_empty() { "none".to_string() } else { params.join(", ") }}})
        })
        .collect();
    json!({"msize": methods.len(), "methods": methods})
}

/// Register app_python.reload (+ app_python3.reload, app_python3s.reload, ksrd.reload) and api_list.
pub fn register(reg: &mut Registry, reloader: Reloader) {
    reg.register_async(
        "app_python.reload",
        "Reload the Python route script: {\"old\":N,\"new\":N+1}",
        move |_p| {
            let r = reloader.clone();
            Box::pin(async move {
                match r.reload("rpc").await {
                    Ok((old, new)) => Ok(json!({"old": old, "new": new})),
                    Err(e) => Err(RpcError::internal(format!(
                        "reload failed, previous routes kept: {e}"
                    ))),
                }
            })
        },
    );
    for alias in ["app_python3.reload", "app_python3s.reload", "ksrd.reload"] {
        reg.alias(alias, "app_python.reload");
    }
    reg.register_sync(
        "app_python.api_list",
        "List the KSR functions: {\"msize\":N,\"methods\":[…]}",
        |_p| Ok(api_list()),
    );
    for alias in ["app_python3.api_list", "app_python3s.api_list"] {
        reg.alias(alias, "app_python.api_list");
    }
}
