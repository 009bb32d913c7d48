//! The Python host: interpreter start, loading a route script into a fresh namespace, atomic swap.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use pyo3::exceptions::PySystemExit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyString};

use crate::config::ScriptConfig;

/// How the script exposes its routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// app_python3: `mod_init()` returns an object whose methods take `msg`.
    Handler,
    /// app_python3s: module-level functions without `msg`.
    Functions,
}

/// One loaded version of the route script.
pub struct Generation {
    /// Reload counter value (`app_python.reload` old/new).
    pub version: u64,
    /// Handler object (or the module for `Style::Functions`).
    pub handler: Py<PyAny>,
    /// Calling convention.
    pub style: Style,
    /// `ksr_reply_route` is defined (only defined callbacks are called: kamailio-defects.md).
    pub has_reply_route: bool,
    /// `ksr_onsend_route` is defined.
    pub has_onsend_route: bool,
}

/// Holds the current generation and loads new ones.
pub struct Host {
    cfg: ScriptConfig,
    workers: usize,
    current: RwLock<Option<Arc<Generation>>>,
    version: AtomicU64,
}

/// Start the embedded interpreter with the `KSR` module registered (once per process).
pub fn init_python() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        pyo3::append_to_inittab!(ksr_module);
        Python::initialize();
        Python::attach(|py| {
            if let Ok(sys) = py.import("sys") {
                // .pyc mtimes have 1 s granularity: a quick edit could load stale bytecode.
                let _ = sys.setattr("dont_write_bytecode", true);
            }
        });
    });
}
use super::ksr::ksr_module;

/// Format a Python exception with its traceback (file and line of every frame).
pub fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    let tb = py.import("traceback").and_then(|tb| {
        let lines = tb.getattr("format_exception")?.call1((
            err.get_type(py),
            err.value(py),
            err.traceback(py),
        ))?;
        let s: String = PyString::new(py, "")
            .call_method1("join", (lines,))?
            .extract()?;
        Ok(s)
    });
    match tb {
        Ok(s) => s.trim_end().to_string(),
        Err(_) => err.to_string(),
    }
}

/// True if the exception is `SystemExit` (the route called `sys.exit()`).
pub fn is_system_exit(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PySystemExit>(py)
}

fn module_name(file: &Path) -> String {
    file.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("ksr_routes")
        .to_string()
}

impl Host {
    /// A host for this script; nothing is loaded yet.
    pub fn new(cfg: ScriptConfig, workers: usize) -> Self {
        Host {
            cfg,
            workers,
            current: RwLock::new(None),
            version: AtomicU64::new(0),
        }
    }

    /// The script file.
    pub fn file(&self) -> &Path {
        &self.cfg.file
    }

    /// The generation routes run with now.
    pub fn current(&self) -> Option<Arc<Generation>> {
        self.current.read().clone()
    }

    /// Current reload counter.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// Compile and run the script in a fresh namespace, call `mod_init()` and `child_init(rank)`,
    /// check the routes exist, and only then make it current. On error nothing changes and the
    /// error text (with traceback, file and line) is returned.
    pub fn load(&self, py: Python<'_>, run_child_init: bool) -> Result<(u64, u64), String> {
        let old = self.version();
        // Kamailio counts reloads: the first load is version 0, the first reload answers {"old":0,"new":1}.
        let next = if self.current.read().is_none() {
            0
        } else {
            old + 1
        };
        let gen = self
            .compile(py, next, run_child_init)
            .map_err(|e| format_exception(py, &e))?;
        let gen = gen?;
        let new = gen.version;
        *self.current.write() = Some(Arc::new(gen));
        self.version.store(new, Ordering::Relaxed);
        Ok((old, new))
    }

