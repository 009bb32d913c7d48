//! The embedded `KSR` Python module, generated from the export tables.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};

use pyo3::exceptions::{PyRuntimeError, PySystemExit, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyCFunction, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::ctx::with_current;
use super::exports::{self, Arg, Args, Export, ListItem, Ty, Val};
use super::host::{call_route, RouteOutcome};
use super::msgobj::PyMsg;

fn leak_cstr(s: String) -> &'static CStr {
    let c = CString::new(s.replace('\0', " ")).unwrap_or_default();
    Box::leak(c.into_boxed_c_str())
}

/// Convert a return value to Python.
pub fn val_to_py(py: Python<'_>, v: Val) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Val::None => py.None(),
        Val::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Val::Bool(b) => pyo3::types::PyBool::new(py, b)
            .to_owned()
            .into_any()
            .unbind(),
        Val::Str(s) => PyString::new(py, &s).into_any().unbind(),
        Val::Bytes(b) => {
            let bytes = pyo3::types::PyBytes::new(py, &b);
            bytes
                .call_method1("decode", ("utf-8", "surrogateescape"))?
                .unbind()
        }
    })
}

/// The value a function returns when it cannot run (no routing context on this thread).
fn failure(ret: Ty) -> Val {
    match ret {
        Ty::Int => Val::Int(-1),
        Ty::Bool => Val::Bool(false),
        _ => Val::None,
    }
}

/// A `list` (or `tuple`) argument of str, int, float, bool or None.
fn list_arg(e: &Export, pname: &str, item: &Bound<'_, PyAny>) -> PyResult<Vec<ListItem>> {
    let bad =
        |what: String| PyTypeError::new_err(format!("KSR {}(): parameter {pname} {what}", e.name));
    let seq: Vec<Bound<'_, PyAny>> = if let Ok(l) = item.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = item.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(bad("must be a list".into()));
    };
    seq.iter()
        .enumerate()
        .map(|(k, x)| {
            if x.is_none() {
                Ok(ListItem::None)
            } else if let Ok(b) = x.cast::<PyBool>() {
                Ok(ListItem::Int(b.is_true() as i64))
            } else if let Ok(s) = x.extract::<&str>() {
                Ok(ListItem::Str(s.to_string()))
            } else if x.cast::<PyInt>().is_ok() {
                x.extract::<i64>()
                    .map(ListItem::Int)
                    .map_err(|_| bad(format!("[{k}]: integer out of 64-bit range")))
            } else if let Ok(f) = x.cast::<PyFloat>() {
                Ok(ListItem::Float(f.value()))
            } else {
                Err(bad(format!(
                    "[{k}] must be str, int, float or None, not {}",
                    x.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                )))
            }
        })
        .collect()
}

fn call(e: &'static Export, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
    let py = args.py();
    let n = args.len();
    if n != e.params.len() {
        let dot = if e.module.is_empty() { "" } else { "." };
        return Err(PyTypeError::new_err(format!(
            "KSR.{}{dot}{}() takes {} argument(s) ({n} given)",
            e.module,
            e.name,
            e.params.len()
        )));
    }
    // List arguments are converted first: the Args borrow them.
    let mut lists: Vec<Vec<ListItem>> = Vec::new();
    for (i, (pname, ty)) in e.params.iter().enumerate() {
        if *ty == Ty::List {
            lists.push(list_arg(e, pname, &args.get_item(i)?)?);
        }
    }
    let mut lists_iter = lists.iter();
    let mut v = [Arg::Int(0); 6];
    for (i, (pname, ty)) in e.params.iter().enumerate() {
        let item = args.get_borrowed_item(i)?;
        v[i] = match ty {
            Ty::List => Arg::List(lists_iter.next().map_or(&[][..], |l| l.as_slice())),
            Ty::Str => Arg::Str(item.extract::<&str>().map_err(|_| {
                PyTypeError::new_err(format!("KSR {}(): parameter {pname} must be str", e.name))
            })?),
            _ => Arg::Int(item.extract::<i64>().map_err(|_| {
                PyTypeError::new_err(format!("KSR {}(): parameter {pname} must be int", e.name))
            })?),
        };
    }
    let a = Args { v };
    let mut r = match with_current(|ctx| (e.func)(ctx, &a)) {
        Some(r) => r,
        None => {
            tracing::warn!(
                function = e.name,
                "KSR call from a thread without a routing context"
            );
            failure(e.ret)
        }
    };
    if let Some(v) = crate::tm::branch_route::run_pending(py) {
        r = v;
    }
    flush_onsend(py);
    val_to_py(py, r)
}

/// Run `ksr_onsend_route` for requests a KSR call queued for sending, then send the ones it did
/// not drop (Kamailio's onsend_route: `KSR.set_drop()` there stops that send).
fn flush_onsend(py: Python<'_>) {
    loop {
        let next = with_current(|c| {
            if c.pending_sends.is_empty() {
                return None;
            }
            let s = c.pending_sends.remove(0);
            c.in_onsend = true;
            let prev_drop = std::mem::replace(&mut c.drop, false);
            Some((s, c.gen.clone(), c.msg_seq, c.core.clone(), prev_drop))
        })
        .flatten();
        let Some((send, gen, seq, core, prev_drop)) = next else {
            return;
        };
        let outcome = match gen {
            Some(g) => {
                let pm = Bound::new(py, PyMsg::new(seq)).ok().map(|b| b.into_any());
                call_route(py, &g, pyo3::intern!(py, "ksr_onsend_route"), pm)
            }
            None => RouteOutcome::Missing,
        };
        let dropped = with_current(|c| {
            c.in_onsend = false;
            std::mem::replace(&mut c.drop, prev_drop)
        })
        .unwrap_or(false);
        if let RouteOutcome::Error(tb) = outcome {
            tracing::error!("exception in ksr_onsend_route:\n{tb}");
        }
        if dropped {
            tracing::debug!(dest = %send.dest, "send dropped by ksr_onsend_route");
        } else if let Err(e) = crate::core::forward::transmit(&core, send) {
            tracing::error!("forward failed: {e}");
        }
    }
}

