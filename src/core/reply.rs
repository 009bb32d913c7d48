//! Local (stateless) replies: where they go, building, sending, remembering them for retransmissions.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::retrans::Resend;
use super::stats::Stat;
use super::Core;
use crate::sip::{build_reply, Method, SipMsg};
use crate::transport::{Endpoint, Proto, SendError};

/// Where a reply to `req` goes (RFC 3261 §18.2.2 + RFC 3581): stream replies use the connection;
/// UDP replies go to the source IP, and to the source port when rport was asked for or forced.
pub fn reply_dest(req: &SipMsg, ep: &Endpoint, force_rport: bool) -> SocketAddr {
    if ep.proto != Proto::Udp {
        return ep.remote;
    }
    let top = req.vias().ok().and_then(|v| v.first());
    let port = match top {
        Some(v) if v.rport().is_some() || force_rport => ep.remote.port(),
        Some(v) => v.port.unwrap_or(5060),
        None => ep.remote.port(),
    };
    SocketAddr::new(ep.remote.ip(), port)
}

/// Key identifying a request for retransmission matching (RFC 3261 §17.2.3): top Via branch,
/// sent-by, method (ACK/CANCEL share the INVITE's branch) and source. None without an RFC 3261 branch.
pub fn request_key(core: &Core, req: &SipMsg, ep: &Endpoint) -> Option<u64> {
    let top = req.vias().ok()?.first()?;
    let branch = top.branch()?;
    if branch.len() <= 7 || !branch.starts_with("z9hG4bK") {
        return None;
    }
    let m = match req.method() {
        Method::Other => req.method_str().as_bytes(),
        m => m.as_str().as_bytes(),
    };
    let port = ep.remote.port().to_le_bytes();
    let ip = match ep.remote.ip() {
        std::net::IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(a) => a.octets(),
    };
    Some(core.hash(&[branch.as_bytes(), top.host.as_bytes(), m, &ip, &port]))
}

/// Build and send a local reply; final replies are remembered for retransmissions under `key`
/// (the request's `request_key`, computed once by the caller).
#[allow(clippy::too_many_arguments)]
pub fn send_reply(
    core: &Core,
    req: &SipMsg,
    ep: &Endpoint,
    code: u16,
    reason: &str,
    extra_headers: &[u8],
    body: &[u8],
    force_rport: bool,
    key: Option<u64>,
    out: &mut Vec<u8>,
) -> Result<(), SendError> {
    out.clear();
    let tag = core.to_tag(req, key);
    build_reply(req, ep.remote, code, reason, &tag, extra_headers, body, out);
    let dest = reply_dest(req, ep, force_rport);
    // Counted before sending: whoever receives the reply and then reads the statistics must
    // see it counted (a failed send is counted under sl:failures as well).
    core.stats.sl_reply(code);
    let res = core.sender.send(ep.proto, dest, Some(ep.local), out);
    match &res {
        Ok(()) => {
            if code >= 200 {
                if let Some(key) = key {
                    let r = Resend {
                        data: Bytes::copy_from_slice(out),
                        proto: ep.proto,
                        dest,
                        local: Some(ep.local),
                    };
                    core.retrans.lock().put(key, r, Instant::now());
                }
            }
        }
        Err(e) => {
            core.stats.inc(Stat::SlFailures);
            tracing::warn!(error = %e, code, "failed to send reply");
        }
    }
    res
}
