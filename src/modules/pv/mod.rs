//! Pseudo-variables: `KSR.pv.*` (Kamailio's pv module and core PV getters).

pub mod spec;

use std::fmt::Write as _;

pub use spec::{Pv, PvCache};

use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};
use crate::sip::{HdrName, NameAddr, SipMsg, Uri};

/// A PV value.
#[derive(Debug, Clone, PartialEq)]
pub enum PvVal {
    /// Integer.
    Int(i64),
    /// String.
    Str(String),
    /// Bytes that are not UTF-8 (`$rb`, `$mb`): Python gets a str decoded with surrogateescape,
    /// so the bytes round-trip (kamailio-defects.md: Kamailio raises UnicodeDecodeError instead).
    Bytes(Vec<u8>),
}

/// One item of `$xavp(name)`: a plain value (`KSR.pvx.xavp_sets`), or a row of named fields
/// (`$xavp(name=>field)`), one per result row of `KSR.sqlops.sql_xquery`. A field may be NULL.
#[derive(Debug, Clone, PartialEq)]
pub enum Xavp {
    /// A value.
    Val(PvVal),
    /// Named fields, first field first (names may repeat: `$xavp(n=>f[1])` is the second `f`).
    Row(Vec<(String, Option<PvVal>)>),
}

impl Xavp {
    /// The value of a plain item (a row has none, as in Kamailio where it is an xavp list).
    pub fn value(&self) -> Option<&PvVal> {
        match self {
            Xavp::Val(v) => Some(v),
            Xavp::Row(_) => None,
        }
    }

    /// The `k`-th field called `key` of a row.
    pub fn field(&self, key: &str, k: usize) -> Option<&PvVal> {
        match self {
            Xavp::Row(f) => f.iter().filter(|(n, _)| n == key).nth(k)?.1.as_ref(),
            Xavp::Val(_) => None,
        }
    }
}

/// `$xavp` items by name, newest last (index 0 of `$xavp(n[0])` is the last element).
pub type Xavps = std::collections::HashMap<String, Vec<Xavp>>;

/// Item `idx` (0 = newest) of `$xavp(name)`.
pub fn xavp_item<'a>(x: &'a Xavps, name: &str, idx: usize) -> Option<&'a Xavp> {
    let st = x.get(name)?;
    st.len().checked_sub(1 + idx).and_then(|k| st.get(k))
}

impl std::fmt::Display for PvVal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PvVal::Int(i) => write!(f, "{i}"),
            PvVal::Str(s) => f.write_str(s),
            PvVal::Bytes(b) => f.write_str(&String::from_utf8_lossy(b)),
        }
    }
}

impl From<PvVal> for Val {
    fn from(v: PvVal) -> Val {
        match v {
            PvVal::Int(i) => Val::Int(i),
            PvVal::Str(s) => Val::Str(s),
            PvVal::Bytes(b) => Val::Bytes(b),
        }
    }
}