    fn compile(
        &self,
        py: Python<'_>,
        version: u64,
        run_child_init: bool,
    ) -> PyResult<Result<Generation, String>> {
        let file = &self.cfg.file;
        let src = match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) => return Ok(Err(format!("{}: cannot read: {e}", file.display()))),
        };
        let dir: PathBuf = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = module_name(file);
        let sys = py.import("sys")?;
        let path = sys.getattr("path")?;
        let dir_s = dir.to_string_lossy().to_string();
        if !path.contains(&dir_s)? {
            path.call_method1("insert", (0, &dir_s))?;
        }
        let builtins = py.import("builtins")?;
        let code = builtins.getattr("compile")?.call1((
            src,
            file.to_string_lossy().to_string(),
            "exec",
        ))?;
        // Helper modules imported from the routes directory must re-import with the new code.
        purge_modules_under(py, &dir)?;
        let module = PyModule::new(py, &name)?;
        module.setattr("__file__", file.to_string_lossy().to_string())?;
        let modules = sys.getattr("modules")?;
        let previous = modules.get_item(&name).ok();
        modules.set_item(&name, &module)?;
        let globals: Bound<'_, PyDict> = module.dict();
        if !globals.contains("__builtins__")? {
            globals.set_item("__builtins__", &builtins)?;
        }
        let run = (|| -> PyResult<Result<Generation, String>> {
            builtins.getattr("exec")?.call1((code, &globals))?;
            let (handler, style) = if module.hasattr(self.cfg.mod_init_function.as_str())? {
                let h = module
                    .getattr(self.cfg.mod_init_function.as_str())?
                    .call0()?;
                if h.is_none() {
                    return Ok(Err(format!(
                        "{}: {}() returned None; it must return the handler object",
                        file.display(),
                        self.cfg.mod_init_function
                    )));
                }
                (h, Style::Handler)
            } else {
                (module.clone().into_any(), Style::Functions)
            };
            let callable = |n: &str| -> PyResult<bool> {
                Ok(handler.hasattr(n)? && handler.getattr(n)?.is_callable())
            };
            if !callable("ksr_request_route")? {
                let what = match style {
                    Style::Handler => format!(
                        "the object returned by {}() has no callable ksr_request_route",
                        self.cfg.mod_init_function
                    ),
                    Style::Functions => format!(
                        "no {}() (app_python3 style) and no module-level ksr_request_route() (app_python3s style)",
                        self.cfg.mod_init_function
                    ),
                };
                return Ok(Err(format!("{}: {what}", file.display())));
            }
            if run_child_init {
                let child_init = match style {
                    Style::Handler => self.cfg.child_init_method.as_str(),
                    Style::Functions => "script_child_init",
                };
                if callable(child_init)? {
                    for rank in 1..=self.workers as i64 {
                        let r = handler.getattr(child_init)?.call1((rank,))?;
                        if let Ok(v) = r.extract::<i64>() {
                            if v < 0 {
                                return Ok(Err(format!(
                                    "{}: {child_init}({rank}) returned {v}",
                                    file.display()
                                )));
                            }
                        }
                    }
                }
            }
            Ok(Ok(Generation {
                version,
                has_reply_route: callable("ksr_reply_route")?,
                has_onsend_route: callable("ksr_onsend_route")?,
                handler: handler.unbind(),
                style,
            }))
        })();
        if !matches!(run, Ok(Ok(_))) {
            match previous {
                Some(p) => modules.set_item(&name, p)?,
                None => modules.del_item(&name)?,
            }
        }
        run
    }
}

/// Remove `sys.modules` entries whose file lives under `dir` (so `import helper` loads the new code).
fn purge_modules_under(py: Python<'_>, dir: &Path) -> PyResult<()> {
    let modules = py.import("sys")?.getattr("modules")?;
    let items: Vec<(String, Bound<'_, PyAny>)> = modules
        .call_method0("items")?
        .try_iter()?
        .filter_map(|i| i.ok()?.extract().ok())
        .collect();
    for (name, m) in items {
        let Ok(f) = m.getattr("__file__") else {
            continue;
        };
        let Ok(f) = f.extract::<String>() else {
            continue;
        };
        if Path::new(&f).starts_with(dir) {
            modules.del_item(name)?;
        }
    }
    Ok(())
}

/// Result of running one route callback.
pub enum RouteOutcome {
    /// Returned (any value: the engine ignores it, as app_python3 does).
    Done,
    /// `sys.exit()`: ends the route quietly.
    Exit,
    /// The callback is not defined.
    Missing,
    /// An exception; the formatted traceback.
    Error(String),
}

/// Call `name` on the generation's handler with `msg` (or without, for module-level functions).
pub fn call_route(
    py: Python<'_>,
    gen: &Generation,
    name: &Bound<'_, PyString>,
    msg: Option<Bound<'_, PyAny>>,
) -> RouteOutcome {
    let h = gen.handler.bind(py);
    let f = match h.getattr(name) {
        Ok(f) => f,
        Err(_) => return RouteOutcome::Missing,
    };
    let r = match (gen.style, msg) {
        (Style::Handler, Some(m)) => f.call1((m,)),
        _ => f.call0(),
    };
    match r {
        Ok(_) => RouteOutcome::Done,
        Err(e) if is_system_exit(py, &e) => RouteOutcome::Exit,
        Err(e) => RouteOutcome::Error(format_exception(py, &e)),
    }
}
