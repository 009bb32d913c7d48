//! sanity (`KSR.sanity.*`, Kamailio src/modules/sanity): message checks that answer the error themselves.
//! Check bits, reply codes and reasons follow sanity_mod.h / sanity.c.

use crate::modules::sl;
use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use crate::sip::{Contacts, HdrName, Method, Scheme, SipMsg};

/// Check bits (Kamailio `SANITY_*`).
pub mod bits {
    pub const RURI_SIP_VERSION: i64 = 1 << 0;
    pub const RURI_SCHEME: i64 = 1 << 1;
    pub const REQUIRED_HEADERS: i64 = 1 << 2;
    pub const VIA_SIP_VERSION: i64 = 1 << 3;
    pub const VIA_PROTOCOL: i64 = 1 << 4;
    pub const CSEQ_METHOD: i64 = 1 << 5;
    pub const CSEQ_VALUE: i64 = 1 << 6;
    pub const CL: i64 = 1 << 7;
    pub const EXPIRES_VALUE: i64 = 1 << 8;
    pub const PROXY_REQUIRE: i64 = 1 << 9;
    pub const PARSE_URIS: i64 = 1 << 10;
    pub const CHECK_DIGEST: i64 = 1 << 11;
    pub const CHECK_DUPTAGS: i64 = 1 << 12;
    pub const AUTHORIZATION: i64 = 1 << 13;
    pub const VIA1_HEADER: i64 = 1 << 14;
    /// Kamailio's SANITY_DEFAULT_CHECKS.
    pub const DEFAULT: i64 = RURI_SIP_VERSION
        | RURI_SCHEME
        | REQUIRED_HEADERS
        | CSEQ_METHOD
        | CSEQ_VALUE
        | CL
        | EXPIRES_VALUE
        | PROXY_REQUIRE
        | CHECK_DIGEST;
    pub const URI_RURI: i64 = 1;
    pub const URI_FROM: i64 = 2;
    pub const URI_TO: i64 = 4;
    pub const URI_CONTACT: i64 = 8;
    /// Kamailio's SANITY_DEFAULT_URI_CHECKS.
    pub const URI_DEFAULT: i64 = URI_RURI | URI_FROM | URI_TO;
}
use bits::*;