fn s(x: impl Into<String>) -> Option<PvVal> {
    Some(PvVal::Str(x.into()))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Str when the bytes are UTF-8, else Bytes (never lossy: scripts may need the exact bytes).
fn text_or_bytes(b: &[u8]) -> PvVal {
    match std::str::from_utf8(b) {
        Ok(t) => PvVal::Str(t.to_string()),
        Err(_) => PvVal::Bytes(b.to_vec()),
    }
}

fn ruri_parsed(ctx: &RouteCtx) -> Option<Uri> {
    match &ctx.new_ruri {
        Some(u) => Uri::parse(u.as_bytes()).ok(),
        None => ctx.request()?.ruri().ok().cloned(),
    }
}

fn first_value(m: &SipMsg, name: &str) -> Option<String> {
    m.find_by_name(name).next().map(|h| lossy(m.value(h)))
}

fn name_addr(m: &SipMsg, from: bool) -> Option<&NameAddr> {
    if from {
        m.from_hdr().ok()
    } else {
        m.to_hdr().ok()
    }
}

/// Read a PV.
pub fn get(ctx: &RouteCtx, pv: &Pv) -> Option<PvVal> {
    match pv {
        Pv::Var(n) => return Some(ctx.vars.get(n).cloned().unwrap_or(PvVal::Int(0))),
        Pv::Avp(n, idx) => {
            let st = ctx.avps.get(n)?;
            let i = idx.unwrap_or(0);
            return st.len().checked_sub(1 + i).and_then(|k| st.get(k)).cloned();
        }
        Pv::Def(n) => return ctx.core.cfg.defines.get(n).map(|v| PvVal::Str(v.clone())),
        Pv::Du => return ctx.dst_uri.clone().map(PvVal::Str),
        Pv::Flags => return Some(PvVal::Int(ctx.flags as i64)),
        Pv::BFlags => return Some(PvVal::Int(ctx.bflags as i64)),
        Pv::Ts => return Some(PvVal::Int(ctx.msg_time)),
        Pv::TsNow => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            return Some(PvVal::Int(t as i64));
        }
        Pv::BranchIdx => return Some(PvVal::Int(ctx.tm.branch_idx as i64)),
        // tmx: the reply being handled (onreply) or the winning one (failure route); 0 otherwise.
        Pv::TReplyCode => {
            return Some(PvVal::Int(
                ctx.tm.reply.as_ref().map(|r| r.0 as i64).unwrap_or(0),
            ))
        }
        Pv::TReplyReason => return ctx.tm.reply.as_ref().map(|r| PvVal::Str(r.1.clone())),
        // In a failure route $rs/$rr are the winning reply's (the message is the request).
        Pv::Status if ctx.kind.on_request_after_reply() => {
            return ctx.tm.reply.as_ref().map(|r| PvVal::Int(r.0 as i64))
        }
        Pv::Reason if ctx.kind.on_request_after_reply() => {
            return ctx.tm.reply.as_ref().map(|r| PvVal::Str(r.1.clone()))
        }
        Pv::Null => return None,
        Pv::Sht(op, n) => return crate::modules::htable::pv::get(ctx, *op, n),
        Pv::ShtIt(key, n) => return crate::modules::htable::pv::iter_get(ctx, *key, n),
        Pv::Ulc(n, idx) => return crate::modules::registrar::fetch::get(n, idx.unwrap_or(0)),
        Pv::Xavp(x) => {
            let item = xavp_item(&ctx.xavps, &x.name, x.idx)?;
            return match &x.key {
                None => item.value().cloned(),
                Some(k) => item.field(k, x.kidx).cloned(),
            };
        }
        Pv::Dbr(n) => return crate::modules::sqlops::result::dbr_get(ctx, n),
        Pv::Gip2(n) => return crate::modules::geoip2::get(n),
        _ => {}
    }
    let m = ctx.msg.as_ref()?;
    match pv {
        Pv::Ru => ctx.ruri().map(|u| PvVal::Str(u.into_owned())),
        Pv::RUser => ruri_parsed(ctx)?.user.map(PvVal::Str),
        Pv::RDomain => s(ruri_parsed(ctx)?.host),
        Pv::RPort => {
            // pv_core.c pv_get_xuri_attr: pv_get_strintval (no PV_TYPE_INT), so KEMI returns a str.
            let u = ruri_parsed(ctx)?;
            s(u.port.unwrap_or(5060).to_string())
        }
        Pv::RScheme => s(match ruri_parsed(ctx)?.scheme {
            crate::sip::Scheme::Sip => "sip".to_string(),
            crate::sip::Scheme::Sips => "sips".to_string(),
            crate::sip::Scheme::Tel => "tel".to_string(),
            crate::sip::Scheme::Other(o) => o,
        }),
        // No transport parameter: "udp" (pv_core.c pv_get_udp).
        Pv::RTransport => s(ruri_parsed(ctx)?
            .transport()
            .map(|t| t.to_ascii_lowercase())
            .unwrap_or_else(|| "udp".to_string())),
        Pv::OrigRu => m.is_request().then(|| PvVal::Str(lossy(m.ruri_bytes()))),
        Pv::OrigRUser => m.ruri().ok()?.user.clone().map(PvVal::Str),
        Pv::OrigRDomain => s(m.ruri().ok()?.host.clone()),
        Pv::Method => s(m.method_str()),
        Pv::SrcIp => s(ctx.ep.remote.ip().to_string()),
        Pv::SrcPort => Some(PvVal::Int(ctx.ep.remote.port() as i64)),
        Pv::SrcUri => {
            let mut u = String::from("sip:");
            match ctx.ep.remote.ip() {
                std::net::IpAddr::V6(v6) => {
                    let _ = write!(u, "[{v6}]");
                }
                std::net::IpAddr::V4(v4) => {
                    let _ = write!(u, "{v4}");
                }
            }
            let _ = write!(u, ":{}", ctx.ep.remote.port());
            if ctx.ep.proto != crate::transport::Proto::Udp {
                let _ = write!(u, ";transport={}", ctx.ep.proto);
            }
            s(u)
        }
        Pv::RcvIp => s(ctx.ep.local.ip().to_string()),
        Pv::RcvPort => Some(PvVal::Int(ctx.ep.local.port() as i64)),
        Pv::Proto => s(ctx.ep.proto.as_str()),
        Pv::FromUri | Pv::ToUri => s(name_addr(m, *pv == Pv::FromUri)?.uri_text.clone()),
        Pv::FromUser | Pv::ToUser => name_addr(m, *pv == Pv::FromUser)?
            .uri
            .user
            .clone()
            .map(PvVal::Str),
        Pv::FromDomain | Pv::ToDomain => s(name_addr(m, *pv == Pv::FromDomain)?.uri.host.clone()),
        Pv::FromName | Pv::ToName => {
            // Kamailio's display name keeps its quotes (parse_addr_spec.c: display.len covers the
            // closing '"'), so `"Alice" <sip:…>` gives "\"Alice\"".
            let from = *pv == Pv::FromName;
            let d = name_addr(m, from)?.display.clone()?;
            let h = m.first(if from { HdrName::From } else { HdrName::To })?;
            let quoted = m.value(h).trim_ascii_start().starts_with(b"\"");
            s(if quoted { format!("\"{d}\"") } else { d })
        }
        Pv::FromTag | Pv::ToTag => name_addr(m, *pv == Pv::FromTag)?
            .tag()
            .map(|t| PvVal::Str(t.to_string())),
        Pv::CallId => m.call_id().map(|c| PvVal::Str(c.to_string())),
        Pv::Contact => m
            .first(HdrName::Contact)
            .map(|h| PvVal::Str(lossy(m.value(h)))),
        Pv::CSeqNum => Some(PvVal::Str(m.cseq().ok()?.num.to_string())),
        Pv::CSeqHdr => m
            .first(HdrName::CSeq)
            .map(|h| PvVal::Str(lossy(m.value(h)))),
        Pv::UserAgent => m
            .first(HdrName::UserAgent)
            .map(|h| PvVal::Str(lossy(m.value(h)))),
        Pv::Server => m
            .first(HdrName::Server)
            .map(|h| PvVal::Str(lossy(m.value(h)))),
        Pv::Status => m.status().map(|c| PvVal::Int(c as i64)),
        Pv::Reason => m.status().map(|_| PvVal::Str(lossy(m.reason()))),
        // Non-UTF-8 bodies must not raise (kamailio-defects.md); the binding decodes with surrogateescape.
        Pv::Body => Some(text_or_bytes(m.body())),
        // pv_get_content_length: the header's value (int), null without the header.
        Pv::BodyLen => {
            let h = m.first(HdrName::ContentLength)?;
            let n: i64 = std::str::from_utf8(m.value(h)).ok()?.trim().parse().ok()?;
            Some(PvVal::Int(n))
        }
        Pv::Msg => Some(text_or_bytes(m.raw())),
        Pv::MsgLen => Some(PvVal::Int(m.raw().len() as i64)),
        Pv::MsgId => Some(PvVal::Int(ctx.msg_seq as i64)),
        Pv::Hdr(n) => first_value(m, n).map(PvVal::Str),
        Pv::HdrCount(n) => Some(PvVal::Int(m.find_by_name(n).count() as i64)),
        Pv::AuthUser | Pv::AuthRealm | Pv::AuthUri | Pv::AuthDomain | Pv::AuthUsername => {
            auth_field(m, pv)
        }
        Pv::AcctUsername | Pv::AcctUser => {
            let from_cred = auth_field(m, &Pv::AuthUser).map(|u| u.to_string());
            match from_cred {
                Some(u) if *pv == Pv::AcctUser => s(u),
                Some(u) => match auth_field(m, &Pv::AuthRealm) {
                    Some(r) => s(format!("{u}@{r}")),
                    None => s(u),
                },
                None => {
                    let f = m.from_hdr().ok()?;
                    let user = f.uri.user.clone().unwrap_or_default();
                    if *pv == Pv::AcctUser {
                        s(user)
                    } else {
                        s(format!("{user}@{}", f.uri.host))
                    }
                }
            }
        }
        _ => None,
    }
}

