//! htable pseudo-variables (Kamailio ht_var.c): `$sht(t=>k)`, `$shtex(t=>k)`, `$shtinc(t=>k)`,
//! `$shtdec(t=>k)`, `$shtcn(t=>pattern)`, `$shtcv(t=>pattern)`, `$shtitkey(it)`, `$shtitval(it)`.
//! The key is a format: pseudo-variables in it are expanded at run time (`$sht(ipban=>$si)`).

use std::borrow::Cow;

use super::ops::{Count, Target};
use super::table::SetVal;
use crate::modules::pv::{PvSetError, PvVal};
use crate::modules::xlog::{self, Format};
use crate::script::ctx::RouteCtx;

/// What an htable PV does with its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShtPv {
    /// `$sht`: the value (writable; `$null` deletes).
    Val,
    /// `$shtex`: seconds until the item expires (writable).
    Expire,
    /// `$shtinc`: increment, read the new value.
    Inc,
    /// `$shtdec`: decrement, read the new value.
    Dec,
    /// `$shtcn`: number of items whose name matches.
    CountName,
    /// `$shtcv`: number of items whose string value matches.
    CountValue,
}

/// A key: plain text, or a format with pseudo-variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Used as is.
    Plain(String),
    /// Expanded for each access.
    Fmt(Format),
}

/// The inside of `$sht(table=>key)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShtName {
    /// Table name (looked up at access time: an unknown table reads as null, as in Kamailio).
    pub table: String,
    /// Item key.
    pub key: Key,
}

/// Parse `table=>key` (`pv_parse_ht_name`); None when malformed.
pub fn parse_name(s: &str) -> Option<ShtName> {
    let (table, key) = super::spec::split_name(s)?;
    if key.is_empty() {
        return None;
    }
    let key = if key.contains('$') {
        Key::Fmt(xlog::parse(key).ok()?)
    } else {
        Key::Plain(key.to_string())
    };
    Some(ShtName {
        table: table.to_string(),
        key,
    })
}

fn key<'a>(ctx: &RouteCtx, n: &'a ShtName) -> Cow<'a, str> {
    match &n.key {
        Key::Plain(k) => Cow::Borrowed(k),
        Key::Fmt(f) => Cow::Owned(xlog::expand(ctx, f)),
    }
}

/// Read an htable PV.
pub fn get(ctx: &RouteCtx, op: ShtPv, n: &ShtName) -> Option<PvVal> {
    let Some(t) = ctx.core.htable.get(&n.table) else {
        tracing::error!("htable not found for getting $sht({}=>...)", n.table);
        return None;
    };
    let k = key(ctx, n);
    match op {
        ShtPv::Val => t.get(&k).or_else(|| t.spec.initval.map(PvVal::Int)),
        ShtPv::Expire => Some(PvVal::Int(t.expire_left(&k) as i64)),
        ShtPv::Inc => t.add(&k, 1).map(PvVal::Int),
        ShtPv::Dec => t.add(&k, -1).map(PvVal::Int),
        ShtPv::CountName | ShtPv::CountValue => {
            let tg = if op == ShtPv::CountName {
                Target::Name
            } else {
                Target::Value
            };
            let c = Count::parse(&k, tg);
            Some(PvVal::Int(t.count(|it| c.test_item(it, tg)) as i64))
        }
    }
}

/// Write an htable PV: `$sht` sets or (with None) deletes; `$shtex` sets the expire (a string
/// or `$null` sets 0: never, as `pv_set_ht_cell_expire`).
pub fn set(
    ctx: &mut RouteCtx,
    op: ShtPv,
    n: &ShtName,
    val: Option<PvVal>,
) -> Result<(), PvSetError> {
    let core = ctx.core.clone();
    let Some(t) = core.htable.get(&n.table) else {
        return Err(PvSetError::Value(format!(
            "htable not found for setting $sht({}=>...)",
            n.table
        )));
    };
    let k = key(ctx, n);
    match (op, val) {
        (ShtPv::Val, None) => {
            t.remove(&k);
        }
        (ShtPv::Val, Some(v)) => t.set(&k, SetVal::from(&v), 0),
        (ShtPv::Expire, v) => {
            let secs = match v {
                Some(PvVal::Int(i)) => i,
                _ => 0,
            };
            t.set_expire(&k, secs);
        }
        _ => return Err(PvSetError::ReadOnly),
    }
    Ok(())
}

/// `$shtitkey(name)` / `$shtitval(name)`: the item iterator `name` stands on.
pub fn iter_get(ctx: &RouteCtx, want_key: bool, name: &str) -> Option<PvVal> {
    let it = ctx.htable.current(name)?;
    Some(if want_key {
        PvVal::Str(it.key.clone())
    } else {
        it.value.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::pv::Pv;

    #[test]
    fn names() {
        assert_eq!(
            parse_name("ipban=>1.2.3.4"),
            Some(ShtName {
                table: "ipban".into(),
                key: Key::Plain("1.2.3.4".into())
            })
        );
        let n = parse_name("wrongpass=>$au::auth_count").unwrap();
        assert_eq!(n.table, "wrongpass");
        let Key::Fmt(f) = n.key else {
            panic!("not a format")
        };
        assert_eq!(f.items[0], xlog::Item::Pv(Pv::AuthUser));
        assert_eq!(f.items[1], xlog::Item::Text("::auth_count".into()));
        assert!(parse_name("t=>").is_none());
        assert!(parse_name("t").is_none());
        assert!(parse_name("t=>$").is_none());
    }
}
