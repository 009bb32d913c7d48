//! The Python host: embedded CPython, the `KSR` module, route invocation, workers and hot reload.

pub mod ctx;
pub mod exports;
pub mod host;
pub mod ksr;
pub mod msgobj;
pub mod readiness;
pub mod reload;
pub mod rpc;
pub mod worker;