fn auth_field(m: &SipMsg, pv: &Pv) -> Option<PvVal> {
    // pv_core.c pv_get_authattr: Proxy-Authorization wins over Authorization; none for ACK/CANCEL.
    if matches!(
        m.method(),
        crate::sip::Method::Ack | crate::sip::Method::Cancel
    ) {
        return None;
    }
    let h = m
        .first(HdrName::ProxyAuthorization)
        .or_else(|| m.first(HdrName::Authorization))?;
    let v = lossy(m.value(h));
    let want = match pv {
        Pv::AuthUser | Pv::AuthDomain | Pv::AuthUsername => "username",
        Pv::AuthRealm => "realm",
        _ => "uri",
    };
    let rest = v.split_once(' ').map(|(_, r)| r).unwrap_or("");
    for part in rest.split(',') {
        let (k, val) = part.split_once('=')?;
        if k.trim().eq_ignore_ascii_case(want) {
            let val = val.trim().trim_matches('"').to_string();
            return match pv {
                Pv::AuthUser => Some(PvVal::Str(val.split('@').next().unwrap_or("").to_string())),
                Pv::AuthDomain => val.split_once('@').map(|(_, d)| PvVal::Str(d.to_string())),
                _ => Some(PvVal::Str(val)),
            };
        }
    }
    None
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum PvSetError {
    /// The PV is read-only.
    #[error("pseudo-variable is read-only")]
    ReadOnly,
    /// No message to change.
    #[error("no message")]
    NoMsg,
    /// Value not acceptable for the PV.
    #[error("invalid value: {0}")]
    Value(String),
}

fn set_ruri_part(ctx: &mut RouteCtx, f: impl FnOnce(&mut Uri)) -> Result<(), PvSetError> {
    let mut u = ruri_parsed(ctx).ok_or(PvSetError::NoMsg)?;
    f(&mut u);
    ctx.new_ruri = Some(u.to_string());
    Ok(())
}

/// Write a PV (`None` = `$null`, deletes where Kamailio allows).
pub fn set(ctx: &mut RouteCtx, pv: &Pv, val: Option<PvVal>) -> Result<(), PvSetError> {
    let text = |v: &Option<PvVal>| match v {
        Some(PvVal::Str(s)) => s.clone(),
        Some(PvVal::Bytes(b)) => lossy(b),
        Some(PvVal::Int(i)) => i.to_string(),
        None => String::new(),
    };
    match pv {
        Pv::Var(n) => {
            ctx.vars.insert(n.clone(), val.unwrap_or(PvVal::Int(0)));
        }
        Pv::Avp(n, _) => match val {
            Some(v) => ctx.avps.entry(n.clone()).or_default().push(v),
            None => {
                ctx.avps.remove(n);
            }
        },
        Pv::Du => {
            ctx.dst_uri = match val {
                None => None,
                Some(v) => {
                    let t = text(&Some(v));
                    if t.is_empty() {
                        None
                    } else {
                        Uri::parse(t.as_bytes()).map_err(|_| PvSetError::Value(t.clone()))?;
                        Some(t)
                    }
                }
            }
        }
        Pv::Ru => {
            let t = text(&val);
            Uri::parse(t.as_bytes()).map_err(|_| PvSetError::Value(t.clone()))?;
            if ctx.request().is_none() {
                return Err(PvSetError::NoMsg);
            }
            ctx.new_ruri = Some(t);
        }
        Pv::RUser => {
            let t = text(&val);
            set_ruri_part(ctx, |u| u.user = if t.is_empty() { None } else { Some(t) })?
        }
        Pv::RDomain => {
            let t = text(&val);
            if t.is_empty() {
                return Err(PvSetError::Value(t));
            }
            set_ruri_part(ctx, |u| u.host = t)?
        }
        Pv::RPort => {
            let t = text(&val);
            let p: Option<u16> = if t.is_empty() || t == "0" {
                None
            } else {
                Some(t.parse().map_err(|_| PvSetError::Value(t.clone()))?)
            };
            set_ruri_part(ctx, |u| u.port = p)?
        }
        Pv::FromUri
        | Pv::FromUser
        | Pv::FromDomain
        | Pv::FromName
        | Pv::ToUri
        | Pv::ToUser
        | Pv::ToDomain
        | Pv::ToName => set_name_addr(ctx, pv, text(&val))?,
        Pv::Sht(op, n) => crate::modules::htable::pv::set(ctx, *op, n, val)?,
        Pv::Xavp(x) => set_xavp(ctx, x, val),
        _ => return Err(PvSetError::ReadOnly),
    }
    Ok(())
}

/// `$xavp(n) = v` adds a new item; `$xavp(n=>k) = v` adds field `k` in front of the newest
/// row (a new row when there is none), as Kamailio's pv_set_xavp; `$null` removes the item (or
/// every field `k` of it).
fn set_xavp(ctx: &mut RouteCtx, x: &spec::XavpName, val: Option<PvVal>) {
    let st = ctx.xavps.entry(x.name.clone()).or_default();
    match (&x.key, val) {
        (None, Some(v)) => st.push(Xavp::Val(v)),
        (None, None) => {
            if let Some(k) = st.len().checked_sub(1 + x.idx) {
                st.remove(k);
            }
        }
        (Some(key), v) => {
            let k = st.len().checked_sub(1 + x.idx);
            match (k.and_then(|k| st.get_mut(k)), v) {
                (Some(Xavp::Row(f)), Some(v)) => f.insert(0, (key.clone(), Some(v))),
                (Some(Xavp::Row(f)), None) => f.retain(|(n, _)| n != key),
                (Some(Xavp::Val(_)), _) | (None, None) => {}
                (None, Some(v)) => st.push(Xavp::Row(vec![(key.clone(), Some(v))])),
            }
        }
    }
    if st.is_empty() {
        ctx.xavps.remove(&x.name);
    }
}

/// Rewrite the From/To value (display and URI), keeping its parameters (tags stay intact).
fn set_name_addr(ctx: &mut RouteCtx, pv: &Pv, t: String) -> Result<(), PvSetError> {
    let from = matches!(
        pv,
        Pv::FromUri | Pv::FromUser | Pv::FromDomain | Pv::FromName
    );
    let m = ctx.request().ok_or(PvSetError::NoMsg)?;
    let hn = if from { HdrName::From } else { HdrName::To };
    let h = m.first(hn).ok_or(PvSetError::NoMsg)?.clone();
    let current = ctx
        .hdr_override(h.value_span)
        .map(|s| s.to_string())
        .unwrap_or_else(|| lossy(m.value(&h)));
    let mut na = NameAddr::parse(current.as_bytes()).map_err(|_| PvSetError::NoMsg)?;
    match pv {
        Pv::FromUri | Pv::ToUri => {
            na.uri = Uri::parse(t.as_bytes()).map_err(|_| PvSetError::Value(t.clone()))?;
            na.uri_text = t;
        }
        Pv::FromUser | Pv::ToUser => {
            na.uri.user = if t.is_empty() { None } else { Some(t) };
            na.uri_text = na.uri.to_string();
        }
        Pv::FromDomain | Pv::ToDomain => {
            na.uri.host = t;
            na.uri_text = na.uri.to_string();
        }
        _ => na.display = if t.is_empty() { None } else { Some(t) },
    }
    let mut v = String::new();
    if let Some(d) = &na.display {
        let _ = write!(v, "\"{}\" ", d.replace('"', "\\\""));
    }
    let _ = write!(v, "<{}>", na.uri_text);
    for (k, val) in &na.params {
        match val {
            Some(x) => {
                let _ = write!(v, ";{k}={x}");
            }
            None => {
                let _ = write!(v, ";{k}");
            }
        }
    }
    ctx.set_hdr_override(h.value_span, v);
    Ok(())
}

fn with_pv<R>(
    ctx: &mut RouteCtx,
    name: &str,
    f: impl FnOnce(&mut RouteCtx, &Pv) -> R,
    err: R,
) -> R {
    match ctx.pv_cache.get(name) {
        Ok(pv) => f(ctx, &pv),
        Err(e) => {
            tracing::error!("{e}");
            err
        }
    }
}

fn pv_get(ctx: &mut RouteCtx, a: &Args) -> Val {
    with_pv(
        ctx,
        a.str(0),
        |c, pv| get(c, pv).map(Val::from).unwrap_or(Val::None),
        Val::None,
    )
}
fn pv_gete(ctx: &mut RouteCtx, a: &Args) -> Val {
    with_pv(
        ctx,
        a.str(0),
        |c, pv| get(c, pv).map(Val::from).unwrap_or(Val::Str(String::new())),
        Val::Str(String::new()),
    )
}
fn pv_getw(ctx: &mut RouteCtx, a: &Args) -> Val {
    with_pv(
        ctx,
        a.str(0),
        |c, pv| {
            get(c, pv)
                .map(Val::from)
                .unwrap_or(Val::Str("<<null>>".into()))
        },
        Val::Str("<<null>>".into()),
    )
}
fn pv_getvs(ctx: &mut RouteCtx, a: &Args) -> Val {
    let dflt = a.str(1).to_string();
    with_pv(
        ctx,
        a.str(0),
        |c, pv| get(c, pv).map(Val::from).unwrap_or(Val::Str(dflt.clone())),
        Val::Str(a.str(1).to_string()),
    )
}
fn pv_getvn(ctx: &mut RouteCtx, a: &Args) -> Val {
    let d = a.int(1);
    with_pv(
        ctx,
        a.str(0),
        |c, pv| get(c, pv).map(Val::from).unwrap_or(Val::Int(d)),
        Val::Int(d),
    )
}
/// Assign a pseudo-variable by name (as `KSR.pv.sets`/`seti`); `Val::Bool(false)` on error.
pub fn do_set(ctx: &mut RouteCtx, name: &str, v: Option<PvVal>) -> Val {
    with_pv(
        ctx,
        name,
        |c, pv| match set(c, pv, v) {
            Ok(()) => Val::Bool(true),
            Err(e) => {
                tracing::error!("cannot set {name}: {e}");
                Val::Bool(false)
            }
        },
        Val::Bool(false),
    )
}
fn pv_sets(ctx: &mut RouteCtx, a: &Args) -> Val {
    do_set(ctx, a.str(0), Some(PvVal::Str(a.str(1).to_string())))
}
fn pv_seti(ctx: &mut RouteCtx, a: &Args) -> Val {
    do_set(ctx, a.str(0), Some(PvVal::Int(a.int(1))))
}
fn pv_unset(ctx: &mut RouteCtx, a: &Args) -> Val {
    let name = a.str(0);
    // Kamailio: unset of an AVP removes only the newest value (kemi-spec §1.9 #7).
    if let Ok(pv) = ctx.pv_cache.get(name) {
        if let Pv::Avp(n, _) = &*pv {
            if let Some(st) = ctx.avps.get_mut(n) {
                st.pop();
            }
            return Val::Bool(true);
        }
    }
    do_set(ctx, name, None)
}
fn pv_is_null(ctx: &mut RouteCtx, a: &Args) -> Val {
    with_pv(
        ctx,
        a.str(0),
        |c, pv| Val::Bool(get(c, pv).is_none()),
        Val::Bool(true),
    )
}
fn pv_setx(ctx: &mut RouteCtx, a: &Args) -> Val {
    // `sets` with an empty-string value on $du and friends resets them; kept for script parity.
    do_set(ctx, a.str(0), None)
}

/// `KSR.pv.*` exports.
pub static EXPORTS: &[Export] = &[
    ex(
        "pv",
        "get",
        &[("name", Str)],
        Xval,
        "Value of a pseudo-variable: str, int, or None when null",
        pv_get,
    ),
    ex(
        "pv",
        "gete",
        &[("name", Str)],
        Xval,
        "Like get, but an empty string when null",
        pv_gete,
    ),
    ex(
        "pv",
        "getw",
        &[("name", Str)],
        Xval,
        "Like get, but \"<<null>>\" when null",
        pv_getw,
    ),
    ex(
        "pv",
        "getvs",
        &[("name", Str), ("default", Str)],
        Xval,
        "Like get, with a string default when null",
        pv_getvs,
    ),
    ex(
        "pv",
        "getvn",
        &[("name", Str), ("default", Int)],
        Xval,
        "Like get, with an integer default when null",
        pv_getvn,
    ),
    ex(
        "pv",
        "sets",
        &[("name", Str), ("value", Str)],
        Bool,
        "Assign a string to a writable pseudo-variable",
        pv_sets,
    ),
    ex(
        "pv",
        "seti",
        &[("name", Str), ("value", Int)],
        Bool,
        "Assign an integer to a writable pseudo-variable",
        pv_seti,
    ),
    ex(
        "pv",
        "unset",
        &[("name", Str)],
        Bool,
        "Unset a pseudo-variable ($null assignment; one AVP value)",
        pv_unset,
    ),
    ex(
        "pv",
        "setn",
        &[("name", Str)],
        Bool,
        "Assign $null to a pseudo-variable",
        pv_setx,
    ),
    ex(
        "pv",
        "is_null",
        &[("name", Str)],
        Bool,
        "True if the pseudo-variable is null, unset or invalid",
        pv_is_null,
    ),
];
