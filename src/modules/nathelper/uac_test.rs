//! `nat_uac_test(flags)`: is the sender behind a NAT? (nathelper.c nat_uac_test).

use std::net::IpAddr;

use super::{contact, nets, sdp};
use crate::script::ctx::RouteCtx;
use crate::sip::{SipMsg, Uri};

/// Test bits (nathelper.c NAT_UAC_TEST_*).
pub mod flag {
    /// Contact host is a private address.
    pub const C_1918: i64 = 0x01;
    /// Top Via host is not the source address.
    pub const RCVD: i64 = 0x02;
    /// Top Via host is a private address.
    pub const V_1918: i64 = 0x04;
    /// SDP `c=` has a private address.
    pub const S_1918: i64 = 0x08;
    /// Source port is not the top Via port.
    pub const RPORT: i64 = 0x10;
    /// Source address is private.
    pub const O_1918: i64 = 0x20;
    /// Received over WebSocket.
    pub const WS: i64 = 0x40;
    /// Source port is not the Contact port.
    pub const C_PORT: i64 = 0x80;
    /// Session `c=` address is not the source address.
    pub const SDP_CLINE: i64 = 0x100;
    /// Requests: `$du` is not the R-URI's address; replies: the 2nd Via was NATed.
    pub const DEST: i64 = 0x200;
}

fn ip_of(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Default port of a transport (GET_SIP_PORT).
fn sip_port(port: Option<u16>, transport: Option<&str>) -> u16 {
    port.unwrap_or(match transport {
        Some(t) if t.eq_ignore_ascii_case("tls") => 5061,
        _ => 5060,
    })
}

fn is_ws(transport: Option<&str>) -> bool {
    transport.is_some_and(|t| t.eq_ignore_ascii_case("ws") || t.eq_ignore_ascii_case("wss"))
}

/// nh_test_destination: true when the message is going somewhere else than it says.
fn destination_differs(ctx: &RouteCtx, m: &SipMsg) -> bool {
    if !m.is_request() {
        let Ok(vias) = m.vias() else { return false };
        let Some(v2) = vias.get(1) else { return false };
        if is_ws(Some(&v2.transport)) {
            return true;
        }
        if let Some(Some(rport)) = v2.rport() {
            if rport != sip_port(v2.port, Some(&v2.transport)) {
                return true;
            }
        }
        return match v2.received() {
            None => false,
            Some(r) => hosts_differ(r, &v2.host),
        };
    }
    let ruri = match ctx.ruri().map(|u| Uri::parse(u.as_bytes())) {
        Some(Ok(u)) => u,
        _ => return false,
    };
    let Some(du) = ctx.dst_uri.as_deref() else {
        return is_ws(ruri.transport());
    };
    let Ok(d) = Uri::parse(du.as_bytes()) else {
        return false;
    };
    if is_ws(d.transport()) {
        return true;
    }
    if sip_port(d.port, d.transport()) != sip_port(ruri.port, ruri.transport()) {
        return true;
    }
    hosts_differ(&d.host, &ruri.host)
}

fn hosts_differ(a: &str, b: &str) -> bool {
    match (ip_of(a), ip_of(b)) {
        (Some(x), Some(y)) => x != y,
        (None, None) => !a.eq_ignore_ascii_case(b),
        _ => true,
    }
}

/// Run the selected tests; 1 when any detects a NAT, else -1.
pub fn nat_uac_test(ctx: &RouteCtx, tests: i64) -> i64 {
    let Some(m) = ctx.msg.as_ref() else { return -1 };
    let src = ctx.ep.remote;
    let mode = ctx.core.nathelper.nat_addr_mode;
    let top = m.vias().ok().and_then(|v| v.first());
    let has = |f: i64| tests & f != 0;
    if has(flag::RPORT) && top.is_some_and(|v| src.port() != v.port.unwrap_or(5060)) {
        return 1;
    }
    // A Via host that is a name is not the source address (ksrd does no DNS here, as
    // Kamailio with received_dns off).
    if has(flag::RCVD) && top.is_some_and(|v| ip_of(&v.host) != Some(src.ip())) {
        return 1;
    }
    let c = contact::locate(m, ctx.nat.contact_uri.as_deref()).ok();
    if has(flag::C_1918)
        && c.as_ref().is_some_and(|c| {
            nets::is_private_text(
                c.uri.host.trim_start_matches('[').trim_end_matches(']'),
                mode,
            ) == Some(true)
        })
    {
        return 1;
    }
    if has(flag::S_1918) && sdp::has_private_cline(m.body(), mode) {
        return 1;
    }
    if has(flag::V_1918) && top.is_some_and(|v| nets::is_private_text(&v.host, mode) == Some(true))
    {
        return 1;
    }
    if has(flag::O_1918) && nets::is_private(src.ip(), mode) {
        return 1;
    }
    // Flag 64 (WebSocket) never matches: ksrd has no WebSocket transport.
    if has(flag::C_PORT)
        && c.as_ref()
            .is_some_and(|c| c.uri.port.unwrap_or(5060) != src.port())
    {
        return 1;
    }
    if has(flag::SDP_CLINE) && !m.body().is_empty() && sdp::cline_differs(m.body(), src.ip()) {
        return 1;
    }
    if has(flag::DEST) && destination_differs(ctx, m) {
        return 1;
    }
    -1
}
