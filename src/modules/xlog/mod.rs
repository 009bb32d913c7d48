//! xlog (`KSR.xlog.*`, Kamailio src/modules/xlog): log messages with pseudo-variables expanded.
//!
//! The format grammar follows Kamailio's `pv_parse_format` / `pv_locate_name` (core pvapi.c):
//! text up to a `$`, then a PV name whose extent is `$$` (a literal `$`), `$(…)` with balanced
//! parentheses, or `$name` made of `[A-Za-z0-9_.?]` optionally followed by a balanced `(…)`.
//! A `$` that ends the text, or a `(` that is never closed, makes the whole format invalid (the
//! call returns -1 and nothing is printed, as in Kamailio). A PV that ksrd does not know prints
//! `<null>` (Kamailio would reject the format; ksrd lacks some of its PVs, so a log line is more
//! useful than none); a PV whose value is null prints `<null>` as in Kamailio.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;

use crate::modules::pv::{self, Pv, PvVal};
use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};

/// What a null value prints as (Kamailio's `PV_STR_NULL_VAL`).
pub const NULL_TEXT: &str = "<null>";

/// One element of a parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Literal text.
    Text(String),
    /// `$$`: a literal `$`.
    Marker,
    /// A pseudo-variable the pv module reads.
    Pv(Pv),
    /// `$shv(name)`: shared variable.
    Shv(String),
    /// `$xavp(name)` / `$xavp(name[i])` / `$(xavp(name)[i])`: single-level xavp, `i`-th newest.
    Xavp(String, usize),
    /// A PV name ksrd does not know (kept for the message): prints `<null>`.
    Unknown(String),
}

/// A parsed format.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Format {
    /// The elements in order.
    pub items: Vec<Item>,
}

/// Why a format did not parse.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormatError {
    /// `$` at the very end of the text.
    #[error("missing pseudo-variable name after '$' at offset {0}")]
    Truncated(usize),
    /// A `(` that is never closed.
    #[error("non-closing parenthesis in pseudo-variable at offset {0}")]
    Unclosed(usize),
}

fn is_pv_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'?'
}

