//! pvx (`KSR.pvx.*`, the KEMI exports of Kamailio's pv module, src/modules/pv/pv.c): `$var`,
//! `$avp`, `$shv` and single-level `$xavp` access by name, without pseudo-variable parsing, and
//! `evalx`.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::modules::modparam::ModParams;
use crate::modules::pv::{self, PvVal, Xavp};
use crate::modules::xlog;
use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};

/// `$shv(name)` values: one store per server, shared by every worker (Kamailio keeps them in
/// shared memory behind a lock).
#[derive(Default)]
pub struct ShvStore {
    map: Mutex<HashMap<String, PvVal>>,
}

/// Parse one `shvset`/`varset` value: `name=i:123` or `name=s:text` (Kamailio `param_set_xvar`).
pub fn parse_xvar(s: &str) -> Result<(String, PvVal), String> {
    let (name, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("expected name=type:value, got {s:?}"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("empty variable name in {s:?}"));
    }
    let rest = rest.trim_start();
    let (ty, val) = rest
        .split_once(':')
        .ok_or_else(|| format!("expected type:value after '=' in {s:?}"))?;
    let v = match ty.trim() {
        "s" | "S" => PvVal::Str(val.to_string()),
        "i" | "I" => PvVal::Int(
            val.trim()
                .parse()
                .map_err(|_| format!("invalid integer in {s:?}"))?,
        ),
        other => {
            return Err(format!(
                "unknown value type {other:?} in {s:?} (use s or i)"
            ))
        }
    };
    Ok((name.to_string(), v))
}

impl ShvStore {
    /// The store with the initial values of `modparam.pv.shvset` (bad entries are logged).
    pub fn from_params(p: &ModParams) -> ShvStore {
        let mut map = HashMap::new();
        for s in p.get_list("pv", "shvset") {
            match parse_xvar(&s) {
                Ok((n, v)) => {
                    map.insert(n, v);
                }
                Err(e) => tracing::error!("modparam pv.shvset: {e}"),
            }
        }
        ShvStore {
            map: Mutex::new(map),
        }
    }
    /// Value of `$shv(name)`, None when it was never set.
    pub fn get(&self, name: &str) -> Option<PvVal> {
        self.map.lock().get(name).cloned()
    }
    /// Set `$shv(name)`.
    pub fn set(&self, name: &str, v: PvVal) {
        self.map.lock().insert(name.to_string(), v);
    }
}

fn xval(v: Option<PvVal>, null: Val) -> Val {
    v.map(Val::from).unwrap_or(null)
}
fn null_none() -> Val {
    Val::None
}
fn null_empty() -> Val {
    Val::Str(String::new())
}
fn null_print() -> Val {
    Val::Str("<<null>>".into())
}

// ---- $var ------------------------------------------------------------------------------------

fn var_seti(ctx: &mut RouteCtx, a: &Args) -> Val {
    ctx.vars.insert(a.str(0).to_string(), PvVal::Int(a.int(1)));
    Val::Int(1)
}
fn var_sets(ctx: &mut RouteCtx, a: &Args) -> Val {
    ctx.vars
        .insert(a.str(0).to_string(), PvVal::Str(a.str(1).to_string()));
    Val::Int(1)
}
fn var_get(ctx: &mut RouteCtx, a: &Args) -> Val {
    match ctx.vars.get(a.str(0)) {
        Some(v) => v.clone().into(),
        None => {
            // pv_svar.c ki_var_get: undefined is 0, with a warning.
            tracing::warn!("$var({}) is not defined - return value 0", a.str(0));
            Val::Int(0)
        }
    }
}

// ---- $shv ------------------------------------------------------------------------------------

fn shv_seti(ctx: &mut RouteCtx, a: &Args) -> Val {
    ctx.core.shv.set(a.str(0), PvVal::Int(a.int(1)));
    Val::Int(1)
}
fn shv_sets(ctx: &mut RouteCtx, a: &Args) -> Val {
    ctx.core.shv.set(a.str(0), PvVal::Str(a.str(1).to_string()));
    Val::Int(1)
}
fn shv_get(ctx: &mut RouteCtx, a: &Args) -> Val {
    match ctx.core.shv.get(a.str(0)) {
        Some(v) => v.into(),
        None => {
            tracing::warn!("$shv({}) is not defined - return value 0", a.str(0));
            Val::Int(0)
        }
    }
}

// ---- $avp (string names; newest value last in the stack) --------------------------------------

/// Push a value on a named stack ($avp / $xavp); always 1.
fn push(stacks: &mut std::collections::HashMap<String, Vec<PvVal>>, name: &str, v: PvVal) -> Val {
    stacks.entry(name.to_string()).or_default().push(v);
    Val::Int(1)
}

