//! `loose_route()`: route a request by its Route set (RFC 3261 §16.4 and §16.12), following
//! Kamailio src/modules/rr/loose.c (after_loose, after_strict, handle_sr) and its return codes.

use super::route::{uri_params_raw, RouteEntry, RouteSet};
use crate::core::myself::Myself;
use crate::sip::{Edits, SipMsg, Uri};

/// Success: the next hop comes from the route set, or the route set was ours (`RR_DRIVEN`).
pub const RR_DRIVEN: i64 = 1;
/// No Route, or an error (`RR_ERROR` / `RR_NOT_DRIVEN`).
pub const RR_ERROR: i64 = -1;
/// The route set was only ours and the request is out of dialog (`RR_PRELOADED`).
pub const RR_PRELOADED: i64 = -3;
/// `loose_route_mode` bit: never recover from a strict-routing previous hop (`RR_LR_MODE_LOOSE_ONLY`).
pub const MODE_LOOSE_ONLY: i64 = 1;

/// What loose routing decided, besides the edits it made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routed {
    /// Kamailio's return code.
    pub code: i64,
    /// New Request-URI (strict-router handling).
    pub new_ruri: Option<String>,
    /// Next hop (`$du`) when it is a loose router.
    pub dst_uri: Option<String>,
    /// Parameters of our own Route URI (or of our R-URI after a strict router), without `;`.
    pub routed_params: Option<String>,
    /// The next hop was taken from a Route beyond ours (Kamailio `FL_ROUTE_ADDR`).
    pub route_addr: bool,
}

impl Routed {
    fn code(code: i64) -> Routed {
        Routed {
            code,
            ..Default::default()
        }
    }
}

/// Kamailio `check_self_uri`: host (and port, 5060 when absent) is ours, and it is not a GRUU.
pub fn is_self_uri(myself: &Myself, uri: &Uri) -> bool {
    !uri.host.is_empty()
        && uri.param("gr").is_none()
        && myself.check(&uri.host, Some(uri.port.unwrap_or(5060)))
}

/// No `lr` parameter: the hop is a strict router (loose.c is_strict).
fn is_strict(uri: &Uri) -> bool {
    uri.param("lr").is_none()
}

/// An `r2` parameter: we added two Record-Routes (parse_rr.h is_2rr).
pub fn is_2rr(uri: &Uri) -> bool {
    uri.param("r2").is_some()
}

/// The URI to send to: `sip:<maddr>[:port]` when the URI has a maddr (loose.c get_maddr_uri).
fn maddr_uri(e: &RouteEntry) -> Option<String> {
    match e.uri.param("maddr").flatten() {
        // Kamailio's fixed buffer holds 127 bytes with "sip:" and the port.
        Some(m) if m.len() > 127 - 10 => None,
        Some(m) => Some(match e.uri.port {
            Some(p) => format!("sip:{m}:{p}"),
            None => format!("sip:{m}"),
        }),
        None => Some(e.uri_text.clone()),
    }
}

/// Route `msg` by its Route headers. `ruri` is the current Request-URI (`$ru`); `is_me` is
/// Kamailio's check_self_uri. Removals and the saved R-URI go to `edits`.
pub fn loose_route(
    msg: &SipMsg,
    ruri: &str,
    mode: i64,
    double_rr: bool,
    is_me: &dyn Fn(&Uri) -> bool,
    edits: &mut Edits,
) -> Routed {
    if !msg.is_request() {
        return Routed::code(RR_ERROR);
    }
    let routes = match RouteSet::parse(msg) {
        Ok(r) if !r.is_empty() => r,
        Ok(_) => return Routed::code(RR_ERROR),
        Err(e) => {
            tracing::error!("loose_route: {e}");
            return Routed::code(RR_ERROR);
        }
    };
    let ruri_text = ruri;
    let Ok(ruri) = Uri::parse(ruri.as_bytes()) else {
        tracing::error!("loose_route: failed to parse the Request-URI");
        return Routed::code(RR_ERROR);
    };
    // No To tag: an initial request, its Route set was preloaded by the UAC.
    let preloaded = match msg.to_hdr() {
        Ok(to) => to.tag().is_none_or(str::is_empty),
        Err(_) => return Routed::code(RR_ERROR),
    };
    let d = Decide {
        msg,
        routes: &routes,
        double_rr,
        is_me,
    };
    if preloaded {
        d.after_loose(true, edits)
    } else if mode & MODE_LOOSE_ONLY == 0 && is_me(&ruri) {
        d.after_strict(ruri_text, edits)
    } else {
        d.after_loose(false, edits)
    }
}

