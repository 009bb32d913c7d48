//! The `msg` object passed to route methods (app_python3 python_msgobj.c); invalid after the route returns.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::ctx::{with_current, RouteCtx};
use crate::sip::Uri;

/// Handle to the message being routed; only valid during the route call that received it.
#[pyclass(frozen, name = "SipMessage", module = "KSR")]
pub struct PyMsg {
    seq: u64,
}

impl PyMsg {
    /// Handle for the message now in the thread's context.
    pub fn new(seq: u64) -> Self {
        PyMsg { seq }
    }

    fn with<R>(&self, f: impl FnOnce(&mut RouteCtx) -> R) -> PyResult<R> {
        let seq = self.seq;
        with_current(|ctx| (ctx.msg.is_some() && ctx.msg_seq == seq).then(|| f(ctx)))
            .flatten()
            .ok_or_else(|| PyRuntimeError::new_err("msg used outside its route (the message handle is invalid once the route returns)"))
    }
}

#[pymethods]
impl PyMsg {
    /// "SIP_REQUEST" or "SIP_REPLY".
    #[getter(Type)]
    fn type_(&self) -> PyResult<&'static str> {
        self.with(|c| {
            if c.msg.as_ref().is_some_and(|m| m.is_request()) {
                "SIP_REQUEST"
            } else {
                "SIP_REPLY"
            }
        })
    }
    /// Request method (CSeq method for replies).
    #[getter(Method)]
    fn method(&self) -> PyResult<String> {
        self.with(|c| {
            c.msg
                .as_ref()
                .map(|m| m.method_str().to_string())
                .unwrap_or_default()
        })
    }
    /// Reply status as a string, None for requests.
    #[getter(Status)]
    fn status(&self) -> PyResult<Option<String>> {
        self.with(|c| {
            c.msg
                .as_ref()
                .and_then(|m| m.status())
                .map(|s| s.to_string())
        })
    }
    /// Request-URI (as rewritten), None for replies.
    #[getter(RURI)]
    fn ruri(&self) -> PyResult<Option<String>> {
        self.with(|c| c.ruri().map(|u| u.into_owned()))
    }
    /// (ip, port) of the sender.
    #[getter]
    fn src_address(&self) -> PyResult<(String, u16)> {
        self.with(|c| (c.ep.remote.ip().to_string(), c.ep.remote.port()))
    }
    /// (ip, port) of the local socket.
    #[getter]
    fn dst_address(&self) -> PyResult<(String, u16)> {
        self.with(|c| (c.ep.local.ip().to_string(), c.ep.local.port()))
    }
    /// Body of the first header with this name, or None.
    #[pyo3(name = "getHeader")]
    fn get_header(&self, name: &str) -> PyResult<Option<String>> {
        self.with(|c| {
            let m = c.msg.as_ref()?;
            let h = m.find_by_name(name).next()?;
            Some(String::from_utf8_lossy(m.value(h)).into_owned())
        })
    }
    /// Set the Request-URI.
    fn rewrite_ruri(&self, uri: &str) -> PyResult<()> {
        if Uri::parse(uri.as_bytes()).is_err() {
            return Err(PyRuntimeError::new_err(format!("invalid URI {uri:?}")));
        }
        self.with(|c| c.new_ruri = Some(uri.to_string()))
    }
    /// Set the destination URI ($du).
    fn set_dst_uri(&self, uri: &str) -> PyResult<()> {
        if Uri::parse(uri.as_bytes()).is_err() {
            return Err(PyRuntimeError::new_err(format!("invalid URI {uri:?}")));
        }
        self.with(|c| c.dst_uri = Some(uri.to_string()))
    }
    /// Native cfg functions do not exist in ksrd.
    #[pyo3(signature = (*_args))]
    fn call_function(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<i64> {
        Err(PyRuntimeError::new_err(
            "msg.call_function is not supported by ksrd: use the KSR.<module>.<function> exports",
        ))
    }
}