/// A failed check: the reply Kamailio sends, and an extra header for it. Code 0: fail without a
/// reply (Kamailio sets FL_MSG_NOREPLY for these).
struct Fail(u16, &'static str, Option<String>);

const NO_REPLY: Fail = Fail(0, "", None);

fn check(m: &SipMsg, checks: i64, uri_checks: i64, proxy_requires: &[String]) -> Result<(), Fail> {
    let has = |c: i64| checks & c != 0;
    let req = m.is_request();
    if req && has(RURI_SIP_VERSION) && !m.version().eq_ignore_ascii_case(b"SIP/2.0") {
        return Err(Fail(505, "Version Not Supported (R-URI)", None));
    }
    if req && has(RURI_SCHEME) {
        match m.ruri() {
            Ok(u) if matches!(u.scheme, Scheme::Sip | Scheme::Sips | Scheme::Tel) => {}
            Ok(u) if matches!(&u.scheme, Scheme::Other(s) if s.eq_ignore_ascii_case("tels") || s.eq_ignore_ascii_case("urn")) =>
                {}
            Ok(_) => return Err(Fail(416, "Unsupported URI Scheme in Request URI", None)),
            Err(_) => return Err(Fail(400, "Bad Request URI", None)),
        }
    }
    if has(REQUIRED_HEADERS) {
        // sanity.c check_required_headers: a missing To/From/CSeq/Call-ID/Via or a duplicated
        // From/To/Call-ID/CSeq fails without a reply.
        let missing = [
            HdrName::To,
            HdrName::From,
            HdrName::CSeq,
            HdrName::CallId,
            HdrName::Via,
        ]
        .iter()
        .any(|h| m.first(*h).is_none());
        let dup = [HdrName::From, HdrName::To, HdrName::CallId, HdrName::CSeq]
            .iter()
            .any(|h| m.all(*h).nth(1).is_some());
        if missing || dup {
            return Err(NO_REPLY);
        }
    }
    // VIA_SIP_VERSION and VIA_PROTOCOL: Kamailio's checks are "useless checks" that always pass
    // (sanity.c check_via_sip_version / check_via_protocol), so they pass here too.
    if has(VIA1_HEADER) {
        // sanity.c check_via1_header: the top Via needs a host; failing sends no reply. Kamailio
        // also requires a branch, which would silently drop RFC 2543 requests and RFC 4475
        // longreq/inv2543 (tests/torture.rs requires them answered), so ksrd does not.
        let vias = m.vias().map_err(|_| NO_REPLY)?;
        let top = vias.first().ok_or(NO_REPLY)?;
        if top.host.is_empty() {
            return Err(NO_REPLY);
        }
    }
    if has(CSEQ_METHOD) || has(CSEQ_VALUE) {
        let cs = m
            .cseq()
            .map_err(|_| Fail(400, "CSeq number is illegal", None))?;
        if req && has(CSEQ_METHOD) && cs.method_str != m.method_str() {
            return Err(Fail(400, "CSeq method does not match request method", None));
        }
        // sanity.c check_cseq_value: the number must be below 2^31 (RFC 3261 §8.1.1.5).
        if has(CSEQ_VALUE) && cs.num >= 1 << 31 {
            return Err(Fail(400, "CSeq number is illegal", None));
        }
    }
    if has(CL) {
        if let Some(h) = m.first(HdrName::ContentLength) {
            let v = std::str::from_utf8(m.value(h))
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok());
            // Compared with the body as framed: a datagram with bytes after Content-Length is
            // accepted and the rest ignored (RFC 4475 dblreq; Kamailio's check_cl compares with
            // the datagram and answers 400 there). A Content-Length beyond the data never gets
            // here: the core answers 400 first.
            match v {
                Some(n) if n == m.body().len() => {}
                Some(_) => return Err(Fail(400, "Content-Length mis-match", None)),
                None => return Err(Fail(400, "Content-Length Failure", None)),
            }
        }
    }
    if has(EXPIRES_VALUE) {
        if let Some(h) = m.first(HdrName::Expires) {
            let ok = std::str::from_utf8(m.value(h))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .is_some();
            if !ok {
                return Err(Fail(400, "Expires value is illegal", None));
            }
        }
    }
    if req && has(PROXY_REQUIRE) {
        // sanity.c check_proxy_require: the reply names the first unsupported extension only.
        let unsupported = m.all(HdrName::ProxyRequire).find_map(|h| {
            String::from_utf8_lossy(m.value(h))
                .split(',')
                .map(|t| t.trim().to_string())
                .find(|t| !t.is_empty() && !proxy_requires.iter().any(|p| p == t))
        });
        if let Some(t) = unsupported {
            let hdr = format!("Unsupported: {t}\r\n");
            return Err(Fail(420, "Bad Proxy Require Extension", Some(hdr)));
        }
    }
    if has(PARSE_URIS) {
        if req && uri_checks & URI_RURI != 0 && m.ruri().is_err() {
            return Err(Fail(400, "Bad Request URI", None));
        }
        if uri_checks & URI_FROM != 0 && m.from_hdr().is_err() {
            return Err(Fail(400, "Invalid From Header", None));
        }
        if uri_checks & URI_TO != 0 && m.to_hdr().is_err() {
            return Err(Fail(400, "Invalid To Header", None));
        }
        if uri_checks & URI_CONTACT != 0 {
            match m.contacts() {
                Err(_) => return Err(Fail(400, "Bad Contact Header", None)),
                Ok(Contacts::List(l))
                    if l.iter()
                        .any(|c| !matches!(c.uri.scheme, Scheme::Sip | Scheme::Sips)) =>
                {
                    return Err(Fail(400, "Bad Contact URI", None))
                }
                Ok(_) => {}
            }
        }
    }
    // sanity.c check_authorization is check_digest that also passes without credentials,
    // which ksrd's digest check already does.
    if has(CHECK_DIGEST) || has(AUTHORIZATION) {
        for h in m
            .all(HdrName::Authorization)
            .chain(m.all(HdrName::ProxyAuthorization))
        {
            let v = String::from_utf8_lossy(m.value(h));
            let Some((scheme, rest)) = v.split_once(|c: char| c.is_ascii_whitespace()) else {
                return Err(Fail(400, "Bad Auth Header", None));
            };
            if !scheme.eq_ignore_ascii_case("digest") {
                continue;
            }
            let field = |n: &str| {
                rest.split(',').find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case(n)
                        .then(|| v.trim().trim_matches('"').to_string())
                })
            };
            match (field("username"), field("nonce"), field("response")) {
                (None, _, _) | (_, None, _) | (_, _, None) => {
                    return Err(Fail(400, "Bad Auth Credentials", None))
                }
                (Some(u), _, _) if u.is_empty() => return Err(Fail(400, "Auth Empty User", None)),
                (_, Some(n), _) if n.is_empty() => return Err(Fail(400, "Auth Empty Nonce", None)),
                (_, _, Some(r)) if r.is_empty() => {
                    return Err(Fail(400, "Auth Empty Response", None))
                }
                _ => {}
            }
        }
    }
    if has(CHECK_DUPTAGS) {
        let tags = |na: Option<&crate::sip::NameAddr>| {
            na.map(|n| {
                n.params
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case("tag"))
                    .count()
            })
            .unwrap_or(0)
        };
        if tags(m.from_hdr().ok()) > 1 {
            return Err(Fail(400, "Many From Tag Params", None));
        }
        if tags(m.to_hdr().ok()) > 1 {
            return Err(Fail(400, "Many To Tag Params", None));
        }
    }
    Ok(())
}

