//! usrloc RPC commands with Kamailio's names and reply shapes (usrloc/ul_rpc.c): `ul.dump`,
//! `ul.lookup`, `ul.rm`, `ul.rm_contact`, `ul.add`, `ul.flush`.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{now, Contact, UlError, Usrloc};
use crate::rpc::{Registry, RpcError};

fn db_fault(e: UlError) -> RpcError {
    tracing::error!("{e}");
    RpcError::new(500, "Operation failed")
}

fn contact_json(c: &Contact, t: i64) -> Value {
    json!({"Contact": {
        "Address": c.uri,
        "Expires": if c.expires == 0 { json!("permanent") } else { json!(c.left(t)) },
        "Q": if c.q < 0 { -1.0 } else { c.q as f64 / 1000.0 },
        "Call-ID": c.callid,
        "CSeq": c.cseq,
        "User-Agent": c.user_agent,
        "Received": c.received.clone().unwrap_or_else(|| "[not set]".into()),
        "Path": c.path.clone().unwrap_or_default(),
        "State": "CS_NEW",
        "Flags": c.flags,
        "CFlags": c.cflags,
        "Socket": c.socket,
        "Methods": if c.methods < 0 { u32::MAX as i64 } else { c.methods },
        "Ruid": c.ruid,
        "Instance": c.instance.clone().unwrap_or_default(),
        "Reg-Id": c.reg_id,
        "Server-Id": 0,
        "Tcpconn-Id": -1,
        "Keepalive": 0,
        "Last-Keepalive": c.last_modified,
        "KA-Roundtrip": 0,
        "Last-Modified": c.last_modified,
    }})
}

fn str_param(p: &[Value], i: usize, what: &str) -> Result<String, RpcError> {
    match p.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) if !v.is_null() => Ok(v.to_string()),
        _ => Err(RpcError::new(500, format!("{what} parameter missing"))),
    }
}

/// Register the ul.* commands.
pub fn register(reg: &mut Registry, ul: Arc<Usrloc>) {
    let u = ul.clone();
    reg.register_blocking("ul.dump", "Dump every usrloc domain", move |_| {
        let t = now();
        let domains: Vec<Value> = u
            .domains()
            .iter()
            .map(|d| {
                let aors: Vec<Value> = d
                    .all()
                    .unwrap_or_else(|e| {
                        tracing::error!(table = %d.name, "ul.dump: {e}");
                        Vec::new()
                    })
                    .iter()
                    .map(|(aor, cs)| {
                        json!({"Info": {
                            "AoR": aor,
                            "HashID": crate::modules::usrloc::rpc::hash_id(aor),
                            "Contacts": cs.iter().map(|c| contact_json(c, t)).collect::<Vec<_>>(),
                        }})
                    })
                    .collect();
                let n = aors.len();
                json!({"Domain": {
                    "Domain": d.name,
                    "Size": 1024,
                    "AoRs": aors,
                    "Stats": {"Records": n, "Max-Slots": 1},
                }})
            })
            .collect();
        Ok(json!({ "Domains": domains }))
    });
    let u = ul.clone();
    reg.register_blocking("ul.lookup", "Contacts of an AoR: table, aor", move |p| {
        let table = str_param(&p, 0, "table")?;
        let aor = str_param(&p, 1, "AOR")?;
        let d = u
            .find(&table)
            .ok_or_else(|| RpcError::new(500, "Domain table not found"))?;
        let cs = d.get(&aor).map_err(db_fault)?;
        if cs.is_empty() {
            return Err(RpcError::new(500, "AOR not found in location table"));
        }
        let t = now();
        Ok(json!({"AoR": aor, "Contacts": cs.iter().map(|c| contact_json(c, t)).collect::<Vec<_>>()}))
    });
    let u = ul.clone();
    reg.register_blocking("ul.rm", "Remove an AoR: table, aor", move |p| {
        let table = str_param(&p, 0, "table")?;
        let aor = str_param(&p, 1, "AOR")?;
        let d = u
            .find(&table)
            .ok_or_else(|| RpcError::new(500, "Domain table not found"))?;
        if !d.remove(&aor).map_err(db_fault)? {
            return Err(RpcError::new(404, "AOR not found"));
        }
        Ok(json!({}))
    });
    let u = ul.clone();
    reg.register_blocking(
        "ul.rm_contact",
        "Remove one contact: table, aor, contact",
        move |p| {
            let table = str_param(&p, 0, "table")?;
            let aor = str_param(&p, 1, "AOR")?;
            let contact = str_param(&p, 2, "contact")?;
            let d = u
                .find(&table)
                .ok_or_else(|| RpcError::new(500, "Domain table not found"))?;
            let removed = d
                .update(&aor, |l| {
                    let before = l.len();
                    l.retain(|c| c.uri != contact);
                    before != l.len()
                })
                .map_err(db_fault)?;
            if !removed {
                return Err(RpcError::new(404, "Contact not found"));
            }
            Ok(json!({}))
        },
    );
    let u = ul.clone();
    reg.register_blocking(
        "ul.add",
        "Add a contact: table, aor, contact, expires, q, path, flags, cflags, methods",
        move |p| {
            let table = str_param(&p, 0, "table")?;
            let aor = str_param(&p, 1, "AOR")?;
            let contact = str_param(&p, 2, "contact")?;
            let num = |i: usize| -> i64 {
                match p.get(i) {
                    Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
                    Some(Value::String(s)) => s.parse().unwrap_or(0),
                    _ => 0,
                }
            };
            let q = match p.get(4) {
                Some(Value::Number(n)) => n.as_f64().unwrap_or(-1.0),
                Some(Value::String(s)) => s.parse().unwrap_or(-1.0),
                _ => -1.0,
            };
            let path = str_param(&p, 5, "path")
                .ok()
                .filter(|s| !s.is_empty() && s != "." && s != "0");
            let t = now();
            let c = Contact {
                uri: contact.clone(),
                // 0 is a permanent binding (usrloc ul_rpc.c).
                expires: if num(3) == 0 { 0 } else { t + num(3) },
                q: if q < 0.0 {
                    -1
                } else {
                    (q * 1000.0).round() as i32
                },
                callid: "dfjrewr12386fd6-343@kamailio.mi".into(),
                cseq: 1,
                received: str_param(&p, 9, "received")
                    .ok()
                    .filter(|s| !s.is_empty() && s != "." && s != "0"),
                path,
                user_agent: "SIP Router MI Server".into(),
                socket: String::new(),
                cflags: num(7) as u64,
                flags: num(6) as u32,
                methods: if p.get(8).is_some() { num(8) } else { -1 },
                instance: None,
                reg_id: 0,
                ruid: format!("uloc-{:x}-{:x}", t, fastrand::u32(..)),
                last_modified: t,
            };
            u.domain(&table)
                .update(&aor, |l| {
                    l.retain(|x| x.uri != contact);
                    l.push(c);
                })
                .map_err(db_fault)?;
            Ok(json!({}))
        },
    );
    let u = ul;
    reg.register_blocking(
        "ul.flush",
        "Write the usrloc cache to the database and remove expired contacts",
        move |_| {
            for d in u.domains() {
                d.flush().map_err(db_fault)?;
            }
            u.sweep();
            Ok(json!({}))
        },
    );
}

/// Kamailio's `HashID` is its core hash of the AoR; any stable 32-bit hash serves.
pub fn hash_id(aor: &str) -> u32 {
    aor.bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
}
