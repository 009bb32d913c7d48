//! JSON-RPC 2.0 control interface (Kamailio `jsonrpcs` compatible).
//!
//! [`Registry`] holds the method table and turns raw request documents into
//! response documents; [`serve_http`] and [`serve_unix`] are the transports.
//! This module deliberately depends on nothing else in the crate so it can be
//! built and tested on its own.

mod http;
mod registry;
mod unix;

#[cfg(test)]
mod tests;

pub use http::serve_http;
pub use registry::{Params, Registry, RpcError, RpcFuture, RpcResult};
pub use unix::serve_unix;