struct Decide<'a> {
    msg: &'a SipMsg,
    routes: &'a RouteSet,
    double_rr: bool,
    is_me: &'a dyn Fn(&Uri) -> bool,
}

impl Decide<'_> {
    /// The previous hop was a loose router: drop our Route(s), send to the next one.
    fn after_loose(&self, preloaded: bool, edits: &mut Edits) -> Routed {
        let first = &self.routes.entries[0];
        let mut out = Routed::code(RR_DRIVEN);
        let mut next = 0;
        if (self.is_me)(&first.uri) {
            out.routed_params = Some(first.params_raw().to_string());
            next = 1;
            // With ;r2 the Route after ours is our other interface: it goes too.
            if self.double_rr && is_2rr(&first.uri) && self.routes.len() > 1 {
                next = 2;
            }
            if next >= self.routes.len() {
                self.routes.remove_first(self.msg, self.routes.len(), edits);
                out.code = if preloaded { RR_PRELOADED } else { RR_DRIVEN };
                return out;
            }
            out.route_addr = true;
        }
        let hop = &self.routes.entries[next];
        if is_strict(&hop.uri) {
            return self.handle_sr(next, out, edits);
        }
        let Some(du) = maddr_uri(hop) else {
            return Routed::code(RR_ERROR);
        };
        out.dst_uri = Some(du);
        self.routes.remove_first(self.msg, next, edits);
        out
    }

    /// The next hop is a strict router: it goes in the R-URI and the R-URI becomes the last
    /// Route (RFC 3261 §16.6 step 6; loose.c handle_sr + save_ruri).
    fn handle_sr(&self, hop: usize, mut out: Routed, edits: &mut Edits) -> Routed {
        let Some(new) = maddr_uri(&self.routes.entries[hop]) else {
            return Routed::code(RR_ERROR);
        };
        let mut saved = b"Route: <".to_vec();
        saved.extend_from_slice(self.msg.ruri_bytes());
        saved.extend_from_slice(b">\r\n");
        edits.insert(self.msg.headers_end(), saved);
        out.new_ruri = Some(new);
        self.routes.remove_first(self.msg, hop + 1, edits);
        out
    }

    /// The previous hop was a strict router, so the R-URI is ours (RFC 3261 §16.4): the
    /// original R-URI is the last Route.
    fn after_strict(&self, ruri: &str, edits: &mut Edits) -> Routed {
        let first = &self.routes.entries[0];
        let mut hop = 0;
        if self.double_rr && is_2rr(&first.uri) && (self.is_me)(&first.uri) {
            if self.routes.len() == 1 {
                self.routes.remove_first(self.msg, 1, edits);
                return Routed::code(RR_ERROR);
            }
            hop = 1;
        }
        let mut out = Routed::code(RR_DRIVEN);
        out.routed_params = Some(uri_params_raw(ruri).to_string());
        let next = &self.routes.entries[hop];
        if is_strict(&next.uri) {
            // The next hop is strict too (or is the endpoint): behave as a strict router.
            let Some(new) = maddr_uri(next) else {
                return Routed::code(RR_ERROR);
            };
            out.new_ruri = Some(new);
            self.routes.remove_first(self.msg, hop + 1, edits);
            return out;
        }
        let Some(du) = maddr_uri(next) else {
            return Routed::code(RR_ERROR);
        };
        out.dst_uri = Some(du);
        self.routes.remove_first(self.msg, hop, edits);
        let Some(last) = self.routes.entries.last() else {
            return Routed::code(RR_ERROR);
        };
        let Some(target) = maddr_uri(last) else {
            return Routed::code(RR_ERROR);
        };
        out.new_ruri = Some(target);
        self.routes.remove_last(self.msg, edits);
        out
    }
}