fn run(ctx: &mut RouteCtx, checks: i64, uri_checks: i64) -> Val {
    let Some(m) = ctx.msg.as_ref() else {
        return Val::Int(-1);
    };
    let cfg = &ctx.core.cfg.modparams;
    let proxy_requires: Vec<String> = cfg
        .get_str("sanity", "proxy_requires")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    match check(m, checks, uri_checks, &proxy_requires) {
        Ok(()) => Val::Int(1),
        Err(Fail(code, reason, hdr)) => {
            tracing::debug!(code, reason, "sanity check failed");
            let is_ack = m.is_request() && m.method() == Method::Ack;
            let noreply = cfg.get_int("sanity", "noreply").unwrap_or(0) != 0;
            if code != 0 && m.is_request() && !is_ack && !noreply {
                if let Some(h) = hdr {
                    ctx.reply_hdrs.extend_from_slice(h.as_bytes());
                }
                sl::reply(ctx, code as i64, reason);
            }
            Val::Int(-1)
        }
    }
}

fn sanity_check(ctx: &mut RouteCtx, a: &Args) -> Val {
    run(ctx, a.int(0), a.int(1))
}
fn sanity_check_defaults(ctx: &mut RouteCtx, _: &Args) -> Val {
    let p = &ctx.core.cfg.modparams;
    let c = p.get_int("sanity", "default_checks").unwrap_or(DEFAULT);
    let u = p.get_int("sanity", "uri_checks").unwrap_or(URI_DEFAULT);
    run(ctx, c, u)
}

/// `KSR.sanity.*` exports.
pub static EXPORTS: &[Export] = &[
    ex(
        "sanity",
        "sanity_check",
        &[("msg_checks", Int), ("uri_checks", Int)],
        Int,
        "Run the selected checks; on failure the error reply is sent and -1 returned",
        sanity_check,
    ),
    ex(
        "sanity",
        "sanity_check_defaults",
        &[],
        Int,
        "Run the checks of the default_checks/uri_checks parameters",
        sanity_check_defaults,
    ),
];