fn avp_seti(ctx: &mut RouteCtx, a: &Args) -> Val {
    push(&mut ctx.avps, a.str(0), PvVal::Int(a.int(1)))
}
fn avp_sets(ctx: &mut RouteCtx, a: &Args) -> Val {
    push(&mut ctx.avps, a.str(0), PvVal::Str(a.str(1).to_string()))
}
fn avp_newest(ctx: &RouteCtx, name: &str) -> Option<PvVal> {
    ctx.avps.get(name).and_then(|st| st.last()).cloned()
}
fn avp_get(ctx: &mut RouteCtx, a: &Args) -> Val {
    xval(avp_newest(ctx, a.str(0)), null_none())
}
fn avp_gete(ctx: &mut RouteCtx, a: &Args) -> Val {
    xval(avp_newest(ctx, a.str(0)), null_empty())
}
fn avp_getw(ctx: &mut RouteCtx, a: &Args) -> Val {
    xval(avp_newest(ctx, a.str(0)), null_print())
}
fn avp_rm(ctx: &mut RouteCtx, a: &Args) -> Val {
    // destroy_avps(..., all=0) removes every value of the name; always 1.
    ctx.avps.remove(a.str(0));
    Val::Int(1)
}
fn avp_is_null(ctx: &mut RouteCtx, a: &Args) -> Val {
    // kamailio-defects.md: Kamailio deletes the AVP first, so it always answers 1; ksrd only looks.
    let absent = ctx.avps.get(a.str(0)).is_none_or(|st| st.is_empty());
    Val::Int(if absent { 1 } else { -1 })
}

// ---- $xavp (single level, per message; newest value last) -------------------------------------

fn xavp_push(ctx: &mut RouteCtx, name: &str, v: PvVal) -> Val {
    ctx.xavps
        .entry(name.to_string())
        .or_default()
        .push(Xavp::Val(v));
    Val::Int(1)
}
fn xavp_seti(ctx: &mut RouteCtx, a: &Args) -> Val {
    xavp_push(ctx, a.str(0), PvVal::Int(a.int(1)))
}
fn xavp_sets(ctx: &mut RouteCtx, a: &Args) -> Val {
    xavp_push(ctx, a.str(0), PvVal::Str(a.str(1).to_string()))
}
fn xavp_newest(ctx: &RouteCtx, name: &str) -> Option<PvVal> {
    pv::xavp_item(&ctx.xavps, name, 0)
        .and_then(Xavp::value)
        .cloned()
}
fn xavp_get(ctx: &mut RouteCtx, a: &Args) -> Val {
    xval(xavp_newest(ctx, a.str(0)), null_none())
}
fn xavp_gete(ctx: &mut RouteCtx, a: &Args) -> Val {
    xval(xavp_newest(ctx, a.str(0)), null_empty())
}
fn xavp_getw(ctx: &mut RouteCtx, a: &Args) -> Val {
    xval(xavp_newest(ctx, a.str(0)), null_print())
}
fn xavp_rm(ctx: &mut RouteCtx, a: &Args) -> Val {
    // xavp_rm_by_index(name, 0): only the newest value; 1 whether or not there was one.
    if let Some(st) = ctx.xavps.get_mut(a.str(0)) {
        st.pop();
        if st.is_empty() {
            ctx.xavps.remove(a.str(0));
        }
    }
    Val::Int(1)
}
fn xavp_rm_all(ctx: &mut RouteCtx, a: &Args) -> Val {
    // ki_xav_rm_all: the number removed, or 1 when there was none.
    let n = ctx.xavps.remove(a.str(0)).map_or(0, |st| st.len());
    Val::Int(n.max(1) as i64)
}
fn xavp_is_null(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(if xavp_newest(ctx, a.str(0)).is_none() {
        1
    } else {
        -1
    })
}

// ---- evalx ------------------------------------------------------------------------------------

/// `$shv(n)` / `$xavp(n)` destinations, which the pv module does not write.
fn set_special(ctx: &mut RouteCtx, dst: &str, v: &str) -> Option<bool> {
    let inner = |p: &str| {
        dst.trim()
            .strip_prefix(p)
            .and_then(|r| r.strip_suffix(')'))
            .map(str::trim)
            .filter(|n| !n.is_empty() && !n.contains(['[', '=', '(']))
            .map(str::to_string)
    };
    if let Some(n) = inner("$shv(") {
        ctx.core.shv.set(&n, PvVal::Str(v.to_string()));
        return Some(true);
    }
    if let Some(n) = inner("$xavp(") {
        // `$xavp(n) = v` adds a new value (Kamailio pv_set_xavp without index).
        ctx.xavps
            .entry(n)
            .or_default()
            .push(Xavp::Val(PvVal::Str(v.to_string())));
        return Some(true);
    }
    None
}

fn evalx(ctx: &mut RouteCtx, a: &Args) -> Val {
    let (dst, fmt) = (a.str(0), a.str(1));
    if dst.is_empty() {
        tracing::error!("invalid destination var name");
        return Val::Int(-1);
    }
    let Some(text) = xlog::eval(ctx, fmt) else {
        tracing::error!("cannot eval reparsed value of second parameter");
        return Val::Int(-1);
    };
    if let Some(ok) = set_special(ctx, dst, &text) {
        return Val::Int(if ok { 1 } else { -1 });
    }
    let spec = match ctx.pv_cache.get(dst) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("cannot get pv spec for [{dst}]: {e}");
            return Val::Int(-1);
        }
    };
    match pv::set(ctx, &spec, Some(PvVal::Str(text))) {
        Ok(()) => Val::Int(1),
        Err(e) => {
            tracing::error!("setting PV failed: {dst}: {e}");
            Val::Int(-1)
        }
    }
}

