//! htable RPC commands with Kamailio's names, reply shapes and error messages (htable.c
//! `htable_rpc[]`; kemi-spec §4.2).

use std::sync::Arc;

use serde_json::{json, Value};

use super::table::{ItemView, SetVal, Table};
use crate::core::Core;
use crate::modules::pv::PvVal;
use crate::rpc::{Params, Registry, RpcError, RpcResult};

fn fault(msg: &str) -> RpcError {
    RpcError::new(500, msg)
}

/// A string parameter (numbers are accepted as their text, like kamcmd's untyped input).
fn s(p: &Params, i: usize) -> Option<String> {
    match p.get(i)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer parameter (numeric strings are accepted).
fn n(p: &Params, i: usize) -> Option<i64> {
    match p.get(i)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn table(core: &Core, name: &str) -> Result<Arc<Table>, RpcError> {
    core.htable
        .get(name)
        .cloned()
        .ok_or_else(|| fault("No such htable"))
}

/// `%Y-%m-%d %H:%M:%S` in local time, as `htable_rpc_get` prints expires.
fn date(t: u32) -> String {
    let secs = t as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let mut buf = [0u8; 32];
    // SAFETY: localtime_r and strftime write only into the buffers passed, bounded by their size.
    unsafe {
        libc::localtime_r(&secs, &mut tm);
        let n = libc::strftime(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%Y-%m-%d %H:%M:%S".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

fn value_json(v: &PvVal) -> (Value, &'static str) {
    match v {
        PvVal::Int(i) => (json!(i), "int"),
        PvVal::Str(s) => (json!(s), "str"),
        PvVal::Bytes(b) => (json!(String::from_utf8_lossy(b)), "str"),
    }
}

fn dump(core: &Core, p: &Params) -> RpcResult {
    let name = s(p, 0).ok_or_else(|| fault("No htable name given"))?;
    let t = table(core, &name)?;
    let slots: Vec<Value> = t
        .dump()
        .into_iter()
        .map(|(i, items)| {
            let list: Vec<Value> = items
                .iter()
                .map(|it| {
                    let (v, ty) = value_json(&it.value);
                    json!({"name": it.key, "value": v, "type": ty})
                })
                .collect();
            json!({"entry": i, "size": list.len(), "slot": list})
        })
        .collect();
    Ok(Value::Array(slots))
}

fn get(core: &Core, p: &Params) -> RpcResult {
    let (Some(name), Some(key)) = (s(p, 0), s(p, 1)) else {
        return Err(fault("Not enough parameters (htable name and key name)"));
    };
    let t = table(core, &name)?;
    let ItemView { key, value, expire } = t
        .view(&key)
        .ok_or_else(|| fault("Key name doesn't exist in htable."))?;
    let (v, ty) = value_json(&value);
    // flags: AVP_VAL_STR (2) for a string item.
    let flags = if ty == "str" { 2 } else { 0 };
    let exp = if expire == 0 || t.spec.autoexpire == 0 {
        "NEVER".to_string()
    } else {
        date(expire)
    };
    Ok(json!({"item": {"name": key, "value": v, "flags": flags, "expire": exp}}))
}

fn set(core: &Core, p: &Params, int: bool) -> RpcResult {
    let (Some(name), Some(key)) = (s(p, 0), s(p, 1)) else {
        return Err(fault(
            "Not enough parameters (htable name, key name and value)",
        ));
    };
    let t = table(core, &name)?;
    if int {
        let v = n(p, 2)
            .ok_or_else(|| fault("Not enough parameters (htable name, key name and value)"))?;
        t.set(&key, SetVal::Int(v), 0);
    } else {
        let v = s(p, 2)
            .ok_or_else(|| fault("Not enough parameters (htable name, key name and value)"))?;
        t.set(&key, SetVal::Str(&v), 0);
    }
    Ok(json!("Ok. Key set to new value."))
}

fn setex(core: &Core, p: &Params) -> RpcResult {
    let (Some(name), Some(key), Some(exp)) = (s(p, 0), s(p, 1), n(p, 2)) else {
        return Err(fault(
            "Not enough parameters (htable name, item name and expire)",
        ));
    };
    table(core, &name)?.set_expire(&key, exp);
    Ok(json!("Ok"))
}

fn setx(core: &Core, p: &Params, int: bool) -> RpcResult {
    const MSG: &str = "Not enough parameters (htable name, key name, value and expire)";
    let (Some(name), Some(key), Some(exp)) = (s(p, 0), s(p, 1), n(p, 3)) else {
        return Err(fault(MSG));
    };
    // ki_ht_setxs is called directly: an unknown table is "Failed to set the item".
    let t = core
        .htable
        .get(&name)
        .ok_or_else(|| fault("Failed to set the item"))?;
    if int {
        t.set(&key, SetVal::Int(n(p, 2).ok_or_else(|| fault(MSG))?), exp);
    } else {
        t.set(&key, SetVal::Str(&s(p, 2).ok_or_else(|| fault(MSG))?), exp);
    }
    Ok(json!("Ok. Key set to new value."))
}

fn delete(core: &Core, p: &Params) -> RpcResult {
    let (Some(name), Some(key)) = (s(p, 0), s(p, 1)) else {
        return Err(fault("Not enough parameters (htable name & key name)"));
    };
    if table(core, &name)?.remove(&key) {
        Ok(json!("Ok. Key deleted."))
    } else {
        Err(RpcError::new(404, "Key not found in htable."))
    }
}

fn flush(core: &Core, p: &Params) -> RpcResult {
    let name = s(p, 0).ok_or_else(|| fault("No htable name given"))?;
    table(core, &name)?.reset();
    Ok(json!("Ok. Htable flushed."))
}

fn list(core: &Core) -> RpcResult {
    let tables = core.htable.tables();
    if tables.is_empty() {
        return Err(fault("No htables"));
    }
    Ok(Value::Array(
        tables
            .iter()
            .map(|t| {
                let sp = &t.spec;
                json!({
                    "name": sp.name,
                    "dbtable": sp.dbtable.as_deref().unwrap_or(""),
                    "dbmode": sp.dbmode,
                    "expire": sp.autoexpire,
                    "updateexpire": sp.updateexpire as i32,
                    "size": t.slot_count(),
                    "dmqreplicate": sp.dmqreplicate,
                })
            })
            .collect(),
    ))
}

fn stats(core: &Core) -> RpcResult {
    let tables = core.htable.tables();
    if tables.is_empty() {
        return Err(fault("No htables"));
    }
    Ok(Value::Array(
        tables
            .iter()
            .map(|t| {
                let (all, min, max) = t.stats();
                json!({"name": t.name(), "slots": t.slot_count(), "all": all, "min": min, "max": max})
            })
            .collect(),
    ))
}

fn reload(core: &Core, p: &Params) -> RpcResult {
    let name = s(p, 0).ok_or_else(|| fault("No htable name given"))?;
    let t = table(core, &name)?;
    match core.htable.reload(&t) {
        Ok(_) => Ok(json!("Ok. Htable reloaded.")),
        Err(e) => {
            tracing::error!(table = %name, "htable reload failed: {e}");
            Err(fault("Htable reload failed"))
        }
    }
}

fn store(core: &Core, p: &Params) -> RpcResult {
    use super::PersistError::*;
    let name = s(p, 0).ok_or_else(|| fault("No htable name given"))?;
    let t = table(core, &name)?;
    match core.htable.store_now(&t) {
        Ok(()) => Ok(json!("Ok. Htable successfully stored to DB.")),
        Err(NoStore) => Err(fault("No htable db_url")),
        Err(NoDbTable(_)) => Err(fault("No database htable")),
        Err(e) => {
            tracing::error!(table = %name, "htable store failed: {e}");
            Err(fault("Storing htable failed"))
        }
    }
}

/// Register a database-bound command: it runs on a plain thread ([`Registry::register_blocking`]),
/// as [`crate::db::Db::wait`] refuses runtime threads.
fn blocking(
    reg: &mut Registry,
    name: &'static str,
    doc: &'static str,
    core: &Arc<Core>,
    f: fn(&Core, &Params) -> RpcResult,
) {
    let c = core.clone();
    reg.register_blocking(name, doc, move |p| f(&c, &p));
}

/// Register htable.*.
pub fn register(reg: &mut Registry, core: Arc<Core>) {
    type Sync = fn(&Core, &Params) -> RpcResult;
    let sync: [(&'static str, &'static str, Sync); 11] = [
        ("htable.dump", "Dump the contents of hash table.", dump),
        ("htable.get", "Get one key from a hash table.", get),
        (
            "htable.sets",
            "Set one key in a hash table to a string value.",
            |c, p| set(c, p, false),
        ),
        (
            "htable.seti",
            "Set one key in a hash table to an integer value.",
            |c, p| set(c, p, true),
        ),
        (
            "htable.setex",
            "Set expire in a hash table for the item referenced by key.",
            setex,
        ),
        (
            "htable.setxs",
            "Set one key in a hash table to a string value and its expire value.",
            |c, p| setx(c, p, false),
        ),
        (
            "htable.setxi",
            "Set one key in a hash table to an integer value and its expire value.",
            |c, p| setx(c, p, true),
        ),
        ("htable.delete", "Delete one key from a hash table.", delete),
        ("htable.flush", "Flush hash table.", flush),
        ("htable.listTables", "List all htables.", |c, _| list(c)),
        ("htable.stats", "Statistics about htables.", |c, _| stats(c)),
    ];
    for (name, doc, f) in sync {
        let c = core.clone();
        reg.register_sync(name, doc, move |p| f(&c, &p));
    }
    blocking(
        reg,
        "htable.reload",
        "Reload hash table from database.",
        &core,
        reload,
    );
    blocking(
        reg,
        "htable.store",
        "Store hash table to database.",
        &core,
        store,
    );
}
