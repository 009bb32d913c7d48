//! Record-Route headers, written when the outgoing socket is known (Kamailio rr/record.c builds
//! them as conditional lumps that msg_translator.c resolves at send time; ksrd keeps the same
//! decision in `render`).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::RrState;
use crate::sip::{Edits, SipMsg};
use crate::transport::{Endpoint, Proto};

/// Which `record_route*` function asked for the Record-Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKind {
    /// `record_route()` / `record_route_params()`: the address of our sockets.
    Socket,
    /// `record_route_advertised_address(addr)`: `addr` instead of the socket address.
    Advertised(String),
    /// `record_route_preset(addr1[, addr2])`: the given host parts, one header each.
    Preset(Vec<String>),
}

/// A Record-Route waiting for the outgoing socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRoute {
    /// The form asked for.
    pub kind: RecordKind,
    /// User part of the URI (`add_username`), empty for none.
    pub user: String,
    /// Value for `;ftag=` (`append_fromtag`), empty for none.
    pub tag: String,
    /// Write `sips:` (the R-URI was sips and `ignore_sips` is off).
    pub sips: bool,
    /// `;lr` or `;lr=on` (`enable_full_lr`).
    pub lr: &'static str,
    /// `enable_double_rr` when the Record-Route was asked for.
    pub double_rr: i64,
    /// `record_route_params()` text and `add_rr_param()` calls made before record-routing.
    pub params: String,
    /// `add_rr_param()` calls made after record-routing.
    pub late_params: String,
}

/// `host[:port]` the way Kamailio's SUBST_*_ALL lumps write a socket: port 5060 is left out.
fn host_port(out: &mut String, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(v4) => {
            let _ = write!(out, "{v4}");
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "[{v6}]");
        }
    }
    if a.port() != 5060 {
        let _ = write!(out, ":{}", a.port());
    }
}

impl RecordRoute {
    fn open(&self, out: &mut String) {
        out.push_str(if self.sips {
            "Record-Route: <sips:"
        } else {
            "Record-Route: <sip:"
        });
        if !self.user.is_empty() {
            out.push_str(&self.user);
            out.push('@');
        }
    }

    fn ftag(&self, out: &mut String) {
        if !self.tag.is_empty() {
            out.push_str(";ftag=");
            out.push_str(&self.tag);
        }
    }

    /// record.c build_rr: `<sip:[user@]ip[:port][;transport=x][;r2=on];lr[;ftag=t]params>`.
    fn socket_line(&self, out: &mut String, a: SocketAddr, proto: Proto, r2: bool) {
        self.open(out);
        host_port(out, a);
        if proto != Proto::Udp {
            out.push_str(";transport=");
            out.push_str(proto.as_str());
        }
        if r2 {
            out.push_str(";r2=on");
        }
        out.push_str(self.lr);
        self.ftag(out);
        out.push_str(&self.params);
        out.push_str(&self.late_params);
        out.push_str(">\r\n");
    }

    /// record.c build_advertised_rr: the transport is written only when it changes.
    fn advertised_line(&self, out: &mut String, addr: &str, proto: Option<Proto>, r2: bool) {
        self.open(out);
        out.push_str(addr);
        if let Some(p) = proto {
            out.push_str(";transport=");
            out.push_str(p.as_str());
            if r2 {
                out.push_str(";r2=on");
            }
        }
        self.ftag(out);
        out.push_str(self.lr);
        out.push_str(&self.params);
        out.push_str(&self.late_params);
        out.push_str(">\r\n");
    }

    /// record.c record_route_preset: the address as given, ftag, then `;lr`.
    fn preset_line(&self, out: &mut String, addr: &str) {
        self.open(out);
        out.push_str(addr);
        self.ftag(out);
        out.push_str(&self.params);
        out.push_str(self.lr);
        out.push_str(&self.late_params);
        out.push_str(">\r\n");
    }

    /// The header lines, top first: with double record-routing the outgoing interface's
    /// Record-Route is above the incoming one's (the order of record.c's anchors).
    pub fn lines(&self, inbound: &Endpoint, out_proto: Proto, out_local: SocketAddr) -> String {
        let mut out = String::with_capacity(160);
        // msg_translator.c COND_IF_DIFF_REALMS / COND_IF_DIFF_PROTO.
        let diff_realms = inbound.local != out_local || inbound.proto != out_proto;
        let diff_proto = inbound.proto != out_proto;
        match &self.kind {
            RecordKind::Socket => {
                let double = match self.double_rr {
                    0 => false,
                    2 => true,
                    _ => diff_realms,
                };
                if double {
                    self.socket_line(&mut out, out_local, out_proto, true);
                }
                self.socket_line(&mut out, inbound.local, inbound.proto, double);
            }
            RecordKind::Advertised(addr) => {
                let always = self.double_rr == 2;
                let show_proto = always || diff_proto;
                let r2 = self.double_rr != 0 && (always || diff_realms);
                if self.double_rr != 0 && show_proto {
                    self.advertised_line(&mut out, addr, Some(out_proto), r2);
                }
                let p = show_proto.then_some(inbound.proto);
                self.advertised_line(&mut out, addr, p, r2);
            }
            RecordKind::Preset(addrs) => {
                for a in addrs {
                    self.preset_line(&mut out, a);
                }
            }
        }
        out
    }
}

/// Insert the Record-Route header(s) `state` asks for into a request about to be sent from
/// `out_local` over `out_proto`; `inbound` is where the request came in. Called by every sender
/// (stateless forward, tm) once the outgoing socket is chosen. Does nothing without a pending
/// Record-Route.
pub fn render(
    state: &RrState,
    msg: &SipMsg,
    inbound: &Endpoint,
    out_proto: Proto,
    out_local: SocketAddr,
    edits: &mut Edits,
) {
    let Some(rec) = &state.record else {
        return;
    };
    let lines = rec.lines(inbound, out_proto, out_local);
    if !lines.is_empty() {
        // record.c anchors at the first header, above everything the request carries.
        edits.insert(msg.first_header_offset(), lines.into_bytes());
    }
}