/// `KSR.pvx.*` exports (the common subset of Kamailio `sr_kemi_pvx_exports`).
pub static EXPORTS: &[Export] = &[
    ex(
        "pvx",
        "var_seti",
        &[("name", Str), ("value", Int)],
        Int,
        "Set $var(name) to an integer; 1",
        var_seti,
    ),
    ex(
        "pvx",
        "var_sets",
        &[("name", Str), ("value", Str)],
        Int,
        "Set $var(name) to a string; 1",
        var_sets,
    ),
    ex(
        "pvx",
        "var_get",
        &[("name", Str)],
        Xval,
        "Value of $var(name) (per worker, kept across messages); 0 when never set",
        var_get,
    ),
    ex(
        "pvx",
        "shv_seti",
        &[("name", Str), ("value", Int)],
        Int,
        "Set $shv(name) (shared by all workers) to an integer; 1",
        shv_seti,
    ),
    ex(
        "pvx",
        "shv_sets",
        &[("name", Str), ("value", Str)],
        Int,
        "Set $shv(name) (shared by all workers) to a string; 1",
        shv_sets,
    ),
    ex(
        "pvx",
        "shv_get",
        &[("name", Str)],
        Xval,
        "Value of $shv(name); 0 when never set",
        shv_get,
    ),
    ex(
        "pvx",
        "xavp_seti",
        &[("name", Str), ("value", Int)],
        Int,
        "Add an integer value on top of $xavp(name); 1",
        xavp_seti,
    ),
    ex(
        "pvx",
        "xavp_sets",
        &[("name", Str), ("value", Str)],
        Int,
        "Add a string value on top of $xavp(name); 1",
        xavp_sets,
    ),
    ex(
        "pvx",
        "xavp_get",
        &[("name", Str)],
        Xval,
        "Newest value of $xavp(name), None when absent",
        xavp_get,
    ),
    ex(
        "pvx",
        "xavp_gete",
        &[("name", Str)],
        Xval,
        "Newest value of $xavp(name), \"\" when absent",
        xavp_gete,
    ),
    ex(
        "pvx",
        "xavp_getw",
        &[("name", Str)],
        Xval,
        "Newest value of $xavp(name), \"<<null>>\" when absent",
        xavp_getw,
    ),
    ex(
        "pvx",
        "xavp_rm",
        &[("name", Str)],
        Int,
        "Remove the newest value of $xavp(name); 1",
        xavp_rm,
    ),
    ex(
        "pvx",
        "xavp_rm_all",
        &[("name", Str)],
        Int,
        "Remove every value of $xavp(name); the number removed (1 when none)",
        xavp_rm_all,
    ),
    ex(
        "pvx",
        "xavp_is_null",
        &[("name", Str)],
        Int,
        "1 when $xavp(name) is absent, else -1",
        xavp_is_null,
    ),
    ex(
        "pvx",
        "evalx",
        &[("dst", Str), ("fmt", Str)],
        Int,
        "Expand pseudo-variables in fmt and assign the text to the PV dst; 1, or -1 on error",
        evalx,
    ),
    ex(
        "pvx",
        "avp_seti",
        &[("name", Str), ("value", Int)],
        Int,
        "Add an integer value on top of $avp(name); 1",
        avp_seti,
    ),
    ex(
        "pvx",
        "avp_sets",
        &[("name", Str), ("value", Str)],
        Int,
        "Add a string value on top of $avp(name); 1",
        avp_sets,
    ),
    ex(
        "pvx",
        "avp_get",
        &[("name", Str)],
        Xval,
        "Newest value of $avp(name), None when absent",
        avp_get,
    ),
    ex(
        "pvx",
        "avp_gete",
        &[("name", Str)],
        Xval,
        "Newest value of $avp(name), \"\" when absent",
        avp_gete,
    ),
    ex(
        "pvx",
        "avp_getw",
        &[("name", Str)],
        Xval,
        "Newest value of $avp(name), \"<<null>>\" when absent",
        avp_getw,
    ),
    ex(
        "pvx",
        "avp_rm",
        &[("name", Str)],
        Int,
        "Remove every value of $avp(name); 1",
        avp_rm,
    ),
    ex(
        "pvx",
        "avp_is_null",
        &[("name", Str)],
        Int,
        "1 when $avp(name) is absent, else -1 (never deletes)",
        avp_is_null,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xvar_params() {
        assert_eq!(
            parse_xvar("debug=i:3").unwrap(),
            ("debug".into(), PvVal::Int(3))
        );
        assert_eq!(
            parse_xvar("gw = s:sip:a=b").unwrap(),
            ("gw".into(), PvVal::Str("sip:a=b".into()))
        );
        assert!(parse_xvar("x=i:abc").is_err());
        assert!(parse_xvar("x").is_err());
        assert!(parse_xvar("x=q:1").is_err());
    }
}