fn make_fn<'py>(py: Python<'py>, e: &'static Export) -> PyResult<Bound<'py, PyCFunction>> {
    let name = leak_cstr(e.name.to_string());
    let params: Vec<String> = e
        .params
        .iter()
        .map(|(n, t)| format!("{n}: {}", t.py_name()))
        .collect();
    let doc = leak_cstr(format!(
        "{}({}) -> {}\n\n{}",
        e.name,
        params.join(", "),
        e.ret.py_name(),
        e.doc
    ));
    PyCFunction::new_closure(
        py,
        Some(name),
        Some(doc),
        move |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| call(e, args),
    )
}

/// `KSR.x.exit()`: stop the route like cfg `exit` (an extension; app_python3 lacks it).
#[pyfunction]
fn exit() -> PyResult<()> {
    Err(PySystemExit::new_err(0))
}

/// `KSR.x.drop()`: drop the message and stop the route (extension).
#[pyfunction]
#[pyo3(name = "drop")]
fn drop_msg() -> PyResult<()> {
    with_current(|ctx| ctx.drop = true);
    Err(PySystemExit::new_err(0))
}

/// `KSR.x.modf()`: native cfg functions by name do not exist in ksrd.
#[pyfunction]
#[pyo3(signature = (*_args))]
fn modf(_args: &Bound<'_, PyTuple>) -> PyResult<i64> {
    Err(PyRuntimeError::new_err(
        "KSR.x.modf is not supported by ksrd: call the KSR.<module>.<function> export instead",
    ))
}

/// Kamailio modules a KEMI script may call that ksrd does not provide (yet). `KSR.<name>` resolves
/// to a placeholder whose functions raise an error naming the module and the function, so the
/// traceback tells the operator exactly what is missing instead of a bare AttributeError.
const KNOWN_KAMAILIO_MODULES: &[&str] = &[
    "acc",
    "alias_db",
    "app_python3",
    "async",
    "auth",
    "auth_db",
    "avpops",
    "cfgutils",
    "dialog",
    "dispatcher",
    "dmq",
    "domain",
    "geoip2",
    "htable",
    "jsonrpcs",
    "msilo",
    "nathelper",
    "path",
    "permissions",
    "pike",
    "pvx",
    "registrar",
    "rtpengine",
    "rtpproxy",
    "sdpops",
    "siptrace",
    "sqlops",
    "textops",
    "textopsx",
    "tm",
    "tmx",
    "topos",
    "uac",
    "usrloc",
    "websocket",
    "xhttp",
    "xlog",
];

const MISSING_HOOK: &std::ffi::CStr = c"
class _MissingModule:
    __slots__ = ('_name',)
    def __init__(self, name):
        self._name = name
    def __getattr__(self, fn):
        if fn.startswith('__'):
            raise AttributeError(fn)
        mod = self._name
        def missing(*args):
            raise NotImplementedError(
                'KSR.%s.%s(): module %r is not available in ksrd (yet)' % (mod, fn, mod))
        missing.__name__ = fn
        return missing
    def __repr__(self):
        return '<KSR.%s: not available in ksrd>' % self._name

def make_getattr(known):
    known = frozenset(known)
    def __getattr__(name):
        if name in known:
            return _MissingModule(name)
        raise AttributeError(\"module 'KSR' has no attribute %r\" % name)
    return __getattr__
";

fn add_missing_module_hook(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let helper = PyModule::from_code(py, MISSING_HOOK, c"<ksrd KSR hook>", c"_ksrd_ksr_hook")?;
    let known: Vec<&str> = KNOWN_KAMAILIO_MODULES
        .iter()
        .copied()
        .filter(|n| !m.hasattr(*n).unwrap_or(false))
        .collect();
    let getattr = helper.getattr("make_getattr")?.call1((known,))?;
    m.add("__getattr__", getattr)
}

/// Module init for `import KSR`.
#[pymodule]
#[pyo3(name = "KSR")]
pub fn ksr_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let mut subs: BTreeMap<&'static str, Bound<'_, PyModule>> = BTreeMap::new();
    for e in exports::all() {
        let f = make_fn(py, e)?;
        if e.module.is_empty() {
            m.add(e.name, f)?;
        } else {
            let sub = match subs.get(e.module) {
                Some(s) => s.clone(),
                None => {
                    let s = PyModule::new(py, e.module)?;
                    subs.insert(e.module, s.clone());
                    s
                }
            };
            sub.add(e.name, f)?;
        }
    }
    let x = PyModule::new(py, "x")?;
    x.add_function(wrap_pyfunction!(exit, &x)?)?;
    x.add_function(wrap_pyfunction!(drop_msg, &x)?)?;
    x.add_function(wrap_pyfunction!(modf, &x)?)?;
    subs.insert("x", x);
    let sys_modules = py.import("sys")?.getattr("modules")?;
    for (name, sub) in subs {
        m.add_submodule(&sub)?;
        sys_modules.set_item(format!("KSR.{name}"), &sub)?;
    }
    // app_python3 sets this after import (apy_kemi.c).
    m.add("__version__", 1003)?;
    add_missing_module_hook(m)?;
    Ok(())
}
