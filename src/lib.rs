//! ksrd: a SIP server with Kamailio-compatible KEMI Python routing.

pub mod cli;
pub mod config;
pub mod core;
pub mod db;
pub mod modules;
pub mod rpc;
pub mod rr;
pub mod script;
pub mod server;
pub mod sip;
pub mod tm;
pub mod transport;