/// Length of the PV name at the start of `s` (which starts with `$`), as `pv_locate_name`.
fn locate_name(s: &[u8]) -> Option<usize> {
    if s.len() < 2 {
        return None;
    }
    if s[1] == b'$' {
        return Some(2);
    }
    let balanced = |from: usize| {
        let mut depth = 1usize;
        for (i, &c) in s.iter().enumerate().skip(from) {
            match c {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        None
    };
    if s[1] == b'(' {
        return balanced(2);
    }
    let mut i = 1;
    while i < s.len() && is_pv_char(s[i]) {
        i += 1;
    }
    if i < s.len() && s[i] == b'(' {
        return balanced(i + 1);
    }
    Some(i)
}

/// `$xavp(...)` forms ksrd handles (single level), else None.
fn parse_xavp(name: &str) -> Option<(String, usize)> {
    let (inner, outer_idx) = if let Some(r) = name.strip_prefix("$(xavp(") {
        // $(xavp(n)[i])
        let r = r.strip_suffix("])")?;
        let (n, i) = r.split_once(")[")?;
        (n, Some(i.trim().parse().ok()?))
    } else {
        (name.strip_prefix("$xavp(")?.strip_suffix(')')?, None)
    };
    let (n, idx) = match inner.find('[') {
        Some(b) if inner.ends_with(']') && outer_idx.is_none() => (
            &inner[..b],
            inner[b + 1..inner.len() - 1].trim().parse().ok()?,
        ),
        Some(_) => return None,
        None => (inner, outer_idx.unwrap_or(0)),
    };
    let n = n.trim();
    if n.is_empty() || n.contains("=>") {
        return None;
    }
    Some((n.to_string(), idx))
}

/// The item for one located PV name.
fn parse_name(name: &str) -> Item {
    if name == "$$" || name == "$($)" {
        return Item::Marker;
    }
    if let Some(n) = name
        .strip_prefix("$shv(")
        .and_then(|r| r.strip_suffix(')'))
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        return Item::Shv(n.to_string());
    }
    if name.starts_with("$xavp(") || name.starts_with("$(xavp(") {
        // Rows (`$xavp(r=>field)`) are read by the pv module below.
        if let Some((n, i)) = parse_xavp(name) {
            return Item::Xavp(n, i);
        }
    }
    match pv::spec::parse(name) {
        Ok(p) => Item::Pv(p),
        Err(_) => Item::Unknown(name.to_string()),
    }
}

/// Parse a format (`pv_parse_format`).
pub fn parse(fmt: &str) -> Result<Format, FormatError> {
    let b = fmt.as_bytes();
    let mut items = Vec::new();
    let mut p = 0;
    while p < b.len() {
        let start = p;
        while p < b.len() && b[p] != b'$' {
            p += 1;
        }
        if p > start {
            items.push(Item::Text(fmt[start..p].to_string()));
        }
        if p >= b.len() {
            break;
        }
        let len = match locate_name(&b[p..]) {
            Some(l) => l,
            None if b.len() - p < 2 => return Err(FormatError::Truncated(p)),
            None => return Err(FormatError::Unclosed(p)),
        };
        // `$` followed by a character that cannot start a name: Kamailio rejects it too.
        if len < 2 {
            return Err(FormatError::Truncated(p));
        }
        items.push(parse_name(&fmt[p..p + len]));
        p += len;
    }
    Ok(Format { items })
}

fn push_val(out: &mut String, v: Option<PvVal>) {
    match v {
        Some(PvVal::Str(s)) => out.push_str(&s),
        Some(PvVal::Int(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(PvVal::Bytes(b)) => out.push_str(&String::from_utf8_lossy(&b)),
        None => out.push_str(NULL_TEXT),
    }
}

/// Print `f` with the values of the current route (`pv_printf`).
pub fn expand(ctx: &RouteCtx, f: &Format) -> String {
    let mut out = String::new();
    for it in &f.items {
        match it {
            Item::Text(t) => out.push_str(t),
            Item::Marker => out.push('$'),
            Item::Pv(p) => push_val(&mut out, pv::get(ctx, p)),
            Item::Shv(n) => push_val(&mut out, ctx.core.shv.get(n)),
            Item::Xavp(n, i) => push_val(
                &mut out,
                pv::xavp_item(&ctx.xavps, n, *i)
                    .and_then(pv::Xavp::value)
                    .cloned(),
            ),
            Item::Unknown(_) => out.push_str(NULL_TEXT),
        }
    }
    out
}

const CACHE_MAX: usize = 1024;

thread_local! {
    /// Parsed formats by text, per worker thread (scripts pass the same strings every message).
    static CACHE: std::cell::RefCell<HashMap<String, Rc<Format>>> = Default::default();
}

/// Parsed format for `fmt`, from the per-thread cache (bounded: cleared when full).
pub fn cached(fmt: &str) -> Result<Rc<Format>, FormatError> {
    CACHE.with(|c| {
        if let Some(f) = c.borrow().get(fmt) {
            return Ok(f.clone());
        }
        let f = Rc::new(parse(fmt)?);
        for it in &f.items {
            if let Item::Unknown(n) = it {
                tracing::warn!("xlog: unsupported pseudo-variable {n} in format (prints <null>)");
            }
        }
        let mut m = c.borrow_mut();
        if m.len() >= CACHE_MAX {
            m.clear();
        }
        m.insert(fmt.to_string(), f.clone());
        Ok(f)
    })
}

/// Parse (cached) and expand `fmt`; None (error logged) when the format is invalid.
pub fn eval(ctx: &RouteCtx, fmt: &str) -> Option<String> {
    match cached(fmt) {
        Ok(f) => Some(expand(ctx, &f)),
        Err(e) => {
            tracing::error!("xlog: invalid format {fmt:?}: {e}");
            None
        }
    }
}

/// Kamailio log levels as `ki_xlog_get_level` knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// L_ALERT, L_BUG, L_CRIT, L_CRIT2, L_ERR.
    Err,
    /// L_WARN.
    Warn,
    /// L_NOTICE.
    Notice,
    /// L_INFO.
    Info,
    /// L_DBG.
    Dbg,
}

/// `"L_INFO"` etc., case-insensitive; anything else is L_ERR (Kamailio).
pub fn level(s: &str) -> Level {
    match s.to_ascii_lowercase().as_str() {
        "l_warn" => Level::Warn,
        "l_notice" => Level::Notice,
        "l_info" => Level::Info,
        "l_dbg" => Level::Dbg,
        // l_alert, l_bug, l_crit0, l_crit2, l_crit, l_err and unknown names
        _ => Level::Err,
    }
}

fn enabled(l: Level) -> bool {
    match l {
        Level::Err => tracing::enabled!(target: "ksr", tracing::Level::ERROR),
        Level::Warn => tracing::enabled!(target: "ksr", tracing::Level::WARN),
        Level::Notice | Level::Info => tracing::enabled!(target: "ksr", tracing::Level::INFO),
        Level::Dbg => tracing::enabled!(target: "ksr", tracing::Level::DEBUG),
    }
}

/// `ki_xlog_ex`: 1 when printed or the level is off, -1 when the format is invalid.
fn xlog_at(ctx: &RouteCtx, l: Level, fmt: &str) -> Val {
    if !enabled(l) {
        return Val::Int(1);
    }
    let Some(text) = eval(ctx, fmt) else {
        return Val::Int(-1);
    };
    let t = text.strip_suffix('\n').unwrap_or(&text);
    match l {
        Level::Err => tracing::error!(target: "ksr", "{t}"),
        Level::Warn => tracing::warn!(target: "ksr", "{t}"),
        Level::Notice | Level::Info => tracing::info!(target: "ksr", "{t}"),
        Level::Dbg => tracing::debug!(target: "ksr", "{t}"),
    }
    Val::Int(1)
}

fn xdbg(ctx: &mut RouteCtx, a: &Args) -> Val {
    xlog_at(ctx, Level::Dbg, a.str(0))
}
fn xinfo(ctx: &mut RouteCtx, a: &Args) -> Val {
    xlog_at(ctx, Level::Info, a.str(0))
}
fn xnotice(ctx: &mut RouteCtx, a: &Args) -> Val {
    xlog_at(ctx, Level::Notice, a.str(0))
}
fn xwarn(ctx: &mut RouteCtx, a: &Args) -> Val {
    xlog_at(ctx, Level::Warn, a.str(0))
}
fn xerr(ctx: &mut RouteCtx, a: &Args) -> Val {
    xlog_at(ctx, Level::Err, a.str(0))
}
fn xalert(ctx: &mut RouteCtx, a: &Args) -> Val {
    xlog_at(ctx, Level::Err, a.str(0))
}
fn xcrit(ctx: &mut RouteCtx, a: &Args) -> Val {
    xlog_at(ctx, Level::Err, a.str(0))
}
fn xlog(ctx: &mut RouteCtx, a: &Args) -> Val {
    xlog_at(ctx, level(a.str(0)), a.str(1))
}
fn xlog_facility(ctx: &mut RouteCtx, a: &Args) -> Val {
    // The syslog facility has no meaning for ksrd's log output; level and text as xlog().
    xlog_at(ctx, level(a.str(1)), a.str(2))
}

/// `KSR.xlog.*` exports (Kamailio `sr_kemi_xlog_exports`).
pub static EXPORTS: &[Export] = &[
    ex(
        "xlog",
        "xdbg",
        &[("fmt", Str)],
        Int,
        "Log at L_DBG with pseudo-variables expanded; 1, or -1 for an invalid format",
        xdbg,
    ),
    ex(
        "xlog",
        "xinfo",
        &[("fmt", Str)],
        Int,
        "Log at L_INFO with pseudo-variables expanded",
        xinfo,
    ),
    ex(
        "xlog",
        "xnotice",
        &[("fmt", Str)],
        Int,
        "Log at L_NOTICE with pseudo-variables expanded",
        xnotice,
    ),
    ex(
        "xlog",
        "xwarn",
        &[("fmt", Str)],
        Int,
        "Log at L_WARN with pseudo-variables expanded",
        xwarn,
    ),
    ex(
        "xlog",
        "xerr",
        &[("fmt", Str)],
        Int,
        "Log at L_ERR with pseudo-variables expanded",
        xerr,
    ),
    ex(
        "xlog",
        "xalert",
        &[("fmt", Str)],
        Int,
        "Log at L_ALERT with pseudo-variables expanded",
        xalert,
    ),
    ex(
        "xlog",
        "xcrit",
        &[("fmt", Str)],
        Int,
        "Log at L_CRIT with pseudo-variables expanded",
        xcrit,
    ),
    ex(
        "xlog",
        "xlog",
        &[("level", Str), ("fmt", Str)],
        Int,
        "Log at a named level (\"L_INFO\", \"L_ERR\", …; unknown is L_ERR) with pseudo-variables expanded",
        xlog,
    ),
    ex(
        "xlog",
        "xlog_facility",
        &[("facility", Str), ("level", Str), ("fmt", Str)],
        Int,
        "Like xlog, with a syslog facility (ignored by ksrd)",
        xlog_facility,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Item {
        Item::Text(s.into())
    }

    #[test]
    fn plain_and_pvs() {
        assert_eq!(parse("").unwrap().items, vec![]);
        assert_eq!(parse("hello\n").unwrap().items, vec![t("hello\n")]);
        assert_eq!(
            parse("from $si:$sp to $ru\n").unwrap().items,
            vec![
                t("from "),
                Item::Pv(Pv::SrcIp),
                t(":"),
                Item::Pv(Pv::SrcPort),
                t(" to "),
                Item::Pv(Pv::Ru),
                t("\n"),
            ]
        );
        assert_eq!(
            parse("ua=$hdr(User-Agent)!").unwrap().items,
            vec![t("ua="), Item::Pv(Pv::Hdr("User-Agent".into())), t("!")]
        );
        assert_eq!(
            parse("$(avp(x)[1])$var(v)").unwrap().items,
            vec![
                Item::Pv(Pv::Avp("x".into(), Some(1))),
                Item::Pv(Pv::Var("v".into()))
            ]
        );
    }

    #[test]
    fn marker_and_names() {
        assert_eq!(
            parse("cost $$5 $($)").unwrap().items,
            vec![t("cost "), Item::Marker, t("5 "), Item::Marker]
        );
        // '.' is a name character (Kamailio): "$si." is an unknown PV, not $si then "."
        assert_eq!(
            parse("$si.").unwrap().items,
            vec![Item::Unknown("$si.".into())]
        );
        assert_eq!(
            parse("$nosuch x").unwrap().items,
            vec![Item::Unknown("$nosuch".into()), t(" x")]
        );
        assert_eq!(
            parse("$shv(a) $xavp(b) $xavp(c[2]) $(xavp(d)[1])")
                .unwrap()
                .items,
            vec![
                Item::Shv("a".into()),
                t(" "),
                Item::Xavp("b".into(), 0),
                t(" "),
                Item::Xavp("c".into(), 2),
                t(" "),
                Item::Xavp("d".into(), 1),
            ]
        );
        // rows (sql_xquery) are read by the pv module
        assert!(matches!(
            &parse("$xavp(r=>k)").unwrap().items[..],
            [Item::Pv(Pv::Xavp(x))] if x.name == "r" && x.key.as_deref() == Some("k")
        ));
        // nested parentheses inside the name stay in the name
        assert_eq!(
            parse("$hdr(X(1))z").unwrap().items,
            vec![Item::Pv(Pv::Hdr("X(1)".into())), t("z")]
        );
    }

    #[test]
    fn invalid() {
        assert_eq!(parse("a $"), Err(FormatError::Truncated(2)));
        assert_eq!(parse("a $ b"), Err(FormatError::Truncated(2)));
        assert_eq!(parse("$hdr(X"), Err(FormatError::Unclosed(0)));
        assert_eq!(parse("x $(avp(a)[1]"), Err(FormatError::Unclosed(2)));
    }

    #[test]
    fn levels() {
        assert_eq!(level("L_INFO"), Level::Info);
        assert_eq!(level("l_dbg"), Level::Dbg);
        assert_eq!(level("L_WARN"), Level::Warn);
        assert_eq!(level("L_NOTICE"), Level::Notice);
        assert_eq!(level("L_CRIT"), Level::Err);
        assert_eq!(level("bogus"), Level::Err);
    }

    #[test]
    fn cache_reuses() {
        let a = cached("x $ru y").unwrap();
        let b = cached("x $ru y").unwrap();
        assert!(Rc::ptr_eq(&a, &b));
        assert!(cached("bad $").is_err());
    }
}
