//! rr (`KSR.rr.*`, Kamailio src/modules/rr): Record-Route insertion and loose routing.
//!
//! `record_route*()` only note what to add in `RouteCtx::rr`; the header is written by
//! [`render`] when a sender knows the outgoing socket, because the address (and whether two
//! Record-Routes are needed) depends on it.

pub mod config;
mod kemi;
pub mod loose;
pub mod params;
pub mod record;
pub mod route;

#[cfg(test)]
mod tests;

pub use config::{RrConfig, PARAMS};
pub use record::{render, RecordKind, RecordRoute};

use crate::script::exports::{ex, Export, Ty::*};

/// Per-message rr state, kept in `RouteCtx::rr`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RrState {
    /// The Record-Route to insert when the request is sent.
    pub record: Option<RecordRoute>,
    /// `add_rr_param()` text given before any `record_route*()` call.
    pub pending_params: String,
    /// A `record_route*()` call succeeded (Kamailio `FL_RR_ADDED`): another one fails.
    pub added: bool,
    /// URI parameters (without the leading `;`) of our Route that `loose_route()` consumed.
    pub routed_params: Option<String>,
    /// `loose_route()` took the next hop from a Route after ours (Kamailio `FL_ROUTE_ADDR`).
    pub route_addr: bool,
}

/// `KSR.rr.*` exports (rr_mod.c `sr_kemi_rr_exports`).
pub static EXPORTS: &[Export] = &[
    ex(
        "rr",
        "record_route",
        &[],
        Int,
        "Add Record-Route (two when the outgoing socket differs); 1, or -1 on error or a second call",
        kemi::record_route,
    ),
    ex(
        "rr",
        "record_route_params",
        &[("params", Str)],
        Int,
        "record_route() with `params` (e.g. ';x=y') appended to the URI; 1 or -1",
        kemi::record_route_params,
    ),
    ex(
        "rr",
        "loose_route",
        &[],
        Int,
        "Route by the Route headers: 1 routed, -1 no Route or error, -3 only our preloaded Route",
        kemi::loose_route,
    ),
    ex(
        "rr",
        "loose_route_preloaded",
        &[],
        Int,
        "1 when loose_route() finds only our preloaded Route (it returned -3), else -1",
        kemi::loose_route_preloaded,
    ),
    ex(
        "rr",
        "loose_route_mode",
        &[("vmode", Int)],
        Int,
        "loose_route() with mode bits (1: loose routing only, no strict-router recovery)",
        kemi::loose_route_mode,
    ),
    ex(
        "rr",
        "remove_record_route",
        &[],
        Int,
        "Drop the Record-Route added by record_route*() for this message; 1",
        kemi::remove_record_route,
    ),
    ex(
        "rr",
        "add_rr_param",
        &[("param", Str)],
        Int,
        "Append `param` (e.g. ';x=y') to our Record-Route URI, before or after record_route(); 1 or -1",
        kemi::add_rr_param,
    ),
    ex(
        "rr",
        "check_route_param",
        &[("sre", Str)],
        Int,
        "1 if the parameters of our Route (';lr;ftag=..') match the regex, else -1",
        kemi::check_route_param,
    ),
    ex(
        "rr",
        "is_direction",
        &[("dir", Str)],
        Int,
        "1 if the request flows 'downstream' or 'upstream' as given (by ftag), -1 if not, -6 bad use",
        kemi::is_direction,
    ),
    ex(
        "rr",
        "record_route_preset_one",
        &[("addr1", Str)],
        Int,
        "Add 'Record-Route: <sip:addr1;lr>' as given; 1 or -1",
        kemi::record_route_preset_one,
    ),
    ex(
        "rr",
        "record_route_preset",
        &[("addr1", Str), ("addr2", Str)],
        Int,
        "Add Record-Route for addr1 and, when not empty, addr2 (needs enable_double_rr); 1 or -1",
        kemi::record_route_preset,
    ),
    ex(
        "rr",
        "record_route_advertised_address",
        &[("addr", Str)],
        Int,
        "record_route() with `addr` as the host part; 1 or -1",
        kemi::record_route_advertised_address,
    ),
    ex(
        "rr",
        "next_hop_route",
        &[],
        Int,
        "1 if loose_route() took the next hop from a Route after ours, else -1",
        kemi::next_hop_route,
    ),
];
