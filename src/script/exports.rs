//! The KEMI export declaration: one table entry per `KSR` function (name, parameters, return, doc, code).
//! The Python binding, `app_python.api_list` and the type stubs are all generated from these tables.

use super::ctx::RouteCtx;

/// KEMI parameter/return types (`SR_KEMIP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// No value (`None` in Python).
    Void,
    /// Integer.
    Int,
    /// String.
    Str,
    /// `True`/`False`.
    Bool,
    /// `str`, `int` or `None`.
    Xval,
    /// A list of `str`, `int`, `float` or `None` (parameter only; a ksrd extension, e.g. the
    /// bound values of `KSR.sqlops.sql_query_params`).
    List,
}

impl Ty {
    /// Name used by `app_python.api_list`.
    pub fn api_name(self) -> &'static str {
        match self {
            Ty::Void => "none",
            Ty::Int => "int",
            Ty::Str => "str",
            Ty::Bool => "bool",
            Ty::Xval => "xval",
            Ty::List => "list",
        }
    }
    /// Python type for stubs.
    pub fn py_name(self) -> &'static str {
        match self {
            Ty::Void => "None",
            Ty::Int => "int",
            Ty::Str => "str",
            Ty::Bool => "bool",
            Ty::Xval => "str | int | None",
            Ty::List => "list[str | int | float | None]",
        }
    }
}

/// An argument as received from Python (borrowed, no copy for strings).
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// Integer argument.
    Int(i64),
    /// String argument.
    Str(&'a str),
    /// List argument (converted from Python before the call).
    List(&'a [ListItem]),
}

/// One element of a [`Ty::List`] argument.
#[derive(Debug, Clone, PartialEq)]
pub enum ListItem {
    /// `None`.
    None,
    /// `int` (or `bool`).
    Int(i64),
    /// `float`.
    Float(f64),
    /// `str`.
    Str(String),
}

/// Arguments of one call (at most 6, as in KEMI).
pub struct Args<'a> {
    /// The values, in declaration order.
    pub v: [Arg<'a>; 6],
}

impl<'a> Args<'a> {
    /// Integer argument `i` (0 when it is not an integer, which the binding prevents).
    #[inline]
    pub fn int(&self, i: usize) -> i64 {
        match self.v[i] {
            Arg::Int(n) => n,
            Arg::Str(s) => s.parse().unwrap_or(0),
            Arg::List(_) => 0,
        }
    }
    /// String argument `i`.
    #[inline]
    pub fn str(&self, i: usize) -> &'a str {
        match self.v[i] {
            Arg::Str(s) => s,
            Arg::Int(_) | Arg::List(_) => "",
        }
    }
    /// List argument `i` (empty when it is not a list, which the binding prevents).
    #[inline]
    pub fn list(&self, i: usize) -> &'a [ListItem] {
        match self.v[i] {
            Arg::List(l) => l,
            _ => &[],
        }
    }
}

/// A return value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// Python `None`.
    None,
    /// Integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// String.
    Str(String),
    /// Bytes decoded with `surrogateescape` on the Python side (bodies).
    Bytes(Vec<u8>),
}

impl From<bool> for Val {
    fn from(b: bool) -> Val {
        Val::Bool(b)
    }
}
impl From<i64> for Val {
    fn from(i: i64) -> Val {
        Val::Int(i)
    }
}
impl From<i32> for Val {
    fn from(i: i32) -> Val {
        Val::Int(i as i64)
    }
}

/// The Rust side of one export.
pub type ExportFn = fn(&mut RouteCtx, &Args<'_>) -> Val;

/// One KEMI export.
pub struct Export {
    /// Sub-module (`"sl"` for `KSR.sl.*`), `""` for core `KSR.*`.
    pub module: &'static str,
    /// Function name.
    pub name: &'static str,
    /// Parameter names and types.
    pub params: &'static [(&'static str, Ty)],
    /// Return type.
    pub ret: Ty,
    /// One-line doc.
    pub doc: &'static str,
    /// Implementation.
    pub func: ExportFn,
}

/// Shorthand used by the export tables: `ex("sl", "sl_send_reply", &[("code", Int), ("reason", Str)], Int, "…", f)`.
pub const fn ex(
    module: &'static str,
    name: &'static str,
    params: &'static [(&'static str, Ty)],
    ret: Ty,
    doc: &'static str,
    func: ExportFn,
) -> Export {
    Export {
        module,
        name,
        params,
        ret,
        doc,
        func,
    }
}

/// KEMI return codes, named.
pub mod rc {
    /// Success / true.
    pub const OK: i64 = 1;
    /// Failure / false.
    pub const ERR: i64 = -1;
}

/// Every export of every module, in `api_list` order.
pub fn all() -> impl Iterator<Item = &'static Export> {
    crate::modules::EXPORT_TABLES.iter().flat_map(|t| t.iter())
}

/// Generate the `KSR` type stub (`KSR.pyi` and its sub-modules in one file via classes).
pub fn stubs() -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write;
    let mut by_mod: BTreeMap<&str, Vec<&Export>> = BTreeMap::new();
    for e in all() {
        by_mod.entry(e.module).or_default().push(e);
    }
    let mut s = String::from("\"\"\"Type stubs for the `KSR` module embedded in ksrd (generated from the export tables).\"\"\"\n\n");
    let sig = |e: &Export, indent: &str, out: &mut String| {
        let params: Vec<String> = e
            .params
            .iter()
            .map(|(n, t)| format!("{n}: {}", t.py_name()))
            .collect();
        let _ = writeln!(
            out,
            "{indent}def {}({}) -> {}:\n{indent}    \"\"\"{}\"\"\"\n{indent}    ...\n",
            e.name,
            params.join(", "),
            e.ret.py_name(),
            e.doc.replace('\\', "\\\\").replace('"', "\\\"")
        );
    };
    if let Some(core) = by_mod.get("") {
        for e in core {
            sig(e, "", &mut s);
        }
    }
    for (m, list) in by_mod.iter().filter(|(m, _)| !m.is_empty()) {
        let _ = writeln!(s, "class {m}:\n    \"\"\"KSR.{m} functions.\"\"\"\n");
        for e in list {
            let _ = writeln!(s, "    @staticmethod");
            sig(e, "    ", &mut s);
        }
    }
    s
}
